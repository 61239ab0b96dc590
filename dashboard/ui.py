"""Small page helpers: tables that can be downloaded as CSV, empty states that say what to run,
and text that is always shown as text (never Markdown or HTML).

KPI tiles (``tiles``) are drawn the same way, as one block of HTML, which is quicker for the
browser than ``st.metric`` tiles in rows of ``st.columns``.

Tables come in two kinds. ``table`` is Streamlit's interactive grid (sort, search, scroll through
thousands of rows). ``table(..., static=True)`` draws a short summary table as a plain HTML table
whose every cell is escaped text: each grid is slow for the browser to set up, a static table
next to nothing. Every table's CSV download is a link (``csv_link``: the one CSV writer, served
only to the session that drew it) rather than a ``st.download_button``, for the same reason and
because Streamlit serves a button's file under ``/media/`` to anyone with the URL.
"""

from __future__ import annotations

import functools
import html
import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote

import pandas as pd
import streamlit as st

__all__ = ["DASH", "Tile", "empty", "esc", "header", "html_table", "run_link", "table", "tiles", "tiles_html"]

DASH = "\u2014"  # what an empty cell shows in a grid (a static table leaves it blank)

_MD = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def esc(value: object) -> str:
    """``value`` with Markdown (and HTML) special characters escaped, for labels and captions."""
    return _MD.sub(r"\\\1", "" if value is None else str(value))


def header(name: object) -> str:
    """A column name as a header: ``last_run_status`` shows as "last run status"."""
    return str(name).replace("_", " ")


@functools.lru_cache(maxsize=4096)
def _run_link(run_id: str) -> str:
    return "run?run=" + quote(run_id, safe="")


def run_link(run_id: object) -> str:
    """The relative URL of a run's detail page (remembered: the run lists make a link for each of
    up to 1,000 runs on every rerun, and ``quote`` took 3-10 ms of it)."""
    return _run_link(str(run_id))


def empty(what: str, *commands: str) -> None:
    """An empty state that says what is missing and which command(s) fill it."""
    run = " or ".join(f"`{c}`" for c in commands)
    st.info(f"{what}: run {run}", icon=":material/info:")


def table(
    frame: pd.DataFrame,
    *,
    key: str,
    filename: str,
    column_config: dict | None = None,
    height: int | str = "auto",
    hide: tuple[str, ...] = (),
    static: bool = False,
    rows: int | None = None,
) -> None:
    """A dataframe (text cells are drawn as text) with a "Download CSV" link under it; with
    ``static``, a plain HTML table (``html_table``) of the first ``rows`` rows (all by default)
    that scrolls past ``height`` pixels, with the link in the same block (a download button slows
    the page's load). The CSV always has every row, and comes from ``csv_link``."""
    shown = frame.drop(columns=[c for c in hide if c in frame.columns])
    url = csv_link(frame, key, filename)
    if static:
        st.html(html_table(
            shown if rows is None else shown.head(rows), key=key, column_config=column_config,
            max_height=height if isinstance(height, int) else 420, download=(url, filename),
        ))
        return
    if isinstance(height, int):
        height = min(height, 38 + 35 * max(len(frame), 1))  # no empty rows under a short table
    config = dict(column_config or {})
    for name in shown.columns:
        config.setdefault(name, header(name))  # headers in words, not snake_case
    # the grid writes a missing value as "None": text columns (object, or pandas' str) show a dash instead
    text = [c for c in shown.columns if shown[c].dtype == object or pd.api.types.is_string_dtype(shown[c].dtype)]
    if text:
        shown = shown.assign(**{c: shown[c].where(shown[c].notna(), DASH) for c in text})
    st.dataframe(shown, hide_index=True, column_config=config, height=height, width="stretch", key=f"df_{key}")
    if url:
        st.html(_STYLE + _download_link(url, filename, key))


def csv_link(frame: pd.DataFrame, key: str, filename: str) -> str | None:
    """A relative URL that downloads ``frame`` as ``filename`` (``downloads.link``: written by
    the one CSV writer when asked for, served only to this session's browser while the session
    lasts); relative to the page, so a server under a path (a proxy prefix) serves it. ``None``
    outside a served session."""
    from dashboard import downloads

    return downloads.link(key, filename, [str(c) for c in frame.columns], lambda: frame.itertuples(index=False, name=None))


def _download_link(url: str, filename: str, key: str) -> str:
    href, name = (html.escape(x, quote=True) for x in (url, filename))
    return f'<a class="pp-dl" href="{href}" download="{name}" data-key="csv_{html.escape(key, quote=True)}">Download CSV</a>'


