"""``pipepulse forecast``: forecast daily spend from a CSV file, or over the store.

    pipepulse forecast INPUT.csv --horizon N [--level 0.8] [--out OUT.csv] [--fill-missing]
    pipepulse forecast snapshot      # jobs.forecast.run over the store
    pipepulse forecast score         # score stored snapshots (ours and AWS's) against actuals

INPUT.csv has a header with ``date`` and ``amount`` (other columns are ignored), one row per
day, dates as YYYY-MM-DD. The output is ``date,mean,lower,upper,model`` (stdout without
``--out``; ``model`` is the candidate the series' own backtest chose); the backtest metrics,
beside last-value's and seasonal-naive's, go to stderr. A row for today (UTC, or ``--today``)
or later is left out, with a note: the day is not over, and its partial spend would read as a
drop. A missing day is an error by default (a gap in a cost
export is more often missing data than zero spend); ``--fill-missing`` counts missing days as
zero. A file literally named ``snapshot`` or ``score`` must be given as ``./snapshot``.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pipepulse.errors import InputError
from pipepulse.export import write_csv
from pipepulse.files import open_private
from pipepulse.redact import terminal_text
from pipepulse.settings import Settings

if TYPE_CHECKING:  # (pandas is imported where it is used: `pipepulse --help` stays quick)
    import pandas as pd

ACTIONS = ("snapshot", "score")
# Stated limits, which bound the memory a forecast takes (a few MB at both): a horizon past a
# year forecasts nothing a daily-spend model can know, and ten years of daily history is more
# than any backtest uses. `--horizon 2000000` was killed by the kernel at 20 GB without them.
MAX_HORIZON = 366
MAX_HISTORY_DAYS = 3660


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "forecast",
        help="forecast daily spend from a date,amount CSV (or: forecast snapshot | score)",
        description="Forecast daily spend from a date,amount CSV file, or over the store: "
        "'pipepulse forecast snapshot' stores forecasts of total and budgeted pipelines' spend, "
        "'pipepulse forecast score' scores stored forecasts (ours and AWS's) against actual spend.",
        epilog="Output: date,mean,lower,upper,model. The chosen model and its backtest (MAE against "
        "last-value's and seasonal-naive's, MAPE, MASE, bias, interval coverage) are printed to stderr.",
    )
    p.add_argument("input", metavar="INPUT.csv", help="daily spend file (date,amount), or 'snapshot' / 'score'")
    p.add_argument("--horizon", type=int, default=None, help="days to forecast ahead (required for a file)")
    p.add_argument("--level", type=float, default=0.8, help="prediction interval level, 0-1 (default 0.8)")
    p.add_argument("--out", metavar="OUT.csv", help="write the forecast here instead of stdout")
    p.add_argument("--fill-missing", action="store_true", help="count days missing from the file as zero spend")
    p.add_argument("--today", type=date.fromisoformat, metavar="YYYY-MM-DD",
                   help="the current, incomplete day: rows from it on are left out (default: today in UTC)")
    p.set_defaults(handler=cmd_forecast)


def cmd_forecast(args: argparse.Namespace, settings: Settings) -> int:
    if args.input in ACTIONS:
        return _store_action(args.input, settings)
    if args.horizon is None:
        raise InputError("--horizon N is required: the number of days to forecast, e.g. --horizon 30")
    if args.horizon < 1:
        raise InputError(f"--horizon must be at least 1 day, got {args.horizon}")
    if args.horizon > MAX_HORIZON:
        raise InputError(f"--horizon {args.horizon} is too far: at most {MAX_HORIZON} days")
    if not 0 < args.level < 1:
        raise InputError(f"--level must be between 0 and 1 (e.g. 0.8), got {args.level}")
    from insights.forecast import forecast_daily

    path = Path(args.input)
    history = read_daily_csv(path, fill_missing=args.fill_missing)
    last = history.index[-1]
    if (date.max - last).days < args.horizon:
        raise InputError(f"{path}, line {history.attrs['last_line']}: date {last} leaves no room for a {args.horizon}-day "
                         f"forecast (the calendar ends on {date.max})")
    today = args.today or datetime.now(UTC).date()
    try:
        fc = forecast_daily(history, horizon=args.horizon, level=args.level, today=today)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    if fc.left_out:
        print(f"left out {len(fc.left_out)} day(s) from {fc.left_out[0]} on: today ({today}) is not over; "
              "the forecast starts with it", file=sys.stderr)
    out = fc.points.head(args.horizon).assign(model=fc.model)
    if args.out:
        with open_private(args.out) as fh:
            write_points(fh, out)
    else:
        write_points(sys.stdout, out)
    b = fc.backtest
    print(
        f"model {fc.method}, chosen by the series' own backtest ({b.points} forecasts, horizons 1-{b.horizon} d): "
        f"MAE {_num(b.mae)} (last-value {_num(b.mae_last_value)}, seasonal-naive {_num(b.mae_seasonal_naive)})  "
        f"MAPE {_pct(b.mape)}  MASE {_num(b.mase)}  bias {_pct(b.bias)}  "
        f"{round(b.level * 100)}% interval coverage {_pct(b.coverage)}",
        file=sys.stderr,
    )
    return 0


def read_daily_csv(path: Path, *, fill_missing: bool = False) -> pd.Series:
    """``date,amount`` rows as a daily Series (``attrs["last_line"]``: the line of its last day);
    InputError naming the file and line otherwise. Read line by line, at most
    ``MAX_HISTORY_DAYS`` days from first to last."""
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read it: {exc.strerror}") from exc
    values: dict[date, float] = {}
    lines: dict[date, int] = {}
    first = last = None
    with fh:
        reader = csv.reader(fh)
        line_no = 1
        try:
            header = next(reader, None)
            if not header:
                raise InputError(f"{path}: the file is empty; expected a header line 'date,amount'")
            names = [h.strip().lower() for h in header]
            if "date" not in names or "amount" not in names:
                raise InputError(f"{path}, line 1: header must name columns date and amount, got {terminal_text(','.join(header))[:200]!r}")
            di, ai = names.index("date"), names.index("amount")
            for row in reader:
                line_no = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) <= max(di, ai):
                    raise InputError(f"{path}, line {line_no}: expected {len(header)} columns, got {len(row)}")
                raw_day, raw_amount = row[di].strip(), row[ai].strip()
                try:
                    # a timestamp is accepted for its date part (exports often write midnight times)
                    day = date.fromisoformat(raw_day[:10] if len(raw_day) > 10 and raw_day[10] in "T " else raw_day)
                except ValueError as exc:
                    raise InputError(f"{path}, line {line_no}: date {terminal_text(raw_day)[:40]!r} is not YYYY-MM-DD") from exc
                try:
                    amount = float(raw_amount)
                except ValueError as exc:
                    raise InputError(f"{path}, line {line_no}: amount {terminal_text(raw_amount)[:40]!r} is not a number") from exc
                if not math.isfinite(amount):
                    raise InputError(f"{path}, line {line_no}: amount {raw_amount[:40]!r} is not a finite number")
                if day in values:
                    raise InputError(f"{path}, line {line_no}: {day} appears twice; give one amount per day")
                first = day if first is None or day < first else first
                last = day if last is None or day > last else last
                span = (last - first).days + 1
                if span > MAX_HISTORY_DAYS:
                    raise InputError(f"{path}, line {line_no}: the file spans {span:,} days ({first} to {last}); "
                                     f"a forecast reads at most {MAX_HISTORY_DAYS:,} days of history")
                values[day] = amount
                lines[day] = line_no
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not a UTF-8 text file (byte 0x{exc.object[exc.start]:02x}); expected date,amount lines") from None
        except csv.Error as exc:
            raise InputError(f"{path}, line {reader.line_num}: not CSV text ({exc})") from None
    if not values:
        raise InputError(f"{path}: no data rows after the header")
    days = sorted(values)
    full = [days[0] + timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)]
    missing = [d for d in full if d not in values]
    if missing and not fill_missing:
        raise InputError(
            f"{path}: {len(missing)} day(s) missing between {days[0]} and {days[-1]}, first {missing[0]}; "
            "add them, or pass --fill-missing to count them as zero spend"
        )
    import pandas as pd

    series = pd.Series([values.get(d, 0.0) for d in full], index=full, dtype=float)
    series.attrs["last_line"] = lines[days[-1]]
    return series


def write_points(out, points: pd.DataFrame) -> None:
    """``date,mean,lower,upper[,model]`` through the one CSV writer."""
    extra = ["model"] if "model" in points.columns else []
    rows = ([r["date"].isoformat(), f"{r['mean']:.4f}", f"{r['lower']:.4f}", f"{r['upper']:.4f}", *(r[k] for k in extra)]
            for r in points.to_dict("records"))
    write_csv(out, ["date", "mean", "lower", "upper", *extra], rows)


def _store_action(action: str, settings: Settings) -> int:
    from jobs.forecast import score_snapshots
    from jobs.registry import job
    from store.db import check_schema, connect

    engine = connect(settings.database_url, create_dirs=False)
    check_schema(engine)
    now = datetime.now(UTC)
    if action == "snapshot":
        ids = job("forecast").run(settings, engine, now=now)
        print(f"stored {len(ids)} forecast snapshot(s)" + (f": {', '.join(map(str, ids))}" if ids else " (no subject had enough history)"))
        return 0
    table = score_snapshots(settings, engine, now=now)
    if table.empty:
        print("no stored forecast has a settled day to score yet")
        return 0
    print(f"{'method':<10} {'subject':<28} {'snaps':>5} {'days':>5} {'MAE':>10} {'MAPE':>7} {'bias':>7} {'cover':>6}")
    for r in table.itertuples(index=False):
        print(f"{r.method:<10} {r.subject:<28} {r.snapshots:>5} {r.days:>5} {r.mae:>10.2f} {_pct(r.mape):>7} {_pct(r.bias):>7} {_pct(r.coverage):>6}")
    return 0


def _pct(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v * 100:.1f}%"


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"
