"""Cost export files (FOCUS and legacy CUR) -> daily cost rows: finding, reading, summing, and
the collector for the ``focus`` and ``cur`` sources.

``find_files(["s3://bucket/prefix", "path/", "file.csv.gz"])`` finds the files (a local file, a
folder searched recursively, or every object under an ``s3://`` prefix as AWS Data Exports
writes them: ``.../data/BILLING_PERIOD=YYYY-MM/*.csv.gz|*.parquet``); ``read_all`` tells FOCUS
from CUR by their columns (``collectors/focus.py`` and ``collectors/cur.py`` parse them),
rejecting malformed rows with file, line and reason; ``summarise`` sums the rest per day and key
and ``cost_days`` says what they replace. ``jobs/import_costs.py`` (``pipepulse costs import``)
and ``ExportCollector`` (the ``focus`` and ``cur`` sources) hand that to
``collectors.runner.persist``.

Storing: per source, each calendar month that the charges fall in is *replaced* in one
transaction (``CostDays``, written by ``store.costs.replace_cost_rows``): a restated export
replaces its month, and importing the same files again changes nothing. So import every file of
a month together (a folder or prefix does); a lone second part of a month would replace the first.

Line numbers: CSV data rows are numbered as lines of the file (header = line 1), which is exact
unless a quoted value spans lines; Parquet rows are numbered from 1 as ``row N``.

Extending to another format: a module like ``collectors/focus.py`` with ``wanted_columns`` and a
parser producing ``collectors.costrows.Parsed``, added to ``FORMATS`` and ``detect_kind``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from botocore import exceptions as bx

from collectors import cur, focus
from collectors.base import Batch, Collector, Context, CostDays
from collectors.costrows import Parsed, Rejection, month_label, normalise_name
from pipepulse.errors import CollectorError, ConfigError, InputError
from pipepulse.settings import Settings, opt

__all__ = [
    "CostFile",
    "ExportCollector",
    "ImportResult",
    "Plan",
    "cost_days",
    "create_cur",
    "create_focus",
    "daily_rows",
    "detect_kind",
    "find_files",
    "read_all",
    "read_cost_file",
    "summarise",
    "to_collector_error",
]

log = logging.getLogger(__name__)

KEY_COLUMNS = ("day", "provider", "account", "service", "region", "usage_type", "pipeline", "currency")
SUFFIXES = (".csv", ".csv.gz", ".parquet", ".csv.zip")
NULL_STRINGS = ["NULL", "null", ""]
# kind -> (the columns to read from a file with these columns, the parser)
FORMATS = {
    "focus": (focus.wanted_columns, focus.parse_focus),
    "cur": (cur.wanted_columns, cur.parse_cur),
}


@dataclass(frozen=True)
class CostFile:
    """A file to import: a local path, or an S3 object (``bucket``, ``key``)."""

    name: str  # what messages show: the path or s3://bucket/key
    path: Path | None = None
    bucket: str | None = None
    key: str | None = None
    etag: str | None = None


@dataclass
class ImportResult:
    """What an import did, for the CLI and the collectors."""

    files: list[tuple[str, str, int, int]] = field(default_factory=list)  # name, kind, rows read, rejected
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # name, reason
    rejections: list[Rejection] = field(default_factory=list)  # the first ``keep_rejections``
    rows_read: int = 0
    rows_rejected: int = 0
    daily_rows: int = 0  # cost_daily rows the good rows sum into
    rows_stored: int = 0  # cost_daily rows inserted, changed or deleted
    months: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)  # (source, billing month) -> totals
    replaced: dict[str, list[str]] = field(default_factory=dict)  # source -> calendar months replaced
    # (source, billing month, currency) -> totals, for months billed in more than one currency
    currencies: dict[tuple[str, str, str], dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was skipped or ignored, and why (not errors)
    duplicates: int = 0  # line items given more than once (same identity), counted once
    versions: dict[str, str] = field(default_factory=dict)  # file name -> "FOCUS 1.2", "CUR 2.0", ...

    @property
    def ok(self) -> bool:
        return not self.unreadable


# ---- finding files ---------------------------------------------------------------------------


def find_files(sources: Iterable[str], *, s3_client: Any = None, client_factory: Callable[[], Any] | None = None,
               notes: list[str] | None = None) -> tuple[list[CostFile], list[tuple[str, str]]]:
    """Expand paths, folders and ``s3://`` prefixes into files; returns (files, problems).

    Each file comes once: a path given twice (or also inside a folder given), an object under
    two overlapping prefixes, is read once, and the repeat is added to ``notes``."""
    files, problems = _find_files(sources, s3_client=s3_client, client_factory=client_factory)
    seen: set[tuple[str, str]] = set()
    out: list[CostFile] = []
    for f in files:
        ident = ("s3", f"{f.bucket}/{f.key}") if f.path is None else ("file", str(f.path.resolve()))
        if ident in seen:
            if notes is not None:
                notes.append(f"{f.name}: given more than once (a repeated path, or overlapping folders or prefixes): read once")
            continue
        seen.add(ident)
        out.append(f)
    return out, problems


def _find_files(sources: Iterable[str], *, s3_client: Any, client_factory: Callable[[], Any] | None) -> tuple[list[CostFile], list[tuple[str, str]]]:
    files: list[CostFile] = []
    problems: list[tuple[str, str]] = []
    for source in sources:
        if source.startswith("s3://"):
            bucket, _, prefix = source[5:].partition("/")
            if not bucket:
                problems.append((source, "an S3 location needs a bucket: s3://bucket/prefix"))
                continue
            if s3_client is None:
                s3_client = client_factory() if client_factory else _default_s3()
            try:
                found = [
                    CostFile(name=f"s3://{bucket}/{o['Key']}", bucket=bucket, key=o["Key"], etag=str(o.get("ETag", "")).strip('"'))
                    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                    for o in page.get("Contents", [])
                    if _is_cost_file(o["Key"])
                ]
            except CollectorError:
                raise  # a collector's client already says what to do
            except Exception as exc:  # noqa: BLE001 - botocore's errors, reported per location
                problems.append((source, f"cannot list: {_aws_reason(exc, 's3:ListBucket')}"))
                continue
            if not found:
                problems.append((source, "no .csv, .csv.gz or .parquet objects under this prefix"))
            files.extend(sorted(found, key=lambda f: f.name))
            continue
        path = Path(source)
        if path.is_dir():
            found = [CostFile(name=str(p), path=p) for p in sorted(path.rglob("*")) if p.is_file() and _is_cost_file(p.name)]
            if not found:
                problems.append((source, "no .csv, .csv.gz or .parquet files in this folder"))
            files.extend(found)
        elif path.is_file():
            files.append(CostFile(name=str(path), path=path))
        else:
            problems.append((source, "no such file or folder"))
    return files, problems


def _is_cost_file(name: str) -> bool:
    low = name.lower()
    return low.endswith(SUFFIXES) and not low.rsplit("/", 1)[-1].startswith(".")


def _default_s3() -> Any:
    return boto3.client("s3")


# ---- reading ---------------------------------------------------------------------------------


def _open_bytes(f: CostFile, s3_client: Any) -> bytes:
    if f.path is not None:
        return f.path.read_bytes()
    try:
        obj = s3_client.get_object(Bucket=f.bucket, Key=f.key)
        return obj["Body"].read()
    except CollectorError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore's errors, reported per file
        raise InputError(f"{f.name}: cannot read: {_aws_reason(exc, 's3:GetObject')}") from exc


def _aws_reason(exc: BaseException, action: str) -> str:
    """A one-line reason for a failed S3 call, naming the IAM action when access was denied."""
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        code = err.get("Code", "")
        if code in ("AccessDenied", "403"):
            return f"access denied: grant {action}"
        return f"{code}: {err.get('Message', '') or exc}"
    return str(exc)


def detect_kind(columns: Sequence[str]) -> str | None:
    """``focus``, ``cur`` or None from a file's column names."""
    cols = set(columns)
    if {"BilledCost", "ChargePeriodStart"} <= cols:
        return "focus"
    norm = {normalise_name(c) for c in columns}
    if {"line_item_unblended_cost", "line_item_usage_start_date"} <= norm:
        return "cur"
    return None


