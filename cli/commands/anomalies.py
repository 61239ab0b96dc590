"""``pipepulse anomalies scan|list|ack|snooze|resolve`` and ``pipepulse detect``.

``scan`` runs the online detector over a CSV (``timestamp,value``) and writes it back with
``score`` (0..1) and ``is_anomaly`` (0/1: the onset of an incident, as an alert would fire);
``detect`` runs the ``detect`` job (``jobs.detect``) over the store; the rest read
and change stored anomalies.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pipepulse.errors import InputError
from pipepulse.export import write_csv
from pipepulse.files import open_private
from pipepulse.redact import terminal_text
from pipepulse.settings import Settings

if TYPE_CHECKING:  # (pandas is imported by the handlers that use it: `pipepulse --help` stays quick)
    import pandas as pd

__all__ = ["MAX_POINTS", "read_series_csv", "register"]

MAX_POINTS = 150_000  # about 1 GB at the peak (104 days of one-minute points); see read_series_csv


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("anomalies", help="scan a CSV for anomalies; list, acknowledge, snooze, resolve stored ones")
    asub = p.add_subparsers(dest="anomalies_command", metavar="COMMAND")
    asub.required = True
    sc = asub.add_parser(
        "scan",
        help="score a timestamp,value CSV online; adds score (0..1) and is_anomaly (0/1)",
        description="Each point's flag depends only on it and earlier points. is_anomaly marks the "
        "first point of an incident; later points of the same incident keep a score >= 0.5.",
    )
    sc.add_argument("input", metavar="INPUT.csv", help="CSV with a header and columns timestamp,value")
    sc.add_argument("--out", metavar="OUT.csv", help="where to write (default: standard output)")
    sc.add_argument("--sensitivity", type=float,
                    help="threshold multiplier (default: the detector's own, chosen on labelled NAB series; higher = fewer alerts)")
    sc.add_argument("--max-points", type=int, default=MAX_POINTS, metavar="N",
                    help=f"read at most N points (default {MAX_POINTS:,}: about 1 GB of memory; about 6 KB more a point)")
    sc.set_defaults(handler=cmd_scan)

    ls = asub.add_parser("list", help="stored anomalies, newest first")
    ls.add_argument("--status", choices=["open", "acknowledged", "snoozed", "resolved"])
    ls.add_argument("--kind", choices=["metric", "duration", "throughput", "failure_rate", "cost"])
    ls.add_argument("--limit", type=int, default=50)
    ls.set_defaults(handler=cmd_list)
    for name, status, text in (("ack", "acknowledged", "acknowledge an anomaly"), ("resolve", "resolved", "mark an anomaly resolved"),
                               ("snooze", "snoozed", "snooze an anomaly until a date-time")):
        sp = asub.add_parser(name, help=text)
        sp.add_argument("fingerprint")
        sp.add_argument("--note", help="why (shown beside the status)")
        sp.add_argument("--by", help="who made the change (shown beside the status)")
        if name == "snooze":
            sp.add_argument("--until", required=True, help="UTC date-time, e.g. 2026-12-01T09:00Z, or from now: +8h, +2d")
        sp.set_defaults(handler=cmd_status, status=status)

    d = sub.add_parser("detect", help="run anomaly detection over the stored metrics, runs and costs")
    d.set_defaults(handler=cmd_detect)


# ---- scan ------------------------------------------------------------------------------------


def _utc_time(text: str) -> pd.Timestamp | None:
    """``text`` as a UTC time (one without an offset is taken as UTC), or None if it is none."""
    import pandas as pd

    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        return None
    if ts is pd.NaT:
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def read_series_csv(path: str | Path, *, max_points: int | None = None) -> pd.DataFrame:
    """Read ``timestamp,value``; InputError naming the file and line for anything malformed.

    Lines are kept in file order (the order a live stream would deliver them), even where a
    timestamp repeats or steps back, as real CloudWatch exports sometimes do. At most
    ``max_points`` points are read (default ``MAX_POINTS``): memory grows with them, about
    6 KB a point at the detector's peak (its baseline windows are points x window wide), so about
    1 GB at the default limit (``bench/bench_cli_memory.py``). A longer file is an error naming
    the line, not a slow death; ``--max-points`` raises the limit knowingly."""
    import pandas as pd

    path = Path(path)
    limit = MAX_POINTS if max_points is None else max_points
    hint = "the file needs a header line 'timestamp,value' and one ISO time and number per line"
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    stamps: list[pd.Timestamp] = []
    values: list[float] = []
    raw_stamps: list[str] = []
    lines: list[int] = []
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: the file is empty; {hint}")
            cols = [h.strip().lower() for h in header]
            if "timestamp" not in cols or "value" not in cols:
                raise InputError(f"{path} line 1: header is {terminal_text(','.join(header))[:200]!r}, missing timestamp and/or value; {hint}")
            ti, vi = cols.index("timestamp"), cols.index("value")
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(stamps) >= limit:
                    raise InputError(f"{path} line {line}: more than {limit:,} points; split the file "
                                     f"(the scan reads at most {limit:,}: --max-points raises it, at about 6 KB a point)")
                if len(row) != len(cols):
                    raise InputError(f"{path} line {line}: {len(row)} fields, expected {len(cols)}; {hint}")
                t, v = row[ti].strip(), row[vi].strip()
                ts = _utc_time(t)
                if ts is None:
                    raise InputError(f"{path} line {line}: timestamp {terminal_text(t)[:80]!r} is not a date-time; use e.g. 2014-02-14 14:30:00")
                try:
                    x = float(v)
                except ValueError:
                    raise InputError(f"{path} line {line}: value {terminal_text(v)[:80]!r} is not a number; {hint}") from None
                if not math.isfinite(x):
                    raise InputError(f"{path} line {line}: value {v[:80]!r} is not finite; drop the line or fill the gap")
                stamps.append(ts)
                values.append(x)
                raw_stamps.append(t)
                lines.append(line)
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not a UTF-8 text file (byte 0x{exc.object[exc.start]:02x}); {hint}") from None
        except csv.Error as exc:
            raise InputError(f"{path} line {reader.line_num}: not CSV text ({exc}); {hint}") from None
    if not stamps:
        raise InputError(f"{path}: no data lines after the header; {hint}")
    return pd.DataFrame({"timestamp": raw_stamps, "value": values, "_ts": stamps, "_line": lines})


def order_note(path: str | Path, frame: pd.DataFrame) -> str | None:
    """A note when timestamps step back or repeat (``read_series_csv`` keeps file order, which the
    scan reads as a live stream): how many lines, and the first of each, so that a file sorted by
    mistake can be told from one that really arrived that way. None when time only moves on."""
    ts = frame["_ts"]
    back = (ts < ts.shift()).to_numpy()
    same = (ts == ts.shift()).to_numpy()
    if not back.any() and not same.any():
        return None
    line = frame["_line"].to_numpy()
    parts = []
    if back.any():
        parts.append(f"{int(back.sum()):,} line(s) step back in time (first: line {line[back.argmax()]})")
    if same.any():
        parts.append(f"{int(same.sum()):,} repeat the timestamp before them (first: line {line[same.argmax()]})")
    return (f"{path}: note: {' and '.join(parts)}; scored in file order, as a live stream delivers "
            "points (a repeat is a second point at that time); sort the file by timestamp first if that "
            "was not meant")


def cmd_scan(args: argparse.Namespace, settings: Settings) -> int:
    import pandas as pd

    from insights.anomaly import STEP_POINTS, DetectorConfig, scan

    if args.max_points < 1:
        raise InputError(f"--max-points must be at least 1, got {args.max_points}")
    frame = read_series_csv(args.input, max_points=args.max_points)
    note = order_note(args.input, frame)
    if note:
        print(note, file=sys.stderr)
    ts = pd.DatetimeIndex(frame["_ts"])
    # the sampling step from the first points only (all inside the warm-up): stays online
    head = pd.Series(ts[:STEP_POINTS]).diff().dt.total_seconds()
    head = head[head > 0]
    step = float(head.median()) if len(head) else 300.0
    overrides = {"sensitivity": args.sensitivity} if args.sensitivity else {}
    try:
        config = DetectorConfig.for_step(step, **overrides)
    except ValueError as exc:
        raise InputError(f"--sensitivity: {exc}") from exc
    result = scan(frame["value"].to_numpy(float), ts, config)
    rows = zip(frame["timestamp"], frame["value"].tolist(), result.score.round(6).tolist(),
               result.is_anomaly.astype(int).tolist(), strict=True)
    header = ["timestamp", "value", "score", "is_anomaly"]
    if args.out:
        with open_private(args.out) as fh:
            write_csv(fh, header, rows)
        print(f"{args.input}: {len(frame):,} points, {int(result.is_anomaly.sum())} anomalies -> {args.out}", file=sys.stderr)
    else:
        write_csv(sys.stdout, header, rows)
    return 0


# ---- store -----------------------------------------------------------------------------------


def _engine(settings: Settings):
    from store.db import check_schema, connect

    engine = connect(settings.database_url, create_dirs=False)
    check_schema(engine)
    return engine


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from store.anomalies import list_anomalies

    engine = _engine(settings)
    try:
        with engine.connect() as conn:
            frame = list_anomalies(conn, status=args.status, kind=args.kind, limit=args.limit)
    finally:
        engine.dispose()
    if frame.empty:
        print("no anomalies")
        return 0
    for r in frame.itertuples():
        print(f"{r.fingerprint}  {r.severity:<8} {r.status:<12} {r.kind:<12} {r.window_start:%Y-%m-%d %H:%M}  "
              f"{r.subject}  observed {r.observed:.4g} expected {r.expected:.4g}")
    return 0


_FROM_NOW = {"h": 3600, "d": 86400}


def snooze_until(text: str, now: datetime) -> datetime:
    """``--until``: a UTC date-time (a time without an offset is UTC), or a span from ``now`` such
    as ``+8h`` or ``+2d``; InputError saying both forms otherwise."""
    hint = "use a UTC date-time such as 2026-12-01T09:00Z, or a span from now such as +8h or +2d"
    value = text.strip()
    if value.startswith("+"):
        amount, unit = value[1:-1], value[-1:].lower()
        if unit not in _FROM_NOW or not amount.isdigit() or int(amount) < 1:
            raise InputError(f"--until {text!r} is not a span; {hint}")
        return now + timedelta(seconds=int(amount) * _FROM_NOW[unit])
    until = _utc_time(value)
    if until is None:
        raise InputError(f"--until {text!r} is not a date-time; {hint}")
    return until.to_pydatetime()


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from store.anomalies import set_status

    until = None
    if getattr(args, "until", None):
        until = snooze_until(args.until, datetime.now(UTC))
    import getpass

    from store.audit import record

    engine = _engine(settings)
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            row = set_status(conn, args.fingerprint, args.status, note=args.note, by=args.by, snoozed_until=until, now=now)
            # the same audit log as the dashboard's admin actions, in the same transaction
            record(conn, at=now, action=f"anomaly_{args.status}", outcome="ok", actor=args.by or f"cli:{getpass.getuser()}",
                   client="cli", target=row["fingerprint"], detail=f"note: {args.note}" if args.note else None)
    finally:
        engine.dispose()
    print(f"{row['fingerprint']}: {row['status']}" + (f" until {row['snoozed_until']:%Y-%m-%d %H:%M}Z" if row["snoozed_until"] else ""))
    return 0


def cmd_detect(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.detect import anomaly_settings
    from jobs.registry import job

    anomaly_settings(settings)  # config errors before touching the database
    engine = _engine(settings)
    try:
        summary = job("detect").run(settings, engine, now=datetime.now(UTC))
    finally:
        engine.dispose()
    print(summary)
    return 0
