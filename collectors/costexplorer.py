"""Cost Explorer collector: daily cost by service/region, service/usage type and pipeline tag.

Each pass asks ``GetCostAndUsage`` (DAILY; UnblendedCost, AmortizedCost, UsageQuantity) three
query *shapes* over one window, following ``NextPageToken`` (boto3 has no paginator for it):

    REGION    GroupBy SERVICE + REGION       -> rows (service, region,  '*',        '*')
    USAGE     GroupBy SERVICE + USAGE_TYPE   -> rows (service, '*',     usage_type, '*')
    PIPELINE  GroupBy SERVICE + TAG <key>    -> rows (service, '*',     '*',        pipeline)

Why three shapes and ``'*'``: CE allows two GroupBy keys, so no query gives service x region x
usage type x pipeline, and a region cannot be read reliably from a usage type's prefix (us-east-1
usage types often have none). Each shape sums to the day's total, so they are stored side by side
with ``'*'`` in the dimensions they do not break down, and ``store.costs.daily_cost`` reads the
one shape that answers a question (never two; see ``store/costs.py``). Untagged spend is the
PIPELINE shape's ``''`` pipeline.

Window: the first pass reads ``backfill_days`` (60) up to today, and at least from the first of
the month (the month-end figure beside the forecast needs the month so far); later passes start
``restate_days`` (3) before the last window's end, because AWS restates recent days. The rows of
the whole window replace what was stored for those days (a restated or vanished group shows).
In steady state that is one request per shape per pass, the minimum. ``GetCostForecast`` for
the rest of the month runs at most once per UTC day and is stored as a ``forecast_snapshots``
row with method ``aws`` (subject ``total``) and daily ``forecast_points``; too little history
(``DataUnavailableException``) is recorded in the pass details, not a failure. The month-end
figure adds the cost stored for the month's days before the window, which the runner reads
before the pass (``reads``).

Cost Explorer is a global API (botocore always calls ``ce.us-east-1``), so ``[aws] region`` does
not apply to it; AccessDenied names ``ce:GetCostAndUsage`` / ``ce:GetCostForecast`` to grant.

Options (``[collectors.ce]``): ``backfill_days``, ``restate_days``, ``tag_key`` (default
``[pipepulse] cost_tag_key``), ``forecast`` (true), ``forecast_level`` (80).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd

from collectors.base import Batch, Collector, Context, CostDays, CostTotalQuery, ForecastRow, Reads
from pipepulse.errors import CollectorError, ConfigError
from pipepulse.settings import Settings, check_keys, opt
from pipepulse.vocab import ALL

__all__ = ["SHAPES", "CostExplorerCollector", "Shape", "create", "minimum_requests"]

SOURCE = "ce"
METRICS = ("UnblendedCost", "AmortizedCost", "UsageQuantity")
WATERMARK_END = "end"  # exclusive end (ISO date) of the last window stored
WATERMARK_FORECAST = "forecast_day"  # UTC day of the last GetCostForecast


@dataclass(frozen=True)
class Shape:
    """One GetCostAndUsage query shape and where its two group keys go in ``cost_daily``."""

    name: str
    second: str  # the group-by after SERVICE: "REGION", "USAGE_TYPE" or "TAG"

    def group_by(self, tag_key: str) -> list[dict[str, str]]:
        second = {"Type": "TAG", "Key": tag_key} if self.second == "TAG" else {"Type": "DIMENSION", "Key": self.second}
        return [{"Type": "DIMENSION", "Key": "SERVICE"}, second]


SHAPES = (Shape("region", "REGION"), Shape("usage", "USAGE_TYPE"), Shape("pipeline", "TAG"))


def minimum_requests(units_per_shape: dict[str, int], *, page_size: int) -> int:
    """Fewest GetCostAndUsage requests for a window: per shape, its units (one per group per day,
    and one per day without any group) in pages of ``page_size``, at least one request."""
    return sum(max(1, -(-n // page_size)) for n in units_per_shape.values())


@dataclass(frozen=True)
class Options:
    backfill_days: int = 60
    restate_days: int = 3
    tag_key: str = "pipeline"
    forecast: bool = True
    forecast_level: int = 80

    @classmethod
    def parse(cls, settings: Settings, table: Any) -> Options:
        label, where = settings.config_label, "collectors.ce"
        check_keys(table, "collectors.ce", label, where=where)
        out = cls(
            backfill_days=opt(table, "backfill_days", int, label, where, default=60),
            restate_days=opt(table, "restate_days", int, label, where, default=3),
            tag_key=opt(table, "tag_key", str, label, where, default=settings.cost_tag_key),
            forecast=opt(table, "forecast", bool, label, where, default=True),
            forecast_level=opt(table, "forecast_level", int, label, where, default=80),
        )
        if not 1 <= out.backfill_days <= 400:
            raise ConfigError(f"{label}: [{where}] backfill_days: expected 1..400 (CE keeps 13 months daily), got {out.backfill_days}")
        if not 0 <= out.restate_days <= 30:
            raise ConfigError(f"{label}: [{where}] restate_days: expected 0..30, got {out.restate_days}")
        if not 51 <= out.forecast_level <= 99:
            raise ConfigError(f"{label}: [{where}] forecast_level: expected 51..99 (AWS's range), got {out.forecast_level}")
        return out


class CostExplorerCollector(Collector):
    """Pulls daily cost from Cost Explorer into ``cost_daily`` (source ``ce``)."""

    name = SOURCE
    scope = "account"  # a global API: once per account (collectors/accounts.py)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def reads(self, ctx: Context) -> Reads:
        opts = Options.parse(self.settings, ctx.options)
        start, _, today = self._window(ctx, opts)
        if not self._forecast_due(ctx, opts, today):
            return Reads()
        # the month's cost stored before this pass's window, for the month-end figure
        return Reads(cost_total=CostTotalQuery(source=SOURCE, start=today.replace(day=1), end=start))

    def collect(self, ctx: Context) -> Batch:
        opts = Options.parse(self.settings, ctx.options)
        start, end, today = self._window(ctx, opts)
        ce = ctx.client("ce")
        frames = []
        pages: dict[str, int] = {}
        for shape in SHAPES:
            rows, n = self._pull(ce, shape, start, end, opts.tag_key)
            frames.append(rows)
            pages[shape.name] = n
        rows = pd.concat(frames, ignore_index=True)
        batch = Batch(
            costs=[CostDays(source=SOURCE, start=start, end=end, rows=rows)],
            window_start=datetime.combine(start, time(), tzinfo=UTC),
            window_end=datetime.combine(end, time(), tzinfo=UTC),
            details={"pages": pages, "days": (end - start).days, "cost_rows": len(rows)},
        )
        batch.watermarks[WATERMARK_END] = end.isoformat()
        if self._forecast_due(ctx, opts, today):
            forecast = self._forecast(ce, today, opts.forecast_level)
            batch.watermarks[WATERMARK_FORECAST] = today.isoformat()
            if isinstance(forecast, str):
                batch.details["forecast"] = forecast
            else:
                total, points = forecast
                month_start = today.replace(day=1)
                in_window = rows[(rows["region"] != ALL) & (rows["day"] >= month_start) & (rows["day"] < today)]["billed_cost"].sum()
                actual = ctx.stored.cost_total + float(in_window)
                batch.details["forecast"] = {"rest_of_month": total, "month_to_date": actual}
                batch.forecasts.append(ForecastRow(
                    created_at=ctx.now,
                    method="aws",
                    subject="total",
                    level=opts.forecast_level / 100,  # CE's PredictionIntervalLevel is a percentage
                    points=points,
                    fields={
                        "month_end_mean": actual + total[0],
                        "month_end_lower": actual + total[1],
                        "month_end_upper": actual + total[2],
                        "train_end": today - timedelta(days=1),
                        "budget": self.settings.budget_monthly,
                    },
                ))
        return batch

    @staticmethod
    def _window(ctx: Context, opts: Options) -> tuple[date, date, date]:
        """(start, end exclusive, today) of this pass's GetCostAndUsage window."""
        today = ctx.now.astimezone(UTC).date()
        end = today + timedelta(days=1)  # today's partial day included; restated later
        mark = ctx.watermark(WATERMARK_END)
        if mark is None:
            # at least the whole month so far, for the month-end figure beside the forecast
            return min(end - timedelta(days=opts.backfill_days), today.replace(day=1)), end, today
        try:
            last_end = date.fromisoformat(mark)
        except ValueError as exc:
            raise CollectorError(SOURCE, f"stored watermark {WATERMARK_END!r} is not a date: {mark!r}") from exc
        start = min(last_end, end) - timedelta(days=opts.restate_days)
        return min(start, end - timedelta(days=1)), end, today

    @staticmethod
    def _forecast_due(ctx: Context, opts: Options, today: date) -> bool:
        """GetCostForecast runs at most once per UTC day."""
        return opts.forecast and ctx.watermark(WATERMARK_FORECAST) != today.isoformat()

    # ---- requests ----------------------------------------------------------------------

    def _pull(self, ce: Any, shape: Shape, start: date, end: date, tag_key: str) -> tuple[pd.DataFrame, int]:
        request: dict[str, Any] = {
            "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
            "Granularity": "DAILY",
            "Metrics": list(METRICS),
            "GroupBy": shape.group_by(tag_key),
        }
        out: list[dict[str, Any]] = []
        pages = 0
        token = None
        while True:
            answer = ce.get_cost_and_usage(**request, **({"NextPageToken": token} if token else {}))
            pages += 1
            out.extend(_rows_of(answer, shape, tag_key))
            token = answer.get("NextPageToken")
            if not token:
                break
            if pages > 10_000:
                raise CollectorError(SOURCE, "GetCostAndUsage kept returning NextPageToken after 10,000 pages; giving up")
        frame = pd.DataFrame(out, columns=["day", "provider", "account", "service", "region", "usage_type", "pipeline",
                                           "billed_cost", "effective_cost", "usage_quantity", "currency"])
        # a group can be split across pages: add its parts up
        key = ["day", "provider", "account", "service", "region", "usage_type", "pipeline", "currency"]
        if not frame.empty:
            frame = frame.groupby(key, as_index=False, dropna=False).agg(
                billed_cost=("billed_cost", "sum"), effective_cost=("effective_cost", "sum"),
                usage_quantity=("usage_quantity", lambda s: None if s.isna().all() else s.sum()),
            )
        return frame, pages

    def _forecast(self, ce: Any, today: date, level: int) -> tuple[tuple[float, float, float], pd.DataFrame] | str:
        month_end = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
        try:
            answer = ce.get_cost_forecast(
                TimePeriod={"Start": today.isoformat(), "End": month_end.isoformat()},
                Metric="UNBLENDED_COST",
                Granularity="DAILY",
                PredictionIntervalLevel=level,
            )
        except CollectorError as exc:
            if "DataUnavailable" in exc.detail:
                return f"unavailable: {exc.detail}"
            raise
        try:
            total = answer["Total"]
            points = []
            for i, r in enumerate(answer.get("ForecastResultsByTime", [])):
                where = f"ForecastResultsByTime[{i}]"
                points.append({
                    "day": date.fromisoformat(_get(r, "TimePeriod", where)["Start"]),
                    "mean": _num(_get(r, "MeanValue", where), f"{where}.MeanValue"),
                    "lower": _num(r.get("PredictionIntervalLowerBound"), f"{where}.PredictionIntervalLowerBound") if r.get("PredictionIntervalLowerBound") is not None else None,
                    "upper": _num(r.get("PredictionIntervalUpperBound"), f"{where}.PredictionIntervalUpperBound") if r.get("PredictionIntervalUpperBound") is not None else None,
                })
            mean = _num(total["Amount"], "Total.Amount")
        except (KeyError, TypeError, ValueError) as exc:
            raise CollectorError(SOURCE, f"GetCostForecast answer has an unexpected shape: {exc}") from exc
        frame = pd.DataFrame(points, columns=["day", "mean", "lower", "upper"])
        lower = float(frame["lower"].sum()) if not frame.empty and frame["lower"].notna().all() else mean
        upper = float(frame["upper"].sum()) if not frame.empty and frame["upper"].notna().all() else mean
        return (mean, lower, upper), frame


