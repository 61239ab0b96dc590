"""A Cost Explorer stand-in: a WSGI middleware in front of moto that answers from line items.

moto's Cost Explorer replays queued answers word for word and has no forecast, so a test of a
collector against it checks nothing. This stand-in intercepts the JSON 1.1 protocol requests
boto3 sends (``X-Amz-Target: AWSInsightsIndexService.<Operation>``) for ``GetCostAndUsage`` and
``GetCostForecast``, computes the answer from the line items loaded into it, and passes every
other request to the next app (moto).

Honoured: TimePeriod (Start inclusive, End exclusive, ``YYYY-MM-DD``), Granularity DAILY and
MONTHLY, Metrics (UnblendedCost, AmortizedCost, BlendedCost, NetUnblendedCost,
NetAmortizedCost, UsageQuantity, NormalizedUsageAmount), GroupBy (DIMENSION SERVICE, REGION,
USAGE_TYPE, LINKED_ACCOUNT, RECORD_TYPE; TAG ``key``, answered as ``key$value``), Filter
(Dimensions, Tags, And, Or, Not; MatchOptions EQUALS, ABSENT, STARTS_WITH, ENDS_WITH, CONTAINS,
CASE_SENSITIVE, CASE_INSENSITIVE), and NextPageToken paging (``page_size`` groups per page; a
token only fits the request it came from).

Rejected as AWS rejects them (HTTP 400, JSON ``__type``): a malformed or reversed TimePeriod, an
End past the start of next month, an unknown Granularity or Metric, HOURLY (not enabled), more
than two GroupBy keys, a GroupBy or Filter key of the wrong kind, a Filter expression with more
or less than one operator, a bad NextPageToken (``InvalidNextTokenException``), a changed request
with an old token (``RequestChangedException``), a forecast starting in the past, longer than 3
months DAILY / 12 months MONTHLY, or with less history than ``min_forecast_history_days``
(``DataUnavailableException``). Actions listed in ``deny`` answer ``AccessDeniedException`` like
IAM does.

GetCostForecast is a plain model, stated so tests can compute it by hand: over the last
``forecast_window_days`` (28) days of history before ``today``, the daily mean ``m`` and sample
standard deviation ``s`` of the filtered daily totals; each forecast day is ``m`` with interval
``m -/+ z*s`` (z from PredictionIntervalLevel, default 80), clipped at 0; the total is ``n*m``
with ``n*m -/+ z*s*sqrt(n)``. Limits: no COST_CATEGORY, no HOURLY, no DimensionValueAttributes.

Control API on the same port (for a demo in another process and for tests):
``POST /pipepulse-api/ce/line-items`` ``{"items": [...], "replace_days": false}``,
``POST /pipepulse-api/ce/config`` ``{"page_size": 50, "today": "2026-11-20", "deny": [...]}``,
``GET /pipepulse-api/ce/requests`` (requests per operation), ``POST /pipepulse-api/ce/reset``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from statistics import NormalDist
from typing import Any

import pandas as pd

from devkit.localaws.standin import StandIn, json_answer
from devkit.localaws.standin import read_body as _read_body

__all__ = ["CostExplorerStandIn", "LINE_ITEM_FIELDS"]

TARGET_PREFIX = "AWSInsightsIndexService."
CONTROL_PREFIX = "/pipepulse-api/ce/"

# line item field -> default when absent
LINE_ITEM_FIELDS: dict[str, Any] = {
    "date": None,
    "account": "123456789012",
    "service": "",
    "region": "",
    "usage_type": "",
    "record_type": "Usage",
    "tags": None,  # {key: value}
    "unblended_cost": 0.0,
    "amortized_cost": None,  # defaults to unblended
    "blended_cost": None,
    "net_unblended_cost": None,
    "net_amortized_cost": None,
    "usage_quantity": 0.0,
    "normalized_usage_amount": None,  # defaults to usage_quantity
    "estimated": False,
}

METRIC_COLUMNS = {
    "UnblendedCost": "unblended_cost",
    "AmortizedCost": "amortized_cost",
    "BlendedCost": "blended_cost",
    "NetUnblendedCost": "net_unblended_cost",
    "NetAmortizedCost": "net_amortized_cost",
    "UsageQuantity": "usage_quantity",
    "NormalizedUsageAmount": "normalized_usage_amount",
}
FORECAST_METRICS = {
    "UNBLENDED_COST": "unblended_cost",
    "AMORTIZED_COST": "amortized_cost",
    "BLENDED_COST": "blended_cost",
    "NET_UNBLENDED_COST": "net_unblended_cost",
    "NET_AMORTIZED_COST": "net_amortized_cost",
    "USAGE_QUANTITY": "usage_quantity",
    "NORMALIZED_USAGE_AMOUNT": "normalized_usage_amount",
}
DIMENSIONS = {
    "SERVICE": "service",
    "REGION": "region",
    "USAGE_TYPE": "usage_type",
    "LINKED_ACCOUNT": "account",
    "RECORD_TYPE": "record_type",
}
MATCH_OPTIONS = {"EQUALS", "ABSENT", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "CASE_SENSITIVE", "CASE_INSENSITIVE", "GREATER_THAN_OR_EQUAL"}
EXPRESSION_KEYS = ("And", "Or", "Not", "Dimensions", "Tags", "CostCategories")
DEFAULT_PAGE_SIZE = 500


class CEError(Exception):
    """An error answer in the JSON 1.1 protocol's encoding."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class CostExplorerStandIn(StandIn):
    """WSGI middleware answering GetCostAndUsage/GetCostForecast from loaded line items."""

    control_prefix = CONTROL_PREFIX

    # ---- state -------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget line items, request counts and configuration."""
        with getattr(self, "_lock", threading.Lock()):
            self.items = _empty_items()
            self.requests: Counter[str] = Counter()
            self.page_size = DEFAULT_PAGE_SIZE
            self.today: date | None = None  # None: the real UTC date
            self.deny: set[str] = set()
            self.min_forecast_history_days = 30
            self.forecast_window_days = 28

    def configure(
        self,
        *,
        page_size: int | None = None,
        today: date | str | None = None,
        deny: Iterable[str] | None = None,
        min_forecast_history_days: int | None = None,
    ) -> None:
        """Change paging, the stand-in's clock, denied actions or the forecast's history need."""
        with self._lock:
            if page_size is not None:
                if int(page_size) < 1:
                    raise ValueError("page_size must be at least 1")
                self.page_size = int(page_size)
            if today is not None:
                self.today = date.fromisoformat(today) if isinstance(today, str) else today
            if deny is not None:
                self.deny = set(deny)
            if min_forecast_history_days is not None:
                self.min_forecast_history_days = int(min_forecast_history_days)

    def load_line_items(self, items: pd.DataFrame | Iterable[Mapping[str, Any]], *, replace_days: bool = False) -> int:
        """Add line items (fields: ``LINE_ITEM_FIELDS``); ``replace_days`` first drops the days given
        (how a restatement looks). Returns the number of items now loaded."""
        frame = _normalise(items)
        with self._lock:
            current = self.items
            if replace_days and not frame.empty:
                current = current[~current["date"].isin(set(frame["date"]))]
            self.items = pd.concat([current, frame], ignore_index=True) if not current.empty else frame
            return len(self.items)

    def _today(self) -> date:
        return self.today or datetime.now(UTC).date()

    # ---- WSGI --------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response, path[len(CONTROL_PREFIX):])
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith(TARGET_PREFIX):
            op = target[len(TARGET_PREFIX):]
            handler = {"GetCostAndUsage": self.get_cost_and_usage, "GetCostForecast": self.get_cost_forecast}.get(op)
            if handler is not None:
                with self._lock:
                    self.requests[op] += 1
                body = _read_body(environ)
                try:
                    if op in self.deny:
                        raise CEError(
                            "AccessDeniedException",
                            f"User: arn:aws:iam::123456789012:user/pipepulse is not authorized to perform: "
                            f"ce:{op} on resource: arn:aws:ce:us-east-1:123456789012:/{op} because no "
                            "identity-based policy allows the ce:" + op + " action",
                        )
                    try:
                        request = json.loads(body or b"{}")
                    except ValueError as exc:
                        raise CEError("SerializationException", "request body is not JSON") from exc
                    if not isinstance(request, dict):
                        raise CEError("SerializationException", "request body is not a JSON object")
                    answer = handler(request)
                except CEError as err:
                    return _json(start_response, err.status, {"__type": err.code, "message": err.message})
                return _json(start_response, 200, answer)
        return self.next_app(environ, start_response)

    def control(self, what: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if what == "line-items":
            return {"loaded": self.load_line_items(payload.get("items", []), replace_days=bool(payload.get("replace_days")))}
        if what == "config":
            self.configure(**{k: payload[k] for k in ("page_size", "today", "deny", "min_forecast_history_days") if k in payload})
            return {"ok": True}
        return None

    # ---- GetCostAndUsage ---------------------------------------------------------------

    def get_cost_and_usage(self, req: dict[str, Any]) -> dict[str, Any]:
        """The answer to one GetCostAndUsage request (one page)."""
        start, end = _time_period(req.get("TimePeriod"))
        latest_end = _first_of_next_month(self._today())
        if end > latest_end:
            raise CEError("ValidationException", "end date past the beginning of next month")
        granularity = req.get("Granularity")
        if granularity == "HOURLY":
            raise CEError("ValidationException", "Hourly granularity is not enabled for this account")
        if granularity not in ("DAILY", "MONTHLY"):
            raise CEError("ValidationException", f"Granularity {granularity!r} is not valid; use DAILY, MONTHLY or HOURLY")
        metrics = req.get("Metrics")
        if not isinstance(metrics, list) or not metrics:
            raise CEError("ValidationException", "Metrics is required")
        for m in metrics:
            if m not in METRIC_COLUMNS:
                raise CEError("ValidationException", f"Metric {m} is not valid; valid metrics: {', '.join(METRIC_COLUMNS)}")
        group_by = req.get("GroupBy") or []
        if len(group_by) > 2:
            raise CEError("ValidationException", "Group by can only be used with up to 2 dimensions or tags")
        groups = [_group_column(g) for g in group_by]
        if len({c for c, _ in groups}) != len(groups):
            raise CEError("ValidationException", "Group definitions must be unique")

        with self._lock:
            items = self.items
            page_size = self.page_size
        items = items[(items["date"] >= start) & (items["date"] < end)]
        if req.get("Filter") is not None:
            items = items[_evaluate(req["Filter"], items)]

        periods = _periods(start, end, granularity)
        units: list[tuple[int, tuple[str, ...] | None]] = []  # (period index, group keys) in page order
        sums: dict[tuple[int, tuple[str, ...]], dict[str, float]] = {}
        metric_cols = [METRIC_COLUMNS[m] for m in metrics]
        frame = items.copy()
        frame["_period"] = _period_index(frame["date"], periods)
        key_cols = []
        for i, (col, tag) in enumerate(groups):
            name = f"_g{i}"
            if tag is not None:
                # built per row: on no line items, ``str + empty float Series`` has no ufunc loop (a 500)
                frame[name] = frame["tags"].map(lambda t, k=tag: f"{k}${(t or {}).get(k, '')}").astype(object)
            else:
                frame[name] = frame[col]
            key_cols.append(name)
        if groups:
            agg = frame.groupby(["_period", *key_cols], sort=True)[metric_cols].sum()
            by_period: dict[int, list[tuple[str, ...]]] = {}
            for idx, row in agg.iterrows():
                p, *keys = idx
                sums[(int(p), tuple(keys))] = {c: float(row[c]) for c in metric_cols}
                by_period.setdefault(int(p), []).append(tuple(keys))
            for p in range(len(periods)):
                if p in by_period:
                    units.extend((p, k) for k in by_period[p])
                else:
                    units.append((p, None))
        else:
            agg = frame.groupby("_period")[metric_cols].sum()
            for p, row in agg.iterrows():
                sums[(int(p), ())] = {c: float(row[c]) for c in metric_cols}
            units = [(p, ()) for p in range(len(periods))]
        estimated = set(frame.loc[frame["estimated"].astype(bool), "_period"].astype(int)) if not frame.empty else set()

        fingerprint = _fingerprint(req)
        offset = 0
        token = req.get("NextPageToken")
        if token:
            offset = _decode_token(token, fingerprint)
        if offset > len(units):
            raise CEError("InvalidNextTokenException", "The NextPageToken is not valid")
        page = units[offset: offset + page_size]
        next_offset = offset + len(page)

        results: list[dict[str, Any]] = []
        last_p = None
        for p, keys in page:
            if p != last_p:
                ps, pe = periods[p]
                results.append({
                    "TimePeriod": {"Start": ps.isoformat(), "End": pe.isoformat()},
                    "Total": {},
                    "Groups": [],
                    "Estimated": p in estimated,
                })
                last_p = p
            entry = results[-1]
            if not groups:
                vals = sums.get((p, ()), {})
                entry["Total"] = {m: _amount(vals.get(METRIC_COLUMNS[m], 0.0), m) for m in metrics}
            elif keys is not None:
                vals = sums[(p, keys)]
                entry["Groups"].append({"Keys": list(keys), "Metrics": {m: _amount(vals[METRIC_COLUMNS[m]], m) for m in metrics}})
        answer: dict[str, Any] = {
            "GroupDefinitions": [{"Type": g["Type"], "Key": g["Key"]} for g in group_by],
            "ResultsByTime": results,
            "DimensionValueAttributes": [],
        }
        if next_offset < len(units):
            answer["NextPageToken"] = _encode_token(next_offset, fingerprint)
        return answer

    # ---- GetCostForecast ---------------------------------------------------------------

    def get_cost_forecast(self, req: dict[str, Any]) -> dict[str, Any]:
        """The answer to one GetCostForecast request (see the module docstring for the model)."""
        start, end = _time_period(req.get("TimePeriod"))
        today = self._today()
        if start < today:
            raise CEError("ValidationException", "Start date must be equal to or no later than the current date to avoid a validation error")
        granularity = req.get("Granularity")
        if granularity not in ("DAILY", "MONTHLY"):
            raise CEError("ValidationException", "GetCostForecast supports only DAILY and MONTHLY granularities")
        limit = _add_months(start, 3 if granularity == "DAILY" else 12)
        if end > limit:
            raise CEError(
                "ValidationException",
                f"{granularity} forecasts cover at most {3 if granularity == 'DAILY' else 12} months; End must be on or before {limit.isoformat()}",
            )
        metric = req.get("Metric")
        if metric not in FORECAST_METRICS:
            raise CEError("ValidationException", f"Metric {metric!r} is not valid; valid metrics: {', '.join(FORECAST_METRICS)}")
        level = req.get("PredictionIntervalLevel", 80)
        if not isinstance(level, int) or not 51 <= level <= 99:
            raise CEError("ValidationException", "PredictionIntervalLevel must be between 51 and 99")

        with self._lock:
            items = self.items
            need = self.min_forecast_history_days
            window = self.forecast_window_days
        items = items[items["date"] < today]
        if req.get("Filter") is not None:
            items = items[_evaluate(req["Filter"], items)]
        if items.empty or (today - min(items["date"])).days < need:
            raise CEError("DataUnavailableException", "Insufficient amount of historical data to generate forecast.")
        col = FORECAST_METRICS[metric]
        daily = items.groupby("date")[col].sum()
        days = [today - timedelta(days=i) for i in range(window, 0, -1)]
        values = [float(daily.get(d, 0.0)) for d in days]
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
        z = NormalDist().inv_cdf(0.5 + level / 200)
        unit = "N/A" if metric in ("USAGE_QUANTITY", "NORMALIZED_USAGE_AMOUNT") else "USD"
        out = []
        for ps, pe in _periods(start, end, granularity):
            n = (pe - ps).days
            out.append({
                "TimePeriod": {"Start": ps.isoformat(), "End": pe.isoformat()},
                "MeanValue": _fmt(n * mean),
                "PredictionIntervalLowerBound": _fmt(max(0.0, n * mean - z * sd * math.sqrt(n))),
                "PredictionIntervalUpperBound": _fmt(n * mean + z * sd * math.sqrt(n)),
            })
        n = (end - start).days
        return {
            "Total": {"Amount": _fmt(n * mean), "Unit": unit},
            "ForecastResultsByTime": out,
        }


# ---- helpers --------------------------------------------------------------------------------


def _empty_items() -> pd.DataFrame:
    return _normalise([])


def _normalise(items: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    frame = items.copy() if isinstance(items, pd.DataFrame) else pd.DataFrame(list(items))
    unknown = set(frame.columns) - set(LINE_ITEM_FIELDS)
    if unknown:
        raise ValueError(f"unknown line item field(s) {sorted(unknown)}; known: {', '.join(LINE_ITEM_FIELDS)}")
    if len(frame) and "date" not in frame.columns:
        raise ValueError("line items need a date")
    for name, default in LINE_ITEM_FIELDS.items():
        if name not in frame.columns:
            frame[name] = default
    frame = frame[list(LINE_ITEM_FIELDS)]
    frame["date"] = [d if isinstance(d, date) and not isinstance(d, datetime) else pd.Timestamp(d).date() for d in frame["date"]]
    for name in ("account", "service", "region", "usage_type", "record_type"):
        frame[name] = frame[name].fillna("").astype(str)
    frame["tags"] = [t if isinstance(t, dict) else {} for t in frame["tags"]]
    for name in ("unblended_cost", "usage_quantity"):
        frame[name] = pd.to_numeric(frame[name]).fillna(0.0).astype(float)
    for name in ("amortized_cost", "blended_cost", "net_unblended_cost", "net_amortized_cost"):
        base = "amortized_cost" if name == "net_amortized_cost" else "unblended_cost"
        frame[name] = pd.to_numeric(frame[name]).astype(float).fillna(frame[base])
    frame["normalized_usage_amount"] = pd.to_numeric(frame["normalized_usage_amount"]).astype(float).fillna(frame["usage_quantity"])
    frame["estimated"] = frame["estimated"].fillna(False).astype(bool)
    return frame.reset_index(drop=True)


def _json(start_response, status: int, payload: Any):
    return json_answer(start_response, status, payload, "application/x-amz-json-1.1")


def _parse_day(value: Any, field: str) -> date:
    if not isinstance(value, str):
        raise CEError("ValidationException", f"TimePeriod.{field} is required, as YYYY-MM-DD")
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CEError("ValidationException", f"TimePeriod.{field} {value!r} is not a date (YYYY-MM-DD)") from exc


def _time_period(tp: Any) -> tuple[date, date]:
    if not isinstance(tp, dict):
        raise CEError("ValidationException", "TimePeriod is required")
    start = _parse_day(tp.get("Start"), "Start")
    end = _parse_day(tp.get("End"), "End")
    if end < start:
        raise CEError("ValidationException", "Start date (and hour) should be before end date (and hour)")
    if end == start:
        raise CEError("ValidationException", "Start date and end date must be different")
    return start, end


def _first_of_next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    y += d.year
    m += 1
    last = (_first_of_next_month(date(y, m, 1)) - timedelta(days=1)).day
    return date(y, m, min(d.day, last))


def _periods(start: date, end: date, granularity: str) -> list[tuple[date, date]]:
    out = []
    cur = start
    while cur < end:
        nxt = cur + timedelta(days=1) if granularity == "DAILY" else min(_first_of_next_month(cur), end)
        out.append((cur, nxt))
        cur = nxt
    return out


def _period_index(days: pd.Series, periods: list[tuple[date, date]]) -> pd.Series:
    lookup = {}
    for i, (ps, pe) in enumerate(periods):
        d = ps
        while d < pe:
            lookup[d] = i
            d += timedelta(days=1)
    return days.map(lookup).astype("int64") if len(days) else pd.Series([], dtype="int64", index=days.index)


def _group_column(g: Any) -> tuple[str, str | None]:
    if not isinstance(g, dict) or "Type" not in g or "Key" not in g:
        raise CEError("ValidationException", "Group Definition type is invalid.")
    kind, key = g["Type"], g["Key"]
    if kind == "DIMENSION":
        if key not in DIMENSIONS:
            raise CEError("ValidationException", f"Group Definition key {key!r} is not supported by this stand-in; supported: {', '.join(DIMENSIONS)}")
        return DIMENSIONS[key], None
    if kind == "TAG":
        if not isinstance(key, str) or not key:
            raise CEError("ValidationException", "Group Definition key is required for type TAG")
        return f"tag:{key}", key
    raise CEError("ValidationException", "Group Definition type is invalid.")


def _evaluate(expr: Any, items: pd.DataFrame) -> pd.Series:
    """A boolean mask of the items a Filter expression keeps."""
    if not isinstance(expr, dict):
        raise CEError("ValidationException", "Expression must be an object")
    present = [k for k in EXPRESSION_KEYS if expr.get(k) is not None]
    if len(present) != 1:
        raise CEError("ValidationException", "Expression must have exactly one of And, Or, Not, Dimensions, Tags or CostCategories")
    op = present[0]
    value = expr[op]
    if op in ("And", "Or"):
        if not isinstance(value, list) or len(value) < 2:
            raise CEError("ValidationException", f"{op} needs at least two expressions")
        masks = [_evaluate(e, items) for e in value]
        out = masks[0]
        for m in masks[1:]:
            out = (out & m) if op == "And" else (out | m)
        return out
    if op == "Not":
        return ~_evaluate(value, items)
    if op == "CostCategories":
        raise CEError("ValidationException", "CostCategories filters are not supported by this stand-in")
    if not isinstance(value, dict) or not isinstance(value.get("Key"), str):
        raise CEError("ValidationException", f"{op} needs a Key")
    key = value["Key"]
    values = value.get("Values") or []
    options = set(value.get("MatchOptions") or ["EQUALS"])
    bad = options - MATCH_OPTIONS
    if bad:
        raise CEError("ValidationException", f"MatchOptions {sorted(bad)} are not valid")
    if op == "Dimensions":
        if key not in DIMENSIONS:
            raise CEError("ValidationException", f"Dimension {key!r} is not supported by this stand-in; supported: {', '.join(DIMENSIONS)}")
        if "ABSENT" in options:
            raise CEError("ValidationException", "MatchOption ABSENT is only valid for Tags and CostCategories")
        column = items[DIMENSIONS[key]]
        absent = pd.Series(False, index=items.index)
    else:
        column = items["tags"].map(lambda t: (t or {}).get(key, ""))
        absent = items["tags"].map(lambda t: key not in (t or {}))
    if "ABSENT" in options:
        mask = absent.copy()
        if not values:
            return mask
    else:
        mask = pd.Series(False, index=items.index)
    fold = "CASE_INSENSITIVE" in options
    col = column.str.lower() if fold else column
    vals = [v.lower() if fold else v for v in values]
    if "STARTS_WITH" in options:
        hit = col.map(lambda s: any(s.startswith(v) for v in vals))
    elif "ENDS_WITH" in options:
        hit = col.map(lambda s: any(s.endswith(v) for v in vals))
    elif "CONTAINS" in options:
        hit = col.map(lambda s: any(v in s for v in vals))
    else:
        hit = col.isin(vals)
    return mask | hit.astype(bool)


def _fingerprint(req: dict[str, Any]) -> str:
    body = {k: v for k, v in req.items() if k != "NextPageToken"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _encode_token(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "f": fingerprint}).encode()).decode()


def _decode_token(token: Any, fingerprint: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        offset, fp = int(data["o"]), str(data["f"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CEError("InvalidNextTokenException", "The NextPageToken is not valid") from exc
    if fp != fingerprint:
        raise CEError("RequestChangedException", "The request changed between pages; start again without NextPageToken")
    return offset


def _fmt(x: float) -> str:
    s = f"{x:.10f}".rstrip("0").rstrip(".")
    return "0" if s in ("", "-0") else s


def _amount(x: float, metric: str) -> dict[str, str]:
    unit = "N/A" if metric in ("UsageQuantity", "NormalizedUsageAmount") else "USD"
    return {"Amount": _fmt(x), "Unit": unit}
