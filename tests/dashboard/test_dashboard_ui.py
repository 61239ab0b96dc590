"""``ui.html_table`` and ``ui.tiles``: static tables and KPI tiles are escaped text, formatted as the column config (or the tile) says."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboard import ui


def test_html_table_escapes_every_header_cell_and_link():
    frame = pd.DataFrame({"<i>col</i>": ["<script>alert(1)</script>"], "open": ['run?run=a"b<c>']})
    out = ui.html_table(frame, key="t", column_config={"open": st.column_config.LinkColumn("run", display_text="<b>details</b>")})
    assert "<script>" not in out and "<i>" not in out and "<b>" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "<th>&lt;i&gt;col&lt;/i&gt;</th>" in out
    assert '<a href="run?run=a&quot;b&lt;c&gt;" target="_self">&lt;b&gt;details&lt;/b&gt;</a>' in out


def test_html_table_download_link_is_escaped_and_only_drawn_with_a_url():
    frame = pd.DataFrame({"a": [1]})
    out = ui.html_table(frame, key="k", download=("media/x.csv", 'cost by "<region>".csv'))
    assert '<a class="pp-dl" href="media/x.csv" download="cost by &quot;&lt;region&gt;&quot;.csv" data-key="csv_k">Download CSV</a>' in out
    # outside a Streamlit server there is no URL to download from, and no link
    assert "pp-dl\"" not in ui.html_table(frame, key="k", download=(None, "x.csv"))
    assert "Download CSV" not in ui.html_table(frame, key="k")


def test_html_table_formats_after_the_column_config():
    frame = pd.DataFrame({
        "at": [datetime(2026, 11, 20, 13, 45, 59, tzinfo=UTC), pd.NaT],
        "cost": [1234.5, None],
        "share": [0.1234, 0.5],
        "change": [2.0, -1.25],
        "runs": [1200, 3],
        "msg": ["late by 2h", None],
    })
    out = ui.html_table(frame, key="k", max_height=200, column_config={
        "at": st.column_config.DatetimeColumn("last success", format="YYYY-MM-DD HH:mm", help="UTC"),
        "cost": st.column_config.NumberColumn("cost", format="%.2f"),
        "share": st.column_config.NumberColumn("wasted", format="percent"),
        "change": st.column_config.NumberColumn(format="%+.2f"),
        "msg": st.column_config.TextColumn("freshness", width="large"),
        "runs": "run count",
    })
    assert '<th title="UTC">last success</th><th>cost</th><th>wasted</th><th>change</th><th>run count</th><th>freshness</th>' in out
    first, second = out.split("<tbody>")[1].split("</tr>")[:2]
    assert first == ('<tr><td class="t"><span class="nb">2026-11-20</span> <span class="nb">13:45</span></td><td class="n">1234.50</td><td class="n">12.3%</td>'
                     '<td class="n">+2.00</td><td class="n">1,200</td><td class="w">late by 2h</td>')
    # missing values are empty cells, not "nan" or "NaT"
    assert second == '<tr><td></td><td></td><td class="n">50.0%</td><td class="n">-1.25</td><td class="n">3</td><td class="w"></td>'
    assert 'style="max-height:200px" data-key="k"' in out


def test_html_table_keeps_a_small_text_column_on_one_line():
    # a state such as on_time in a narrow column broke after its underscore ("on_ / time")
    frame = pd.DataFrame({"state": ["on_time"], "pipeline": ["sfn_customer_etl"]})
    out = ui.html_table(frame, key="k", column_config={"state": st.column_config.TextColumn("state", width="small")})
    assert '<td class="nb">on_time</td>' in out
    assert "sfn_<wbr>customer_<wbr>etl" in out  # other text may still break after an underscore


def test_tiles_escape_text_and_colour_a_change_by_which_way_is_good():
    from dashboard.ui import Tile, tiles_html

    out = tiles_html([
        Tile("Failed <runs>", "6", "+5", 1, "down", help='runs "failed" & timed out'),
        Tile("Success rate", "98.4%", "-1.3 pts", -1, "up"),
        Tile("Throughput", "5,655", "+34", 1, "up"),
        Tile("Runs", "383", "+10", 1, "off"),
        Tile("p95 duration", "262 s", "+0 s", 0, "down"),
        Tile("Open anomalies", "<script>alert(1)</script>"),
    ], key="k<", columns=5)
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "Failed &lt;runs&gt;" in out and 'data-key="k&lt;"' in out and "--n:5" in out
    assert 'title="runs &quot;failed&quot; &amp; timed out"' in out
    deltas = re.findall(r'<div class="d ?([gb]?)" data-change="(-?\d)">(.*?)</div>', out)
    assert deltas == [
        ("b", "1", "\u25b2 +5"),  # up is bad for failures: red
        ("b", "-1", "\u25bc -1.3 pts"),  # down is bad for success: red
        ("g", "1", "\u25b2 +34"),  # up is good for throughput: green
        ("", "1", "\u25b2 +10"),  # "off": grey, still an arrow
        ("", "0", "+0 s"),  # no change: grey, no arrow
    ]
    assert out.count('<div class="l">') == 6  # the last tile has no delta line


def test_filter_summary_names_the_window_pipelines_and_accounts_as_text():
    from dashboard.state import Filters, summary, window

    now = datetime(2026, 11, 26, 11, 7, tzinfo=UTC)
    start, end, prev_start, prev_end = window("7d", None, now)
    f = Filters("7d", start, end, prev_start, prev_end, None, None, now)
    assert summary(f) == "Last 7d\\: 2026\\-11\\-19 11\\:07 to 2026\\-11\\-26 11\\:07 UTC; all pipelines"
    f = Filters("24h", *window("24h", datetime(2026, 11, 1).date(), now), ("orders", "*x*"), ("111",), now)
    # Markdown in a pipeline name stays text; a window ending on a past day ends at its midnight
    assert summary(f) == (
        "Last 24h\\: 2026\\-11\\-01 00\\:00 to 2026\\-11\\-02 00\\:00 UTC; pipelines orders, \\*x\\*; accounts 111"
    )