def read_cost_file(f: CostFile, *, tag_key: str, s3_client: Any = None) -> Parsed:
    """Read one FOCUS or CUR file; raises InputError when it cannot be read at all."""
    try:
        data = _open_bytes(f, s3_client)
    except OSError as exc:
        raise InputError(f"{f.name}: cannot read: {exc.strerror or exc}") from exc
    low = f.name.lower()
    try:
        if low.endswith(".parquet"):
            pf = pq.ParquetFile(pa.BufferReader(data))
            columns = pf.schema_arrow.names
            kind = detect_kind(columns)
            if kind is None:
                raise InputError(f"{f.name}: neither FOCUS (BilledCost, ChargePeriodStart) nor CUR (line_item_unblended_cost, line_item_usage_start_date) columns")
            wanted = FORMATS[kind][0](columns, tag_key)
            table = pf.read(columns=wanted)
            table = table.rename_columns([normalise_name(c) if kind == "cur" else c for c in table.column_names])
            lines = np.arange(1, table.num_rows + 1, dtype=np.int64)
            unit, early = "row", []
        else:
            raw = _decompress(data, low, f.name)
            header = _csv_header(raw, f.name)
            kind = detect_kind(header)
            if kind is None:
                raise InputError(f"{f.name}: neither FOCUS (BilledCost, ChargePeriodStart) nor CUR (lineItem/UnblendedCost, lineItem/UsageStartDate) columns")
            wanted = FORMATS[kind][0](header, tag_key)
            table, lines, early = _read_csv(raw, wanted, f.name)
            if kind == "cur":
                table = table.rename_columns([normalise_name(c) for c in table.column_names])
            unit = "line"
        all_columns = columns if low.endswith(".parquet") else header
        table = _text_columns(table, f.name, unit)
    except InputError:
        raise
    except (pa.ArrowInvalid, pa.ArrowException, OSError, ValueError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"{f.name}: not a readable {'Parquet' if low.endswith('.parquet') else 'CSV'} file: {exc}") from exc
    try:
        parsed = FORMATS[kind][1](table, file=f.name, lines=lines, unit=unit, tag_key=tag_key)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise InputError(f"{f.name}: a column has a type a {kind.upper()} export does not use: {exc}") from exc
    parsed.version = cur.version(all_columns) if kind == "cur" else focus.version(all_columns)
    if kind == "focus":
        unknown = focus.unknown_columns(all_columns)
        if unknown:
            shown = ", ".join(unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
            parsed.notes.append(f"{f.name}: ignored {len(unknown)} column(s) that are not FOCUS 1.0-1.2: {shown}")
    if early:
        parsed.rejections = sorted([*early, *parsed.rejections], key=lambda r: r.line or 0)
        parsed.rows_read += len(early)
    return parsed


def _text_columns(table: pa.Table, name: str, unit: str) -> pa.Table:
    """Binary columns (Parquet ``BYTE_ARRAY`` without a UTF8 annotation) as text, or an error
    naming the column and the first row that is not UTF-8 text."""
    for i, field_ in enumerate(table.schema):
        if not (pa.types.is_binary(field_.type) or pa.types.is_large_binary(field_.type)):
            continue
        col = table.column(i)
        try:
            table = table.set_column(i, field_.name, pc.cast(col, pa.string()))
        except pa.ArrowInvalid:
            row = next(r for r, v in enumerate(col.to_pylist(), start=1) if v is not None and not _utf8(v))
            raise InputError(f"{name}: {unit} {row}: column {field_.name} holds binary data that is not UTF-8 text; "
                             "export it as a string column") from None
    return table


def _utf8(v: bytes) -> bool:
    try:
        v.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decompress(data: bytes, low: str, name: str) -> bytes:
    if low.endswith(".gz"):
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputError(f"{name}: not a readable gzip file: {exc}") from exc
    if low.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = [m for m in z.namelist() if m.lower().endswith(".csv")]
            if len(members) != 1:
                raise InputError(f"{name}: expected one .csv inside the zip, found {len(members)}")
            return z.read(members[0])
    return data


def _csv_header(raw: bytes, name: str) -> list[str]:
    end = raw.find(b"\n")
    first = raw[: end if end >= 0 else len(raw)].decode("utf-8-sig", errors="strict").rstrip("\r")
    if not first.strip():
        raise InputError(f"{name}: empty file (no header line)")
    return next(csv.reader([first]))


def _read_csv(raw: bytes, wanted: list[str], name: str) -> tuple[pa.Table, np.ndarray, list[Rejection]]:
    """All wanted columns as strings (values are checked per row later) and each row's line."""
    bad: list[Rejection] = []

    def on_invalid(row: Any) -> str:
        bad.append(Rejection(name, row.number, f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    def read(threads: bool) -> pa.Table:
        return pacsv.read_csv(
            pa.BufferReader(raw),
            read_options=pacsv.ReadOptions(use_threads=threads),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted,
                column_types={c: pa.string() for c in wanted},
                null_values=NULL_STRINGS,
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )

    table = read(True)
    if any(r.line is None for r in bad):
        # pyarrow knows line numbers of bad rows only when reading on one thread
        bad.clear()
        table = read(False)
    total = table.num_rows + len(bad)
    lines = np.arange(2, total + 2, dtype=np.int64)
    skipped = {r.line for r in bad if r.line is not None}
    if skipped:
        lines = lines[~np.isin(lines, list(skipped))][: table.num_rows]
    return table, lines, bad


# ---- summing -----------------------------------------------------------------------------


def daily_rows(lines: pa.Table) -> pd.DataFrame:
    """Good line items summed per day and key: the ``cost_daily`` rows of one source."""
    if lines.num_rows == 0:
        return pd.DataFrame(columns=[*KEY_COLUMNS, "billed_cost", "effective_cost", "usage_quantity"])
    out = lines.group_by(list(KEY_COLUMNS), use_threads=False).aggregate(
        [("billed_cost", "sum"), ("effective_cost", "sum"), ("usage_quantity", "sum")]
    )
    frame = out.rename_columns([c.removesuffix("_sum") for c in out.column_names]).to_pandas(
        types_mapper=None, date_as_object=True
    )
    frame = frame.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)
    for col in KEY_COLUMNS:
        if col != "day":
            frame[col] = frame[col].astype(object)
    return frame


def read_all(files: Sequence[CostFile], *, tag_key: str, s3_client: Any, result: ImportResult,
             keep_rejections: int = 1000, kinds: Sequence[str] = ("focus", "cur")) -> list[Parsed]:
    """Read every file, recording what was read, rejected or unreadable in ``result``."""
    parsed: list[Parsed] = []
    for f in files:
        try:
            p = read_cost_file(f, tag_key=tag_key, s3_client=s3_client)
        except InputError as exc:
            result.unreadable.append((f.name, str(exc).removeprefix(f"{f.name}: ")))
            continue
        if p.kind not in kinds:
            result.unreadable.append((f.name, f"a {p.kind.upper()} file where {' or '.join(k.upper() for k in kinds)} was expected"))
            continue
        parsed.append(p)
        result.notes.extend(p.notes)
        result.versions[f.name] = p.version
        result.files.append((f.name, p.kind, p.rows_read, len(p.rejections)))
        result.rows_read += p.rows_read
        result.rows_rejected += len(p.rejections)
        room = keep_rejections - len(result.rejections)
        if room > 0:
            result.rejections.extend(p.rejections[:room])
    return parsed


@dataclass
class Plan:
    """The daily rows of one source and the calendar months they replace."""

    kind: str
    rows: pd.DataFrame
    months: list[date]


def summarise(parsed: Sequence[Parsed], result: ImportResult) -> list[Plan]:
    """Sum parsed files per source into daily rows; fills the per-month totals of ``result``."""
    by_kind: dict[str, list[pa.Table]] = {}
    for p in parsed:
        by_kind.setdefault(p.kind, []).append(p.lines)
    plans = []
    for kind, tables in by_kind.items():
        lines = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        lines = _drop_repeated_line_items([p for p in parsed if p.kind == kind], lines, result)
        if lines.num_rows == 0:
            continue
        totals = lines.group_by(["billing_period", "currency"]).aggregate(
            [("billed_cost", "sum"), ("effective_cost", "sum"), ("billed_cost", "count")]
        ).to_pylist()
        for t in sorted(totals, key=lambda t: (t["billing_period"], t["currency"])):
            month = month_label(t["billing_period"])
            row = {"billed_cost": float(t["billed_cost_sum"]), "effective_cost": float(t["effective_cost_sum"]), "rows": int(t["billed_cost_count"])}
            result.currencies[(kind, month, t["currency"])] = row
            # the month's totals; over several currencies they are a count of rows, not money
            acc = result.months.setdefault((kind, month), {"billed_cost": 0.0, "effective_cost": 0.0, "rows": 0})
            for k in row:
                acc[k] += row[k]
        rows = daily_rows(lines)
        result.daily_rows += len(rows)
        months = sorted({d.replace(day=1) for d in set(rows["day"])})
        result.replaced[kind] = [m.strftime("%Y-%m") for m in months]
        plans.append(Plan(kind, rows, months))
    return plans


def _drop_repeated_line_items(parsed: Sequence[Parsed], lines: pa.Table, result: ImportResult) -> pa.Table:
    """Keep the first of line items given more than once (same identity: CUR's
    ``identity_line_item_id`` and ``identity_time_interval``), and say where each repeat was."""
    if not parsed or any(p.row_ids is None for p in parsed):
        return lines
    ids = pd.Series(pa.chunked_array([p.row_ids for p in parsed]).to_numpy(zero_copy_only=False))
    repeated = ids.duplicated(keep="first").to_numpy()
    if not repeated.any():
        return lines
    where = [(p.file, p.lines.column("line").to_numpy(), p.lines.num_rows) for p in parsed]
    offsets = np.cumsum([0, *[n for *_, n in where]])
    shown = ids[repeated].iloc[:5]
    firsts = ids[ids.isin(set(shown))].drop_duplicates(keep="first")
    first_at = dict(zip(firsts.to_numpy(), firsts.index, strict=True))

    def place(i: int) -> str:
        k = int(np.searchsorted(offsets, i, side="right")) - 1
        unit = "row" if where[k][0].lower().endswith(".parquet") else "line"
        return f"{where[k][0]} {unit} {where[k][1][i - offsets[k]]}"

    count = int(repeated.sum())
    result.duplicates += count
    for i in np.flatnonzero(repeated)[:5]:
        result.notes.append(f"{place(int(i))}: repeats line item {ids[i].split('|')[0]!r} of {place(first_at[ids[i]])}: counted once")
    if count > 5:
        result.notes.append(f"... and {count - 5:,} more repeated line items, each counted once")
    return lines.filter(pa.array(~repeated))


def cost_days(plans: Sequence[Plan]) -> list[CostDays]:
    """What the plans replace: per source, each calendar month's daily rows."""
    out = []
    for plan in plans:
        first = {d: d.replace(day=1) for d in set(plan.rows["day"])}
        month_of_row = plan.rows["day"].map(first)
        for m in plan.months:
            nxt = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
            out.append(CostDays(source=plan.kind, start=m, end=nxt, rows=plan.rows[month_of_row == m]))
    return out


def to_collector_error(source: str, result: ImportResult) -> CollectorError | None:
    """A CollectorError when files could not be read (for collectors), else None."""
    if not result.unreadable:
        return None
    first = "; ".join(f"{n}: {r}" for n, r in result.unreadable[:3])
    more = f" (and {len(result.unreadable) - 3} more)" if len(result.unreadable) > 3 else ""
    return CollectorError(source, f"{len(result.unreadable)} file(s) could not be read: {first}{more}")


# ---- the collector the runner runs for ``focus`` and ``cur`` ---------------------------------


class ExportCollector(Collector):
    """Imports the export files under ``[collectors.<name>] paths`` (s3:// prefixes or folders).

    Files are grouped by folder (AWS Data Exports write one folder per billing period); a group
    is read again only when its files changed (names and ETags, or sizes and mtimes), so a pass
    with nothing new makes one ListObjectsV2 call per prefix and stores nothing."""

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self.settings = settings

    def _paths(self, ctx: Context) -> list[str]:
        label, where = self.settings.config_label, f"collectors.{self.name}"
        paths = opt(ctx.options, "paths", list, label, where)
        if not paths or not all(isinstance(p, str) and p for p in paths):
            raise ConfigError(f"{label}: [{where}] paths: expected a list of s3://bucket/prefix or folder paths, got {paths!r}")
        return paths

    def collect(self, ctx: Context) -> Batch:
        paths = self._paths(ctx)
        tag_key = ctx.options.get("tag_key", self.settings.cost_tag_key)
        needs_s3 = any(p.startswith("s3://") for p in paths)
        s3 = ctx.client("s3") if needs_s3 else None
        notes: list[str] = []
        files, problems = find_files(paths, s3_client=s3, notes=notes)
        if problems:
            raise CollectorError(self.name, "; ".join(f"{n}: {r}" for n, r in problems))
        groups: dict[str, list[CostFile]] = {}
        for f in files:
            groups.setdefault(f.name.rsplit("/", 1)[0], []).append(f)
        changed: list[CostFile] = []
        marks: dict[str, str] = {}
        for group, members in sorted(groups.items()):
            stamp = hashlib.sha256(
                "\n".join(f"{f.name}|{f.etag or _local_stamp(f)}" for f in sorted(members, key=lambda f: f.name)).encode()
            ).hexdigest()[:32]
            if ctx.watermark(f"files:{group}") != stamp:
                changed.extend(members)
                marks[f"files:{group}"] = stamp
        result = ImportResult(notes=notes)
        parsed = read_all(changed, tag_key=tag_key, s3_client=s3, result=result, kinds=(self.name,))
        error = to_collector_error(self.name, result)
        if error is not None:
            raise error
        return Batch(
            costs=cost_days(summarise(parsed, result)),
            watermarks=marks,
            details={
                "files": len(files), "files_read": len(changed), "rows_read": result.rows_read,
                "rows_rejected": result.rows_rejected, "rejections": [str(r) for r in result.rejections[:20]],
                "months": {f"{k}:{m}:{c}": round(v["billed_cost"], 6) for (k, m, c), v in sorted(result.currencies.items())},
                "duplicates": result.duplicates, "notes": result.notes[:20],
            },
        )


def create_focus(settings: Settings) -> ExportCollector:
    """The collector the runner loads for source ``focus``."""
    return ExportCollector("focus", settings)


def create_cur(settings: Settings) -> ExportCollector:
    """The collector the runner loads for source ``cur``."""
    return ExportCollector("cur", settings)


def _local_stamp(f: CostFile) -> str:
    if f.path is None:
        return ""
    st = f.path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"
