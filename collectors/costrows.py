"""The rows cost export files are read into, and the helpers every format's parser shares.

A format parser (``collectors/focus.py``, ``collectors/cur.py``) turns an Arrow table of one
file into a ``Parsed``: typed line items in ``LINE_COLUMNS`` (good rows only) and a
``Rejection`` (file, line, reason) for each bad one. The helpers here work on whole Arrow
columns (numbers, days, text, tags) without a Python object per row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "LINE_COLUMNS",
    "MAX_LINE_AMOUNT",
    "Parsed",
    "Rejection",
    "amount_problems",
    "fallback",
    "finish",
    "is_value",
    "map_value",
    "month_label",
    "month_of",
    "normalise_name",
    "parse_tags",
    "text",
    "to_day",
    "to_number",
]

LINE_COLUMNS = (
    "line", "billing_period", "day", "provider", "account", "service", "region", "usage_type",
    "pipeline", "billed_cost", "effective_cost", "usage_quantity", "currency",
)
# The largest amount one line item may hold, either sign: a billion (in the file's currency) in
# one line is a corrupt or mis-scaled export, and stored it would dwarf every real day.
MAX_LINE_AMOUNT = 1e9
STRING_LIMITS = {"provider": 64, "account": 64, "service": 200, "region": 64, "usage_type": 300, "pipeline": 200, "currency": 8}

@dataclass(frozen=True)
class Rejection:
    """A row left out of the import, and why."""

    file: str
    line: int | None  # CSV line (header is 1) or Parquet row (from 1); None when unknown
    reason: str
    unit: str = "line"  # "line" (CSV) or "row" (Parquet)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.unit == "line" and self.line else f"{self.file} row {self.line}" if self.line else self.file
        return f"{where}: {self.reason}"


@dataclass
class Parsed:
    """One file read: its kind, the good rows (``LINE_COLUMNS``, Arrow), the rejected ones."""

    kind: str  # focus | cur
    file: str
    lines: pa.Table
    rejections: list[Rejection]
    rows_read: int
    # a line item's identity (CUR: identity_line_item_id + identity_time_interval) per good
    # row, for finding line items given twice; None when the file has no such column
    row_ids: pa.Array | None = None
    version: str = ""  # e.g. "FOCUS 1.2", "CUR 2.0", "legacy CUR"
    notes: list[str] = field(default_factory=list)  # what the reader ignored, for the user


def normalise_name(name: str) -> str:
    """``lineItem/UsageStartDate`` -> ``line_item_usage_start_date`` (CUR CSV to Athena names)."""
    if "/" not in name and ":" not in name and name == name.lower():
        return name
    parts = re.split(r"[/:]", name)
    return "_".join(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", p).lower() for p in parts)


def to_number(arr: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Float values and a mask of present-but-not-a-number entries (NaN where null or bad).

    Non-finite values (``inf``, ``-inf``, ``nan``, ``1e400`` which overflows to inf) count as
    bad: one of them in a sum makes every total inf or nan."""
    n = len(arr)
    try:
        values = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    else:
        present = ~pc.is_null(arr).to_numpy(zero_copy_only=False)
        bad = present & ~np.isfinite(values)
        if bad.any():
            values = np.where(bad, np.nan, values)
        return values, bad
    # slow path, only for a column holding something that is not a number
    codes, uniques = _encode(arr)
    parsed = pd.to_numeric(pd.Series(uniques, dtype=object).str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    parsed = np.where(np.isfinite(parsed), parsed, np.nan)
    values = np.full(n, np.nan)
    present = codes >= 0
    values[present] = parsed[codes[present]]
    return values, present & np.isnan(values)


def _encode(arr: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[Any]]:
    """Dictionary codes (-1 for null) and the distinct values, without a Python object per row."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    enc = pc.dictionary_encode(arr)
    codes = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, enc.dictionary.to_pylist()


def to_day(arr: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """UTC days (datetime64[D]) and a mask of present-but-unparseable entries (NaT where null/bad)."""
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is not None:
            arr = pc.cast(arr, pa.timestamp(arr.type.unit, "UTC"))
        days = pc.cast(pc.floor_temporal(arr, unit="day"), pa.timestamp("s")).to_numpy(zero_copy_only=False)
        return days.astype("datetime64[D]"), np.zeros(len(days), dtype=bool)
    if pa.types.is_date(arr.type):
        days = arr.to_numpy(zero_copy_only=False).astype("datetime64[D]")
        return days, np.zeros(len(days), dtype=bool)
    # each distinct timestamp string is parsed once (an hourly month has ~720)
    codes, uniques = _encode(arr if pa.types.is_string(arr.type) else pc.cast(arr, pa.string()))
    parsed = pd.to_datetime(pd.Series(uniques, dtype=object), utc=True, errors="coerce", format="ISO8601")
    udays = parsed.dt.tz_convert(None).dt.floor("D").to_numpy().astype("datetime64[D]")
    out = np.full(len(codes), np.datetime64("NaT"), dtype="datetime64[D]")
    present = codes >= 0
    out[present] = udays[codes[present]]
    return out, present & np.isnat(out)


def text(arr: pa.ChunkedArray | pa.Array | None, n: int, default: str = "") -> pa.Array:
    """A string column with ``default`` for nulls (and for an absent column), as an Arrow array."""
    if arr is None:
        return pc.fill_null(pa.nulls(n, pa.string()), default)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if not pa.types.is_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return pc.fill_null(arr, default)


def map_value(arr: pa.ChunkedArray | pa.Array, key: str, n: int) -> pa.Array:
    """``key``'s value in a map<string, string> column ('' when absent)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return text(pc.map_lookup(arr, pa.scalar(key, arr.type.key_type), "first"), n)


def fallback(primary: pa.Array, secondary: pa.Array) -> pa.Array:
    """``primary`` where it is not empty, else ``secondary``."""
    return pc.if_else(pc.equal(primary, ""), secondary, primary)


def is_value(arr: pa.Array, value: str) -> np.ndarray:
    """A numpy mask of ``arr == value``."""
    return pc.equal(arr, value).to_numpy(zero_copy_only=False)


def month_of(days: np.ndarray) -> np.ndarray:
    """Months since 1970 (int64) for datetime64[D] values; see ``month_label``."""
    return days.astype("datetime64[M]").astype(np.int64)


def month_label(m: int) -> str:
    return f"{1970 + m // 12:04d}-{m % 12 + 1:02d}"


def amount_problems(name: str, raw: Any, values: np.ndarray, bad: np.ndarray, value: Callable[[Any, int], str]) -> list[tuple[np.ndarray, Callable[[int], str]]]:
    """The checks of a cost column: present but not a (finite) number, or beyond ``MAX_LINE_AMOUNT``."""
    def not_a_number(i: int) -> str:
        shown = value(raw, i)
        try:
            float(shown)
        except ValueError:
            return f"{name} {shown!r} is not a number"
        return f"{name} {shown!r} is not a finite number: fix the export (one such value makes every total inf or nan)"

    with np.errstate(invalid="ignore"):
        absurd = np.abs(values) > MAX_LINE_AMOUNT
    return [
        (bad, not_a_number),
        (absurd, lambda i: f"{name} {values[i]:.6g} is beyond +-{MAX_LINE_AMOUNT:.0e} for one line item: a corrupt or mis-scaled export"),
    ]


def finish(kind: str, file: str, lines: np.ndarray, unit: str, columns: dict[str, Any], problems: list[tuple[np.ndarray, Callable[[int], str]]],
           row_ids: pa.Array | None = None) -> Parsed:
    """Build a Parsed from column arrays and (mask, reason-of-row-index) problem checks."""
    n = len(lines)
    rejected = np.zeros(n, dtype=bool)
    rejections: list[Rejection] = []
    for mask, reason in problems:
        new = mask & ~rejected
        for i in np.flatnonzero(new):
            rejections.append(Rejection(file, int(lines[i]), reason(int(i)), unit))
        rejected |= new
    rejections.sort(key=lambda r: r.line or 0)
    arrays: dict[str, Any] = {"line": pa.array(lines)}
    for name in LINE_COLUMNS[1:]:
        v = columns[name]
        if isinstance(v, str):
            arr = pc.fill_null(pa.nulls(n, pa.string()), v)
        elif isinstance(v, np.ndarray):
            arr = pa.array(v, from_pandas=True) if v.dtype.kind in "fM" else pa.array(v)
        else:
            arr = v
        if name in STRING_LIMITS and len(arr) and (pc.max(pc.utf8_length(arr)).as_py() or 0) > STRING_LIMITS[name]:
            arr = pc.utf8_slice_codeunits(arr, 0, STRING_LIMITS[name])
        arrays[name] = arr
    table = pa.table(arrays)
    if rejected.any():
        keep = pa.array(~rejected)
        table = table.filter(keep)
        row_ids = row_ids.filter(keep) if row_ids is not None else None
    return Parsed(kind=kind, file=file, lines=table, rejections=rejections, rows_read=n, row_ids=row_ids)


def parse_tags(arr: pa.ChunkedArray | pa.Array | None, n: int, key: str) -> tuple[pa.Array, np.ndarray]:
    """``key``'s value from a JSON tags column, and a mask of rows whose tags are not a JSON object.

    Each distinct tags string is parsed once (exports repeat a handful of tag sets)."""
    if arr is None:
        return text(None, n), np.zeros(n, dtype=bool)
    if pa.types.is_map(arr.type):  # Parquet exports may hold tags as a map<string, string>
        return map_value(arr, key, n), np.zeros(n, dtype=bool)
    codes, uniques = _encode(arr)
    values: list[str] = []
    bad_u = np.zeros(len(uniques) + 1, dtype=bool)
    for i, s in enumerate(uniques):
        try:
            obj = json.loads(s)
        except (ValueError, TypeError):
            obj = None
        if not isinstance(obj, dict):
            values.append("")
            bad_u[i] = True
            continue
        v = obj.get(key, "")
        values.append("" if v is None else str(v))
    values.append("")
    idx = np.where(codes >= 0, codes, len(uniques))
    return pa.array(values, pa.string()).take(pa.array(idx)), bad_u[idx]
