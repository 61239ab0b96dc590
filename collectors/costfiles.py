"""Cost export files (FOCUS and legacy CUR) -> daily cost rows: finding, reading, summing, and
the collector for the ``focus`` and ``cur`` sources.

``find_files(["s3://bucket/prefix", "path/", "file.csv.gz"])`` finds the files (a local file, a
folder searched recursively, or every object under an ``s3://`` prefix as AWS Data Exports
writes them: ``.../data/BILLING_PERIOD=YYYY-MM/*.csv.gz|*.parquet``); ``stream_all`` tells FOCUS
from CUR by their columns (``collectors/focus.py`` and ``collectors/cur.py`` parse them),
rejecting malformed rows with file, line and reason, sums the rest per day and key as it reads,
and ``cost_days`` says what they replace (``read_all``/``summarise``: the same on whole files). ``jobs/import_costs.py`` (``pipepulse costs import``)
and ``ExportCollector`` (the ``focus`` and ``cur`` sources) hand that to
``collectors.runner.persist``.

Streaming: files are read in batches (Parquet row groups via ``iter_batches``, CSV via
``pyarrow.csv.open_csv`` in 4 MB blocks; S3 objects are first copied to a temporary file) and
summed per day and key as they come (``stream_all``, ``Summer``): memory holds one batch, the
daily partial sums and 24 bytes per CUR line item id (``SeenIds``, for counting repeats once).

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

import contextlib
import csv
import gzip
import hashlib
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    "iter_cost_file",
    "read_cost_file",
    "stream_all",
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


# ---- reading (streamed in batches) -------------------------------------------------------------

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


BATCH_ROWS = 65_536  # rows per batch read from a file (Parquet batch size; CSV blocks of 4 MB hold fewer)
CSV_BLOCK_BYTES = 4 << 20


@dataclass
class FileHead:
    """What is known of a file before its rows: the format, version and notes on its columns."""

    kind: str
    version: str
    notes: list[str]


def _local_copy(f: CostFile, s3_client: Any, stack: contextlib.ExitStack) -> Path:
    """The file on disk: a local path as is, an S3 object downloaded to a temporary file (so that
    a large object is streamed to disk, not held in memory)."""
    if f.path is not None:
        return f.path
    tmp = stack.enter_context(tempfile.NamedTemporaryFile(prefix="pipepulse-cost-", suffix=Path(f.key or "x").suffix))
    try:
        body = s3_client.get_object(Bucket=f.bucket, Key=f.key)["Body"]
        shutil.copyfileobj(body, tmp, 8 << 20)  # one GetObject, copied in 8 MB pieces
        tmp.flush()
    except CollectorError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore's errors, reported per file
        raise InputError(f"{f.name}: cannot read: {_aws_reason(exc, 's3:GetObject')}") from exc
    return Path(tmp.name)


def _arrow_stream(path: Path, low: str, name: str, stack: contextlib.ExitStack) -> Any:
    """The CSV text as an Arrow input stream: gzip undone in Arrow's own reader (less memory and
    no GIL, unlike Python's gzip behind ``pa.PythonFile``), zip through Python."""
    if low.endswith(".gz"):
        return stack.enter_context(pa.CompressedInputStream(pa.OSFile(str(path)), "gzip"))
    if low.endswith(".zip"):
        return pa.PythonFile(_open_text_stream(path, low, name, stack), mode="r")
    return stack.enter_context(pa.OSFile(str(path)))


def _open_text_stream(path: Path, low: str, name: str, stack: contextlib.ExitStack) -> Any:
    """A binary stream of the CSV text (gzip and zip undone as it is read)."""
    if low.endswith(".gz"):
        return stack.enter_context(gzip.open(path, "rb"))
    if low.endswith(".zip"):
        z = stack.enter_context(zipfile.ZipFile(path))
        members = [m for m in z.namelist() if m.lower().endswith(".csv")]
        if len(members) != 1:
            raise InputError(f"{name}: expected one .csv inside the zip, found {len(members)}")
        return stack.enter_context(z.open(members[0]))
    return stack.enter_context(path.open("rb"))