_STYLE = (
    "<style>.pp-t{overflow:auto;border:1px solid rgba(49,51,63,.12);border-radius:.5rem;margin-bottom:.5rem}"
    ".pp-t table{border-collapse:collapse;width:100%;font-size:.875rem}"
    ".pp-t th{position:sticky;top:0;background:#f8f9fb;color:rgba(49,51,63,.7);font-weight:400;text-align:left}"
    ".pp-t th,.pp-t td{padding:.3rem .45rem;border-bottom:1px solid rgba(49,51,63,.08);vertical-align:top;white-space:nowrap}"
    # text and headers wrap, long words anywhere (a table wider than the page scrolls sideways);
    # numbers do not, and a time breaks only between its date and its time of day
    ".pp-t th{white-space:normal;overflow-wrap:break-word}.pp-t td.x{white-space:normal;overflow-wrap:anywhere;min-width:4rem}"
    ".pp-t td{white-space:normal;overflow-wrap:break-word}.pp-t td.t{white-space:normal}.pp-t .nb{white-space:nowrap}"
    ".pp-t td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    ".pp-t td.w{min-width:4rem;max-width:36rem;white-space:pre-wrap;word-break:break-word}"
    ".pp-dl{display:inline-block;padding:.25rem .75rem;border:1px solid rgba(49,51,63,.2);border-radius:.5rem;"
    "color:inherit!important;text-decoration:none!important;font-size:.875rem;line-height:1.6}"
    ".pp-dl:hover{border-color:#ff4b4b;color:#ff4b4b!important}</style>"
)
# Streamlit's column_config date formats (moment.js tokens) used by the pages, as strftime
_DATE_FORMATS = {"YYYY-MM-DD HH:mm": "%Y-%m-%d %H:%M", "YYYY-MM-DD": "%Y-%m-%d", "YYYY-MM-DD HH:mm:ss": "%Y-%m-%d %H:%M:%S"}


def _missing(value: object) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _wraps(value: object) -> bool:
    """Text long enough to wrap in its cell (ids, messages); short words and times stay on one line."""
    return isinstance(value, str) and len(value) > 24


def _cell(value: object, kind: str | None, fmt: str | None, display: str | None) -> tuple[str, bool]:
    """``(escaped cell html, is a number)`` for one value under a column config."""
    if _missing(value):
        return "", False
    if kind == "link":
        href = html.escape(str(value), quote=True)
        return f'<a href="{href}" target="_self">{html.escape(display or str(value))}</a>', False
    if isinstance(value, (datetime, date, pd.Timestamp)) or kind == "datetime":
        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC")
        # a narrow column breaks a time between its date and its time of day, nowhere else
        text = html.escape(ts.strftime(_DATE_FORMATS.get(fmt or "", "%Y-%m-%d %H:%M")))
        return text.replace(" ", '</span> <span class="nb">', 1).join(('<span class="nb">', "</span>")), False
    if isinstance(value, bool):
        return html.escape(str(value)), False
    if isinstance(value, (int, float)) or kind == "number":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return html.escape(str(value)), False
        if fmt == "percent":
            text = f"{number * 100:.1f}%"
        elif fmt and fmt.startswith("%"):
            text = fmt % number
        elif number.is_integer() and abs(number) < 1e15:
            text = f"{int(number):,}"
        else:
            text = f"{number:,.4g}"
        return html.escape(text), True
    # a name in snake_case may break after an underscore (not inside a word: "on_ti|me")
    return html.escape(str(value)).replace("_", "_<wbr>"), False