# ---- the boundary: raw answers -> typed rows -------------------------------------------------


def _get(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise CollectorError(SOURCE, f"GetCostAndUsage answer has an unexpected shape: {where} lacks {key}")
    return obj[key]


def _num(value: Any, where: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise CollectorError(SOURCE, f"answer has an unexpected shape: {where} is {value!r}, not a number") from exc


def _rows_of(answer: Any, shape: Shape, tag_key: str) -> list[dict[str, Any]]:
    results = _get(answer, "ResultsByTime", "the answer")
    if not isinstance(results, list):
        raise CollectorError(SOURCE, "GetCostAndUsage answer has an unexpected shape: ResultsByTime is not a list")
    out = []
    for i, result in enumerate(results):
        where = f"ResultsByTime[{i}]"
        period = _get(result, "TimePeriod", where)
        try:
            day = date.fromisoformat(_get(period, "Start", f"{where}.TimePeriod")[:10])
        except (TypeError, ValueError) as exc:
            raise CollectorError(SOURCE, f"GetCostAndUsage answer has an unexpected shape: {where}.TimePeriod.Start is not a date") from exc
        groups = result.get("Groups", [])
        if not isinstance(groups, list):
            raise CollectorError(SOURCE, f"GetCostAndUsage answer has an unexpected shape: {where}.Groups is not a list")
        for j, group in enumerate(groups):
            gw = f"{where}.Groups[{j}]"
            keys = _get(group, "Keys", gw)
            if not isinstance(keys, list) or len(keys) != 2 or not all(isinstance(k, str) for k in keys):
                raise CollectorError(SOURCE, f"GetCostAndUsage answer has an unexpected shape: {gw}.Keys is {keys!r}, expected two strings")
            metrics = _get(group, "Metrics", gw)
            unblended = _get(metrics, "UnblendedCost", f"{gw}.Metrics")
            amortized = _get(metrics, "AmortizedCost", f"{gw}.Metrics")
            quantity = metrics.get("UsageQuantity") if isinstance(metrics, dict) else None
            row = {
                "day": day,
                "provider": "AWS",
                "account": "",
                "service": keys[0],
                "region": ALL,
                "usage_type": ALL,
                "pipeline": ALL,
                "billed_cost": _num(_get(unblended, "Amount", f"{gw}.Metrics.UnblendedCost"), f"{gw}.Metrics.UnblendedCost.Amount"),
                "effective_cost": _num(_get(amortized, "Amount", f"{gw}.Metrics.AmortizedCost"), f"{gw}.Metrics.AmortizedCost.Amount"),
                "usage_quantity": None,
                "currency": str(unblended.get("Unit") or "USD"),
            }
            if shape.second == "REGION":
                row["region"] = keys[1]
            elif shape.second == "USAGE_TYPE":
                row["usage_type"] = keys[1]
                if isinstance(quantity, dict) and quantity.get("Amount") is not None:
                    row["usage_quantity"] = _num(quantity["Amount"], f"{gw}.Metrics.UsageQuantity.Amount")
            else:
                prefix = f"{tag_key}$"
                if not keys[1].startswith(prefix):
                    raise CollectorError(SOURCE, f"GetCostAndUsage answer has an unexpected shape: {gw} tag key {keys[1]!r} does not start with {prefix!r}")
                row["pipeline"] = keys[1][len(prefix):]
            out.append(row)
    return out


def create(settings: Settings) -> CostExplorerCollector:
    """The collector the runner loads for source ``ce``."""
    return CostExplorerCollector(settings)