def iter_cost_file(f: CostFile, *, tag_key: str, s3_client: Any = None,
                   batch_rows: int = BATCH_ROWS) -> Iterator[FileHead | Parsed]:
    """Read one FOCUS or CUR file in batches: first a ``FileHead``, then a ``Parsed`` per batch
    (at most ``batch_rows`` rows, plus the CSV rows rejected before parsing). Raises InputError
    when the file cannot be read; rows already yielded then belong to an unreadable file, and the
    caller drops them (``stream_all`` does)."""
    low = f.name.lower()
    is_parquet = low.endswith(".parquet")
    with contextlib.ExitStack() as stack:
        try:
            path = _local_copy(f, s3_client, stack)
            if is_parquet:
                yield from _iter_parquet(f, path, tag_key, batch_rows)
            else:
                yield from _iter_csv(f, path, low, tag_key, batch_rows, stack)
        except InputError:
            raise
        except OSError as exc:
            if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
                raise InputError(f"{f.name}: cannot read: {exc.strerror or exc}") from exc
            raise InputError(f"{f.name}: not a readable {'Parquet' if is_parquet else 'CSV'} file: {exc}") from exc
        except (pa.ArrowInvalid, pa.ArrowException, ValueError, EOFError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            raise InputError(f"{f.name}: not a readable {'Parquet' if is_parquet else 'CSV'} file: {exc}") from exc


def _head(f: CostFile, columns: Sequence[str], csv_names: bool) -> FileHead:
    kind = detect_kind(columns)
    if kind is None:
        cur_cols = "lineItem/UnblendedCost, lineItem/UsageStartDate" if csv_names else "line_item_unblended_cost, line_item_usage_start_date"
        raise InputError(f"{f.name}: neither FOCUS (BilledCost, ChargePeriodStart) nor CUR ({cur_cols}) columns")
    notes = []
    if kind == "focus":
        unknown = focus.unknown_columns(columns)
        if unknown:
            shown = ", ".join(unknown[:8]) + (f" and {len(unknown) - 8} more" if len(unknown) > 8 else "")
            notes.append(f"{f.name}: ignored {len(unknown)} column(s) that are not FOCUS 1.0-1.2: {shown}")
    return FileHead(kind, cur.version(columns) if kind == "cur" else focus.version(columns), notes)


def _parse_batch(f: CostFile, head: FileHead, table: pa.Table, lines: np.ndarray, unit: str, tag_key: str) -> Parsed:
    if head.kind == "cur":
        table = table.rename_columns([normalise_name(c) for c in table.column_names])
    table = _text_columns(table, f.name, unit, lines)
    try:
        parsed = FORMATS[head.kind][1](table, file=f.name, lines=lines, unit=unit, tag_key=tag_key)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise InputError(f"{f.name}: a column has a type a {head.kind.upper()} export does not use: {exc}") from exc
    parsed.version = head.version
    return parsed


def _iter_parquet(f: CostFile, path: Path, tag_key: str, batch_rows: int) -> Iterator[FileHead | Parsed]:
    # buffered reads of column chunks (not whole row groups at once): less memory per batch
    pf = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
    columns = pf.schema_arrow.names
    head = _head(f, columns, csv_names=False)
    yield head
    wanted = FORMATS[head.kind][0](columns, tag_key)
    start = 1
    for batch in pf.iter_batches(batch_size=batch_rows, columns=wanted, use_threads=False):
        n = batch.num_rows
        lines = np.arange(start, start + n, dtype=np.int64)
        start += n
        yield _parse_batch(f, head, pa.Table.from_batches([batch]), lines, "row", tag_key)
    if start == 1:  # no rows: still one (empty) batch, so the file is counted
        empty = pa.table({c: pa.array([], pf.schema_arrow.field(c).type) for c in wanted})
        yield _parse_batch(f, head, empty, np.arange(0, dtype=np.int64), "row", tag_key)


def _iter_csv(f: CostFile, path: Path, low: str, tag_key: str, batch_rows: int,
              stack: contextlib.ExitStack) -> Iterator[FileHead | Parsed]:
    try:
        with _open_text_stream(path, low, f.name, contextlib.ExitStack()) as first:
            header = _csv_header(first.readline(), f.name)
    except (OSError, EOFError) as exc:
        if low.endswith(".gz"):
            raise InputError(f"{f.name}: not a readable gzip file: {exc}") from exc
        raise
    head = _head(f, header, csv_names=True)
    yield head
    wanted = FORMATS[head.kind][0](header, tag_key)
    stream = _arrow_stream(path, low, f.name, stack)
    bad: list[Rejection] = []

    def on_invalid(row: Any) -> str:
        bad.append(Rejection(f.name, row.number, f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    # one thread: pyarrow knows the line numbers of bad rows only then (and the machine's other
    # core is the database's); blocks of CSV_BLOCK_BYTES bound the memory of a batch
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=CSV_BLOCK_BYTES),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            include_columns=wanted,
            column_types={c: pa.string() for c in wanted},
            null_values=NULL_STRINGS,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    next_line = 2  # the header is line 1
    pending: list[Rejection] = []
    got_any = False
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        pending.extend(bad)
        bad.clear()
        for off in range(0, max(batch.num_rows, 1), batch_rows):
            part = batch.slice(off, batch_rows)
            n = part.num_rows
            skipped = {r.line for r in pending if r.line is not None}
            cand = np.arange(next_line, next_line + n + len(skipped), dtype=np.int64)
            if skipped:
                cand = cand[~np.isin(cand, list(skipped))]
            lines = cand[:n]
            last = int(lines[-1]) if n else next_line - 1
            early = [r for r in pending if r.line is None or r.line <= last]
            pending = [r for r in pending if not (r.line is None or r.line <= last)]
            next_line = last + 1
            got_any = True
            yield _with_early(_parse_batch(f, head, pa.Table.from_batches([part]), lines, "line", tag_key), early)
    pending.extend(bad)
    if pending or not got_any:
        empty = pa.table({c: pa.array([], pa.string()) for c in wanted})
        yield _with_early(_parse_batch(f, head, empty, np.arange(0, dtype=np.int64), "line", tag_key), pending)


def _with_early(parsed: Parsed, early: list[Rejection]) -> Parsed:
    """Add the rows the CSV reader rejected (wrong field count) to a parsed batch."""
    if early:
        parsed.rejections = sorted([*early, *parsed.rejections], key=lambda r: r.line or 0)
        parsed.rows_read += len(early)
    return parsed


def read_cost_file(f: CostFile, *, tag_key: str, s3_client: Any = None) -> Parsed:
    """Read one FOCUS or CUR file whole (its batches joined); raises InputError when it cannot be
    read at all. Imports use ``stream_all``, which keeps only the daily sums in memory."""
    head: FileHead | None = None
    parts: list[Parsed] = []
    for item in iter_cost_file(f, tag_key=tag_key, s3_client=s3_client):
        if isinstance(item, FileHead):
            head = item
        else:
            parts.append(item)
    assert head is not None and parts
    ids = [p.row_ids for p in parts]
    return Parsed(
        kind=head.kind, file=f.name, lines=pa.concat_tables([p.lines for p in parts]),
        rejections=[r for p in parts for r in p.rejections], rows_read=sum(p.rows_read for p in parts),
        row_ids=None if any(i is None for i in ids) else pa.concat_arrays([i for i in ids if i is not None]),
        version=head.version, notes=list(head.notes),
    )


def _text_columns(table: pa.Table, name: str, unit: str, lines: np.ndarray) -> pa.Table:
    """Binary columns (Parquet ``BYTE_ARRAY`` without a UTF8 annotation) as text, or an error
    naming the column and the first row that is not UTF-8 text."""
    for i, field_ in enumerate(table.schema):
        if not (pa.types.is_binary(field_.type) or pa.types.is_large_binary(field_.type)):
            continue
        col = table.column(i)
        try:
            table = table.set_column(i, field_.name, pc.cast(col, pa.string()))
        except pa.ArrowInvalid:
            row = next(r for r, v in enumerate(col.to_pylist()) if v is not None and not _utf8(v))
            raise InputError(f"{name}: {unit} {lines[row]}: column {field_.name} holds binary data that is not UTF-8 text; "
                             "export it as a string column") from None
    return table


def _utf8(v: bytes) -> bool:
    try:
        v.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _csv_header(first_line: bytes, name: str) -> list[str]:
    first = first_line.decode("utf-8-sig", errors="strict").rstrip("\r\n")
    if not first.strip():
        raise InputError(f"{name}: empty file (no header line)")
    return next(csv.reader([first]))


# ---- summing as the batches stream --------------------------------------------------------

GROUP_COLUMNS = (*KEY_COLUMNS, "billing_period")
SUMS = [("billed_cost", "sum"), ("effective_cost", "sum"), ("usage_quantity", "sum"), ("billed_cost", "count")]
COMPACT_ROWS = 250_000  # partial sums kept before they are summed again (they are per day and key: few)
WHERE_BITS = 40  # a seen line item's place: file number << 40 | line


def _partial(lines: pa.Table) -> pa.Table:
    """Line items (or partial sums) summed per day, key and billing period."""
    if "billed_cost_count" not in lines.column_names:
        lines = lines.append_column("billed_cost_count", pa.array(np.ones(lines.num_rows, dtype=np.int64)))
    out = lines.group_by(list(GROUP_COLUMNS), use_threads=False).aggregate(
        [("billed_cost", "sum"), ("effective_cost", "sum"), ("usage_quantity", "sum"), ("billed_cost_count", "sum")]
    )
    return out.rename_columns([c.removesuffix("_sum") for c in out.column_names])


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _merge_runs(a: tuple[np.ndarray, np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two sorted runs as one (``b``'s entries after ``a``'s equal ones), placed by binary search:
    no sort, and no memory beyond the merged run and a mask."""
    total = len(a[0]) + len(b[0])
    at = np.searchsorted(a[0], b[0], side="right") + np.arange(len(b[0]))
    rest = np.ones(total, dtype=bool)
    rest[at] = False
    out = []
    for x, y in zip(a, b, strict=True):
        merged = np.empty(total, dtype=x.dtype)
        merged[at] = y
        merged[rest] = x
        out.append(merged)
    return out[0], out[1], out[2]


class SeenIds:
    """The line items seen so far (CUR ``identity_line_item_id`` + ``identity_time_interval``),
    as two independent 64-bit hashes per id and where it was first seen: 24 bytes a line item
    (120 MB for 5M), held in sorted runs merged as they grow (a log-structured set), so a batch
    is checked with binary searches. Two ids count as the same only when both hashes agree
    (a false match needs a 128-bit collision)."""

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (h1 sorted, h2, where)

    @staticmethod
    def hashes(ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Two 64-bit hashes of each string (nulls as ''), computed over its bytes 8 at a time in
        numpy (no Python object per id): length-seeded, each word mixed in with splitmix64."""
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        ids = pc.fill_null(ids.cast(pa.large_string()), "")
        n = len(ids)
        bufs = ids.buffers()
        offsets = np.frombuffer(bufs[1], dtype=np.int64)[ids.offset: ids.offset + n + 1]
        data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None and bufs[2].size else np.zeros(1, np.uint8)
        starts, lens = offsets[:-1], np.diff(offsets)
        h1 = _mix(lens.astype(np.uint64) ^ np.uint64(0x9E3779B97F4A7C15))
        h2 = _mix(lens.astype(np.uint64) ^ np.uint64(0xC2B2AE3D27D4EB4F))
        width = int((lens.max() if n else 0) + 7) // 8
        words = None
        if n and (lens == lens[0]).all():  # ids of one length (AWS's are): the bytes as a matrix, padded
            block = np.zeros((n, 8 * width), dtype=np.uint8)
            block[:, : lens[0]] = data[starts[0]: starts[0] + n * lens[0]].reshape(n, lens[0])
            words = block.view(np.uint64)
        lane = np.arange(8, dtype=np.int64)
        for k in range(width):
            if words is not None:
                w = words[:, k]
            else:
                pos = starts[:, None] + (8 * k + lane)
                word = data[np.minimum(pos, len(data) - 1)]
                word[(8 * k + lane)[None, :] >= lens[:, None]] = 0
                w = np.ascontiguousarray(word).view(np.uint64).ravel()
            h1 = _mix(h1 ^ w)
            h2 = _mix(h2 ^ ((w << np.uint64(29)) | (w >> np.uint64(35))) ^ np.uint64(k))
        return h1, h2

    def find(self, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
        """For each (h1, h2): the ``where`` of an earlier equal id, or -1. The batch is searched in
        sorted order (neighbouring probes hit the same cache lines of a large run)."""
        found = np.full(len(h1), -1, dtype=np.int64)
        if not len(h1) or not self.runs:
            return found
        order = np.argsort(h1, kind="stable")
        q1, q2 = h1[order], h2[order]
        for r1, r2, rw in self.runs:
            lo = np.searchsorted(r1, q1, side="left")
            hit = r1[np.minimum(lo, len(r1) - 1)] == q1
            for i in np.flatnonzero(hit):  # equal first hashes: a repeat (or a rare 64-bit clash)
                k = order[i]
                if found[k] >= 0:
                    continue
                j = lo[i]
                while j < len(r1) and r1[j] == q1[i]:
                    if r2[j] == q2[i]:
                        found[k] = rw[j]
                        break
                    j += 1
        return found

    def add(self, h1: np.ndarray, h2: np.ndarray, where: np.ndarray) -> None:
        if not len(h1):
            return
        order = np.argsort(h1, kind="stable")
        self.runs.append((h1[order], h2[order], where[order].astype(np.int64)))
        # merge while the run before is not larger (a binary counter): at most log2(ids / batch)
        # runs, and each id is re-sorted log2 times in all
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= len(self.runs[-1][0]):
            self.runs[-2:] = [_merge_runs(self.runs[-2], self.runs[-1])]

    def extend(self, other: SeenIds) -> None:
        for r in other.runs:
            self.add(*r)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes + b.nbytes + c.nbytes for a, b, c in self.runs)


@dataclass
class _Sums:
    """The partial daily sums of one source (or of one file until it is read to its end)."""

    parts: list[pa.Table] = field(default_factory=list)
    rows: int = 0

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.parts.append(table)
        self.rows += table.num_rows
        if self.rows > COMPACT_ROWS and len(self.parts) > 1:
            self.compact()

    def compact(self) -> None:
        if len(self.parts) > 1:
            self.parts = [_partial(pa.concat_tables(self.parts))]
            self.rows = self.parts[0].num_rows

    def extend(self, other: _Sums) -> None:
        for p in other.parts:
            self.add(p)


@dataclass
class _SourceSums:
    kind: str
    sums: _Sums = field(default_factory=_Sums)
    seen: SeenIds = field(default_factory=SeenIds)
    files: list[str] = field(default_factory=list)


class Summer:
    """Daily sums of line items fed in batches (``add_file`` / ``add`` / ``end_file``): memory is
    one batch, the daily partial sums, and the ids seen (``SeenIds``), never the line items.

    A file's sums and ids are staged and join its source's only at ``end_file``; ``drop_file``
    forgets a file that turned out unreadable half-way, so it adds nothing."""

    def __init__(self, result: ImportResult) -> None:
        self.result = result
        self.sources: dict[str, _SourceSums] = {}
        self._file: tuple[str, str] | None = None  # (kind, name)
        self._sums = _Sums()
        self._seen = SeenIds()
        self._dups: list[tuple[str, str, int]] = []  # (place, id, where of first) of the first repeats
        self._dup_count = 0

    def add_file(self, kind: str, name: str) -> None:
        self._file = (kind, name)
        self._sums, self._seen, self._dups, self._dup_count = _Sums(), SeenIds(), [], 0
        self.sources.setdefault(kind, _SourceSums(kind))

    def add(self, parsed: Parsed) -> None:
        assert self._file is not None
        lines = parsed.lines
        if parsed.row_ids is not None and lines.num_rows:
            src = self.sources[self._file[0]]
            h1, h2 = SeenIds.hashes(parsed.row_ids)
            first = src.seen.find(h1, h2)
            staged = self._seen.find(h1, h2)
            first = np.where(first >= 0, first, staged)
            line_no = lines.column("line").to_numpy()
            where = (np.int64(len(src.files)) << WHERE_BITS) | line_no
            # repeats inside the batch itself: the first of each stays (lexsort is stable)
            n = len(h1)
            order = np.lexsort((h2, h1))
            s1, s2 = h1[order], h2[order]
            same_prev = np.zeros(n, dtype=bool)
            same_prev[1:] = (s1[1:] == s1[:-1]) & (s2[1:] == s2[:-1])
            if same_prev.any():
                group_start = np.maximum.accumulate(np.where(same_prev, 0, np.arange(n)))
                inside = np.zeros(n, dtype=bool)
                inside[order] = same_prev
                first_here = np.empty(n, dtype=np.int64)
                first_here[order] = where[order[group_start]]
                first = np.where(first >= 0, first, np.where(inside, first_here, -1))
            repeated = first >= 0
            new = ~repeated
            self._seen.add(h1[new], h2[new], where[new])
            if repeated.any():
                ids = parsed.row_ids.filter(pa.array(repeated)).to_pylist()
                for k, i in enumerate(np.flatnonzero(repeated)):
                    if len(self._dups) >= 5:
                        break
                    self._dups.append((f"{parsed.file} {'row' if _is_rows(parsed.file) else 'line'} {line_no[i]}",
                                       ids[k], int(first[i])))
                self._dup_count += int(repeated.sum())
                lines = lines.filter(pa.array(new))
        if lines.num_rows:
            self._sums.add(_partial(lines.drop_columns(["line"])))

    def end_file(self) -> None:
        assert self._file is not None
        src = self.sources[self._file[0]]
        src.files.append(self._file[1])
        src.sums.extend(self._sums)
        src.seen.extend(self._seen)
        shown = 5 - min(5, self.result.duplicates)
        for place, ident, first in self._dups[:max(shown, 0)]:
            self.result.notes.append(f"{place}: repeats line item {ident.split('|')[0]!r} of {self._place(src, first)}: counted once")
        self.result.duplicates += self._dup_count
        self._file = None
        self._sums, self._seen = _Sums(), SeenIds()

    def drop_file(self) -> None:
        self._file = None
        self._sums, self._seen = _Sums(), SeenIds()

    @staticmethod
    def _place(src: _SourceSums, where: int) -> str:
        name = src.files[where >> WHERE_BITS]
        return f"{name} {'row' if _is_rows(name) else 'line'} {where & ((1 << WHERE_BITS) - 1)}"

    def plans(self) -> list[Plan]:
        """The daily rows per source; fills the per-month totals of the result."""
        result = self.result
        if result.duplicates > 5:
            result.notes.append(f"... and {result.duplicates - 5:,} more repeated line items, each counted once")
        plans = []
        for kind, src in self.sources.items():
            src.sums.compact()
            if not src.sums.parts:
                continue
            sums = src.sums.parts[0]
            totals = sums.group_by(["billing_period", "currency"], use_threads=False).aggregate(
                [("billed_cost", "sum"), ("effective_cost", "sum"), ("billed_cost_count", "sum")]
            ).to_pylist()
            for t in sorted(totals, key=lambda t: (t["billing_period"], t["currency"])):
                month = month_label(t["billing_period"])
                row = {"billed_cost": float(t["billed_cost_sum"]), "effective_cost": float(t["effective_cost_sum"]),
                       "rows": int(t["billed_cost_count_sum"])}
                result.currencies[(kind, month, t["currency"])] = row
                # the month's totals; over several currencies they are a count of rows, not money
                acc = result.months.setdefault((kind, month), {"billed_cost": 0.0, "effective_cost": 0.0, "rows": 0})
                for k in row:
                    acc[k] += row[k]
            rows = daily_rows(sums)
            result.daily_rows += len(rows)
            months = sorted({d.replace(day=1) for d in set(rows["day"])})
            result.replaced[kind] = [m.strftime("%Y-%m") for m in months]
            plans.append(Plan(kind, rows, months))
        return plans


def _is_rows(name: str) -> bool:
    return name.lower().endswith(".parquet")


def daily_rows(sums: pa.Table) -> pd.DataFrame:
    """Line items or partial sums summed per day and key: the ``cost_daily`` rows of one source."""
    if sums.num_rows == 0:
        return pd.DataFrame(columns=[*KEY_COLUMNS, "billed_cost", "effective_cost", "usage_quantity"])
    out = sums.group_by(list(KEY_COLUMNS), use_threads=False).aggregate(
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


def stream_all(files: Sequence[CostFile], *, tag_key: str, s3_client: Any, result: ImportResult,
               keep_rejections: int = 1000, kinds: Sequence[str] = ("focus", "cur"),
               batch_rows: int = BATCH_ROWS) -> list[Plan]:
    """Read every file in batches and sum them per day as they stream, recording what was read,
    rejected or unreadable in ``result``; the daily rows per source."""
    summer = Summer(result)
    for f in files:
        read = rejected = 0
        kept: list[Rejection] = []
        head: FileHead | None = None
        try:
            for item in iter_cost_file(f, tag_key=tag_key, s3_client=s3_client, batch_rows=batch_rows):
                if isinstance(item, FileHead):
                    head = item
                    if head.kind not in kinds:
                        raise InputError(f"{f.name}: a {head.kind.upper()} file where {' or '.join(k.upper() for k in kinds)} was expected")
                    summer.add_file(head.kind, f.name)
                    continue
                read += item.rows_read
                rejected += len(item.rejections)
                room = keep_rejections - len(result.rejections) - len(kept)
                if room > 0:
                    kept.extend(item.rejections[:room])
                summer.add(item)
        except InputError as exc:
            summer.drop_file()
            result.unreadable.append((f.name, str(exc).removeprefix(f"{f.name}: ")))
            continue
        assert head is not None
        summer.end_file()
        result.notes.extend(head.notes)
        result.versions[f.name] = head.version
        result.files.append((f.name, head.kind, read, rejected))
        result.rows_read += read
        result.rows_rejected += rejected
        result.rejections.extend(kept)
    return summer.plans()


def read_all(files: Sequence[CostFile], *, tag_key: str, s3_client: Any, result: ImportResult,
             keep_rejections: int = 1000, kinds: Sequence[str] = ("focus", "cur")) -> list[Parsed]:
    """Read every file whole (for tools that want the line items; imports use ``stream_all``),
    recording what was read, rejected or unreadable in ``result``."""
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
    """Sum whole parsed files per source into daily rows (``stream_all`` does this as it reads)."""
    summer = Summer(result)
    for p in parsed:
        summer.add_file(p.kind, p.file)
        summer.add(p)
        summer.end_file()
    return summer.plans()


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
        plans = stream_all(changed, tag_key=tag_key, s3_client=s3, result=result, kinds=(self.name,))
        error = to_collector_error(self.name, result)
        if error is not None:
            raise error
        return Batch(
            costs=cost_days(plans),
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