def html_table(
    frame: pd.DataFrame, *, key: str, column_config: dict | None = None, max_height: int = 420,
    download: tuple[str | None, str] | None = None,
) -> str:
    """``frame`` as an HTML table: every header and cell escaped (a ``<script>`` in the data shows
    as that text), formatted after Streamlit's ``column_config`` (labels, number and date formats,
    links, help as a tooltip, wide text columns, small ones kept on one line). ``data-key`` names it for tests. ``download``,
    ``(url, file name)``, adds a "Download CSV" link under it."""
    config = column_config or {}
    cols = []
    for name in frame.columns:
        cfg = config.get(name)
        if isinstance(cfg, str):
            cfg = {"label": cfg}
        cfg = cfg or {}
        tc = cfg.get("type_config") or {}
        cols.append((cfg.get("label") or header(name), cfg.get("help"), tc.get("type"), tc.get("format"), tc.get("display_text"),
                     cfg.get("width")))
    head = "".join(
        f'<th title="{html.escape(help_, quote=True)}">{html.escape(label)}</th>' if help_ else f"<th>{html.escape(label)}</th>"
        for label, help_, *_ in cols
    )
    rows = []
    # the same rows as itertuples (which takes each column through .iloc: 0.3-1 ms a column, most
    # of a short table's time on a warm rerun)
    columns = [column for _, column in frame.items()]
    lines = zip(*columns, strict=True) if columns else frame.itertuples(index=False, name=None)
    for values in lines:
        cells = []
        for value, (_label, _help, kind, fmt, display, width) in zip(values, cols, strict=True):
            text, number = _cell(value, kind, fmt, display)
            if number:
                cls = ' class="n"'
            elif width in ("medium", "large"):
                cls = ' class="w"'
            elif width == "small" and kind != "link":
                # a short word kept on one line (a state such as on_time broke as "on_ / time")
                cls, text = ' class="nb"', text.replace("<wbr>", "")
            elif text.startswith('<span class="nb">'):
                cls = ' class="t"'
            else:
                cls = ' class="x"' if _wraps(value) else ""
            cells.append(f"<td{cls}>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    link = ""
    if download and download[0]:
        link = _download_link(download[0], download[1], key)
    return _STYLE + (
        f'<div class="pp-t" style="max-height:{int(max_height)}px" data-key="{html.escape(key, quote=True)}"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{link}"
    )


@dataclass(frozen=True)
class Tile:
    """One KPI tile: ``label`` and ``value``; ``delta``, the change as text, and ``change``, its
    sign (+1 up, -1 down, 0 none) with ``good`` saying which way is good: "up" (green when up),
    "down" (red when up) or "off" (grey); ``help`` shows when the pointer rests on the tile."""

    label: str
    value: str
    delta: str | None = None
    change: int = 0
    good: str = "up"
    help: str | None = None


_TILE_STYLE = (
    "<style>.pp-k{display:grid;grid-template-columns:repeat(var(--n),minmax(0,1fr));gap:1rem;margin-bottom:.5rem}"
    "@media (max-width:640px){.pp-k{grid-template-columns:repeat(2,minmax(0,1fr))}}"
    ".pp-k>div{border:1px solid rgba(49,51,63,.2);border-radius:.5rem;padding:calc(1rem - 1px);min-width:0;container-type:inline-size}"
    ".pp-k .l{font-size:.875rem;margin-bottom:.25rem;overflow-wrap:anywhere}"
    ".pp-k div[title] .l{text-decoration:underline dotted rgba(49,51,63,.4);text-underline-offset:3px;cursor:help}"
    # a value is never cut: its size follows the tile's width (cqi), and a long one wraps
    ".pp-k .v{font-size:clamp(1.25rem,14cqi,2.25rem);line-height:1.25;overflow-wrap:anywhere}"
    ".pp-k .d{display:inline-block;margin-top:.25rem;padding:0 .4rem;border-radius:.75rem;font-size:.875rem;"
    "color:rgba(49,51,63,.6);background:rgba(49,51,63,.08)}"
    ".pp-k .d.g{color:#158237;background:rgba(33,195,84,.1)}.pp-k .d.b{color:#bd4043;background:rgba(255,43,43,.09)}</style>"
)


def tiles_html(items: list[Tile], *, key: str, columns: int = 4) -> str:
    """``items`` as a grid of tiles, ``columns`` to a row (two on a phone), every text escaped; ``data-key`` names it
    for tests. A delta is green when it moves the good way, red when it moves the bad way,
    grey when it does not move or ``good`` is "off"."""
    out = []
    for t in items:
        title = f' title="{html.escape(t.help, quote=True)}"' if t.help else ""
        delta = ""
        if t.delta is not None:
            arrow = {1: "\u25b2 ", -1: "\u25bc "}.get(t.change, "")
            tone = "" if t.good == "off" or t.change == 0 else ("g" if (t.change > 0) == (t.good == "up") else "b")
            delta = f'<div class="d {tone}" data-change="{t.change}">{arrow}{html.escape(t.delta)}</div>'
        out.append(f'<div{title}><div class="l">{html.escape(t.label)}</div><div class="v">{html.escape(t.value)}</div>{delta}</div>')
    return _TILE_STYLE + f'<div class="pp-k" style="--n:{int(columns)}" data-key="{html.escape(key, quote=True)}">{"".join(out)}</div>'


def tiles(items: list[Tile], *, key: str, columns: int = 4) -> None:
    """Draw ``tiles_html(items, columns=columns)``."""
    st.html(tiles_html(items, key=key, columns=columns))
