"""``ui.html_table``: the static summary tables are escaped text, formatted as the column config says."""

from __future__ import annotations

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
    assert first == ('<tr><td>2026-11-20 13:45</td><td class="n">1234.50</td><td class="n">12.3%</td>'
                     '<td class="n">+2.00</td><td class="n">1,200</td><td class="w">late by 2h</td>')
    # missing values are empty cells, not "nan" or "NaT"
    assert second == '<tr><td></td><td></td><td class="n">50.0%</td><td class="n">-1.25</td><td class="n">3</td><td class="w"></td>'
    assert 'style="max-height:200px" data-key="k"' in out
