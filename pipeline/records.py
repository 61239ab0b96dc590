"""Source records: parsing CSV and JSON-lines files, validating them, transforming them.

Each dataset has a schema (``SCHEMAS``): fields with a type and optional checks. Parsing keeps
the physical line number of every record (CSV: the header is line 1) so a rejected record can be
quarantined with its file, line and reason; nothing is dropped silently. Add a dataset by adding
a ``Schema`` here and naming it in a pipeline profile (``pipeline.config.PROFILES``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

__all__ = ["SCHEMAS", "Field", "Reject", "Row", "Schema", "parse", "transform", "validate"]


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # str | int | float | ts | date
    required: bool = True
    choices: tuple[str, ...] = ()
    minimum: float | None = None


@dataclass(frozen=True)
class Schema:
    name: str
    key: str  # the field that identifies a record; the output has one record per key
    fields: tuple[Field, ...]
    derive: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda r: r)

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.fields]


@dataclass(frozen=True)
class Row:
    """A parsed record with where it came from."""

    source: str
    line: int
    values: dict[str, Any]


@dataclass(frozen=True)
class Reject:
    """A record that cannot be loaded, and why."""

    source: str
    line: int
    reason: str
    raw: str

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "line": self.line, "reason": self.reason, "raw": self.raw}


def _orders(r: dict[str, Any]) -> dict[str, Any]:
    r["currency"] = r["currency"].upper()
    r["amount_cents"] = int(round(r["amount"] * 100))
    r["order_day"] = r["created_at"][:10]
    return r


def _clicks(r: dict[str, Any]) -> dict[str, Any]:
    r["url"] = r["url"].split("?", 1)[0]
    r["event_day"] = r["ts"][:10]
    return r


def _finance(r: dict[str, Any]) -> dict[str, Any]:
    r["amount_cents"] = int(round(r["amount"] * 100))
    return r


def _partner(r: dict[str, Any]) -> dict[str, Any]:
    r["line_total"] = round(r["qty"] * r["price"], 2)
    return r


SCHEMAS: dict[str, Schema] = {
    "orders": Schema(
        "orders",
        "order_id",
        (
            Field("order_id", "str"),
            Field("customer_id", "str"),
            Field("amount", "float", minimum=0),
            Field("currency", "str", choices=("USD", "EUR", "GBP")),
            Field("created_at", "ts"),
        ),
        _orders,
    ),
    "clickstream": Schema(
        "clickstream",
        "event_id",
        (
            Field("event_id", "str"),
            Field("session_id", "str"),
            Field("event_type", "str", choices=("view", "click", "add_to_cart", "purchase")),
            Field("url", "str"),
            Field("ts", "ts"),
        ),
        _clicks,
    ),
    "finance": Schema(
        "finance",
        "entry_id",
        (
            Field("entry_id", "str"),
            Field("account", "str"),
            Field("amount", "float"),
            Field("posted_on", "date"),
        ),
        _finance,
    ),
    "partner": Schema(
        "partner",
        "sku",
        (
            Field("sku", "str"),
            Field("partner", "str"),
            Field("qty", "int", minimum=0),
            Field("price", "float", minimum=0),
        ),
        _partner,
    ),
}


def parse(source: str, data: bytes, schema: Schema) -> tuple[list[Row], list[Reject]]:
    """Rows of a CSV (with header) or JSON-lines file; malformed lines become rejects."""
    text = data.decode("utf-8", errors="replace")
    if source.endswith((".jsonl", ".json", ".ndjson")):
        return _parse_jsonl(source, text)
    return _parse_csv(source, text, schema)


def _parse_csv(source: str, text: str, schema: Schema) -> tuple[list[Row], list[Reject]]:
    rows: list[Row] = []
    rejects: list[Reject] = []
    lines = text.splitlines()
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return rows, rejects
    header = [h.strip() for h in header]
    missing = [
        c
        for c in schema.columns
        if c not in header and any(f.required for f in schema.fields if f.name == c)
    ]
    if missing:
        rejects.append(
            Reject(
                source, 1, f"header lacks column(s) {', '.join(missing)}", lines[0] if lines else ""
            )
        )
        for n, line in enumerate(lines[1:], 2):
            if line.strip():
                rejects.append(Reject(source, n, "file header is invalid", line))
        return rows, rejects
    for values in reader:
        n = reader.line_num
        raw = lines[n - 1] if n - 1 < len(lines) else ""
        if not values or not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            rejects.append(
                Reject(source, n, f"expected {len(header)} fields, got {len(values)}", raw)
            )
            continue
        rows.append(Row(source, n, dict(zip(header, values, strict=True))))
    return rows, rejects


def _parse_jsonl(source: str, text: str) -> tuple[list[Row], list[Reject]]:
    rows: list[Row] = []
    rejects: list[Reject] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            rejects.append(
                Reject(source, n, f"not valid JSON: {exc.msg} at column {exc.colno}", line)
            )
            continue
        if not isinstance(value, dict):
            rejects.append(
                Reject(source, n, f"expected a JSON object, got {type(value).__name__}", line)
            )
            continue
        rows.append(Row(source, n, value))
    return rows, rejects


def validate(rows: list[Row], schema: Schema) -> tuple[list[Row], list[Reject]]:
    """Typed, checked rows and the rejects (first problem of each record as the reason)."""
    good: list[Row] = []
    rejects: list[Reject] = []
    for row in rows:
        out: dict[str, Any] = {}
        reason = None
        for f in schema.fields:
            value = row.values.get(f.name)
            if value is None or (isinstance(value, str) and not value.strip()):
                if f.required:
                    reason = f"{f.name}: missing"
                    break
                out[f.name] = None
                continue
            try:
                out[f.name] = _convert(value, f)
            except ValueError as exc:
                reason = f"{f.name}: {exc}"
                break
        if reason:
            raw = json.dumps(row.values, sort_keys=True, default=str)
            rejects.append(Reject(row.source, row.line, reason, raw))
        else:
            good.append(Row(row.source, row.line, out))
    return good, rejects


def _convert(value: Any, f: Field) -> Any:
    if f.kind == "str":
        v = str(value).strip()
        if f.choices and v.upper() not in {c.upper() for c in f.choices}:
            raise ValueError(f"{v!r} is not one of {', '.join(f.choices)}")
        return v
    if f.kind in ("int", "float"):
        try:
            num = float(value) if f.kind == "float" else int(str(value).strip())
        except (TypeError, ValueError):
            raise ValueError(
                f"{value!r} is not {'a number' if f.kind == 'float' else 'a whole number'}"
            ) from None
        if isinstance(num, float) and not math.isfinite(num):
            raise ValueError(f"{value!r} is not a finite number")
        if f.minimum is not None and num < f.minimum:
            raise ValueError(f"{num} is below {f.minimum:g}")
        return num
    if f.kind == "ts":
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 time") from None
        if moment.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone")
        return moment.isoformat()
    if f.kind == "date":
        try:
            return date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    raise ValueError(f"unknown field kind {f.kind}")  # pragma: no cover - schema bug


def transform(rows: list[Row], schema: Schema) -> list[dict[str, Any]]:
    """Derived fields added; one record per key (the last one read wins); sorted by key."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest[str(row.values[schema.key])] = schema.derive(dict(row.values))
    return [latest[k] for k in sorted(latest)]
