"""Athena cost source (``athena``): the daily sums computed where a large CUR or FOCUS table lies.

A month of CUR of a large organisation is tens to hundreds of millions of line items; importing
the files (``cur``/``focus`` sources) reads every byte on this machine. This source instead runs
one aggregate query per pass in Athena over the user's CUR or FOCUS table (the one AWS's CUR or
Data Exports Athena integration creates) and stores only its answer: one row per day, account,
service, region, usage type, pipeline tag and currency, the same ``cost_daily`` rows the file
sources store (source ``athena``), through the same path (``CostDays``, a calendar month replaced
in one transaction).

Flow (plain boto3): ``glue:GetTable`` (the table's columns: an optional column the table lacks
is a NULL in the SQL) -> ``StartQueryExecution`` (database, workgroup, output location) ->
``GetQueryExecution`` until SUCCEEDED/FAILED/CANCELLED (polling every ``poll_seconds``, at most
``timeout_seconds``, then ``StopQueryExecution``) -> ``GetQueryResults`` pages (1000 rows each).
Metered: every call (``collector_runs.calls``) and the data scanned, at ``[prices]
athena_tb_scanned`` ($5 per TB, rounded up to the MB with Athena's 10 MB minimum per query) from
the execution's ``Statistics.DataScannedInBytes``.

Window: the first pass covers ``backfill_months`` (3) calendar months up to the current one;
later passes the current and the previous month (AWS restates a month until its bill is final),
so a pass scans at most two months of the table when it is partitioned by month and the
``partition_filter`` option names the partition predicate (e.g. CUR's ``year``/``month``).

The SQL (``daily_sql``) is written in the subset that Athena (Trino) and DuckDB share, and
``tests/collectors/test_athena.py`` runs it in DuckDB over Parquet files, checking its totals
against a pandas sum of the same files. It is AWS query text, not the store's SQL (which lives in
``store/``). Its keys follow the file importers (``collectors/cur.py``, ``collectors/focus.py``):

    CUR    day: line_item_usage_start_date; account: usage account, else payer; service:
           product_product_name, else line_item_product_code; region: product_region, else the
           availability zone without its letter; billed: line_item_unblended_cost; effective:
           the amortised cost by line item type (as collectors/cur.py); pipeline:
           resource_tags_user_<tag_key>; currency: line_item_currency_code, else USD
    FOCUS  day: ChargePeriodStart; BilledCost, EffectiveCost (else BilledCost), BillingCurrency,
           ProviderName, SubAccountId (else BillingAccountId), ServiceName, RegionId,
           x_UsageType (else ChargeDescription), ConsumedQuantity, Tags[<tag_key>] (a map)

Options (``[collectors.athena]``): ``database``, ``table`` (required), ``workgroup`` ("primary"),
``output_location`` (``s3://...``; optional when the workgroup sets one), ``format`` ("cur" or
"focus"), ``catalog`` ("AwsDataCatalog"), ``tag_key`` (``[pipepulse] cost_tag_key``),
``backfill_months`` (3), ``partition_filter`` (SQL predicate ANDed to the window, e.g.
``year = '2026'``; optional), ``poll_seconds`` (1), ``timeout_seconds`` (600).
"""

from __future__ import annotations

import math
import re
import time as _time
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import numpy as np
import pandas as pd

from collectors.base import Batch, Collector, Context, CostDays
from collectors.costfiles import KEY_COLUMNS
from collectors.costrows import STRING_LIMITS
from collectors.cur import tag_column
from pipepulse.errors import CollectorError, ConfigError
from pipepulse.settings import Settings, check_keys, opt

__all__ = ["AthenaCollector", "Options", "create", "daily_sql", "rows_to_frame", "scan_cost"]

SOURCE = "athena"
FORMATS = ("cur", "focus")
RESULT_COLUMNS = (*KEY_COLUMNS, "billed_cost", "effective_cost", "usage_quantity", "line_items")
MB = 1 << 20
TB = 1 << 40
MIN_SCAN_BYTES = 10 * MB  # Athena bills at least 10 MB a query
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TAG = re.compile(r"^[\w.:/=+\-@ ]{1,128}$")


@dataclass(frozen=True)
class Options:
    database: str
    table: str
    workgroup: str = "primary"
    output_location: str | None = None
    format: str = "cur"
    catalog: str = "AwsDataCatalog"
    tag_key: str = "pipeline"
    backfill_months: int = 3
    partition_filter: str | None = None
    poll_seconds: float = 1.0
    timeout_seconds: float = 600.0

    @classmethod
    def parse(cls, settings: Settings, table: Any) -> Options:
        label, where = settings.config_label, f"collectors.{SOURCE}"
        check_keys(table, where, label, where=where)
        out = cls(
            database=opt(table, "database", str, label, where, default=""),
            table=opt(table, "table", str, label, where, default=""),
            workgroup=opt(table, "workgroup", str, label, where, default="primary"),
            output_location=opt(table, "output_location", str, label, where, default=None),
            format=opt(table, "format", str, label, where, default="cur"),
            catalog=opt(table, "catalog", str, label, where, default="AwsDataCatalog"),
            tag_key=opt(table, "tag_key", str, label, where, default=settings.cost_tag_key),
            backfill_months=opt(table, "backfill_months", int, label, where, default=3),
            partition_filter=opt(table, "partition_filter", str, label, where, default=None),
            poll_seconds=float(opt(table, "poll_seconds", (int, float), label, where, default=1.0)),
            timeout_seconds=float(opt(table, "timeout_seconds", (int, float), label, where, default=600.0)),
        )
        for key in ("database", "table"):
            value = getattr(out, key)
            if not value or not _NAME.match(value):
                raise ConfigError(f"{label}: [{where}] {key}: expected the name of your CUR/FOCUS Athena {key} "
                                  f"(letters, digits, _), got {value!r}")
        if out.format not in FORMATS:
            raise ConfigError(f"{label}: [{where}] format: expected 'cur' (legacy CUR table) or 'focus' (FOCUS 1.0/1.2 table), got {out.format!r}")
        if out.output_location is not None and not out.output_location.startswith("s3://"):
            raise ConfigError(f"{label}: [{where}] output_location: expected s3://bucket/prefix/, got {out.output_location!r}")
        if not _TAG.match(out.tag_key):
            raise ConfigError(f"{label}: [{where}] tag_key: {out.tag_key!r} is not a tag key AWS allows")
        if not 1 <= out.backfill_months <= 24:
            raise ConfigError(f"{label}: [{where}] backfill_months: expected 1..24, got {out.backfill_months}")
        if out.partition_filter is not None and ";" in out.partition_filter:
            raise ConfigError(f"{label}: [{where}] partition_filter: one SQL predicate without ';', got {out.partition_filter!r}")
        if not 0 < out.poll_seconds <= 60 or not 1 <= out.timeout_seconds <= 3600:
            raise ConfigError(f"{label}: [{where}] poll_seconds: expected (0, 60], timeout_seconds 1..3600")
        return out


# ---- the SQL (shared subset of Trino and DuckDB) --------------------------------------------


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


REQUIRED = {
    "cur": ("line_item_usage_start_date", "line_item_unblended_cost"),
    "focus": ("chargeperiodstart", "billedcost", "billingcurrency"),
}


def daily_sql(fmt: str, source: str, *, start: date, end: date, tag_key: str, columns: set[str] | None = None,
              partition_filter: str | None = None) -> str:
    """The daily aggregate of ``source`` (a table name, or in tests DuckDB's ``read_parquet(...)``)
    for line items with ``start <= day < end``; columns ``RESULT_COLUMNS``.

    ``columns`` are the table's column names (any case); an optional column the table lacks is a
    typed NULL (CUR tables only have the savings plan or reservation columns an account ever
    used), a required one is an error. Only constructs both engines run alike: CAST, COALESCE,
    NULLIF, CASE, substr, length, string BETWEEN, ``contains(map_keys(m), k)`` before ``m[k]``
    (Trino fails on a missing key, DuckDB returns NULL), TIMESTAMP literals, GROUP BY ordinals."""
    have = {c.lower() for c in columns} if columns is not None else None
    if have is not None:
        missing = [c for c in REQUIRED[fmt] if c not in have]
        if missing:
            raise CollectorError(SOURCE, f"{source}: no column {', '.join(missing)}: not a {fmt.upper()} table "
                                         f"(set [collectors.athena] format to {'focus' if fmt == 'cur' else 'cur'}?)")

    def c(name: str, kind: str = "VARCHAR") -> str:
        return name if have is None or name.lower() in have else f"CAST(NULL AS {kind})"

    lo, hi = f"TIMESTAMP '{start.isoformat()} 00:00:00'", f"TIMESTAMP '{end.isoformat()} 00:00:00'"
    extra = f" AND ({partition_filter})" if partition_filter else ""
    if fmt == "cur":
        az = f"COALESCE({c('line_item_availability_zone')}, '')"
        region = (f"COALESCE(NULLIF({c('product_region')}, ''), CASE WHEN substr({az}, length({az})) BETWEEN 'a' AND 'z' "
                  f"AND substr({az}, length({az}) - 1, 1) BETWEEN '0' AND '9' THEN substr({az}, 1, length({az}) - 1) ELSE {az} END)")
        kind = f"COALESCE({c('line_item_line_item_type')}, '')"

        def n(name: str) -> str:
            return f"COALESCE({c(name, 'DOUBLE')}, 0)"

        effective = f"""CASE {kind}
                WHEN 'SavingsPlanCoveredUsage' THEN {n('savings_plan_savings_plan_effective_cost')}
                WHEN 'SavingsPlanRecurringFee' THEN {n('savings_plan_total_commitment_to_date')} - {n('savings_plan_used_commitment')}
                WHEN 'SavingsPlanNegation' THEN 0
                WHEN 'SavingsPlanUpfrontFee' THEN 0
                WHEN 'DiscountedUsage' THEN {n('reservation_effective_cost')}
                WHEN 'RIFee' THEN {n('reservation_unused_amortized_upfront_fee_for_billing_period')} + {n('reservation_unused_recurring_fee')}
                WHEN 'Fee' THEN CASE WHEN COALESCE({c('reservation_reservation_a_r_n')}, '') <> '' THEN 0 ELSE line_item_unblended_cost END
                ELSE line_item_unblended_cost END"""
        select = f"""
            CAST(CAST(line_item_usage_start_date AS DATE) AS VARCHAR) AS day,
            'AWS' AS provider,
            COALESCE(NULLIF({c('line_item_usage_account_id')}, ''), {c('bill_payer_account_id')}, '') AS account,
            COALESCE(NULLIF({c('product_product_name')}, ''), {c('line_item_product_code')}, '') AS service,
            {region} AS region,
            COALESCE({c('line_item_usage_type')}, '') AS usage_type,
            COALESCE({c(tag_column(tag_key))}, '') AS pipeline,
            COALESCE(NULLIF({c('line_item_currency_code')}, ''), 'USD') AS currency,
            SUM(line_item_unblended_cost) AS billed_cost,
            SUM({effective}) AS effective_cost,
            SUM({c('line_item_usage_amount', 'DOUBLE')}) AS usage_quantity,
            COUNT(*) AS line_items"""
        where = f"line_item_usage_start_date >= {lo} AND line_item_usage_start_date < {hi} AND line_item_unblended_cost IS NOT NULL"
    else:
        key = _quote(tag_key)
        tags = c("Tags", "MAP(VARCHAR, VARCHAR)")
        pipeline = f"CASE WHEN contains(map_keys(Tags), {key}) THEN Tags[{key}] END" if tags == "Tags" else "CAST(NULL AS VARCHAR)"
        select = f"""
            CAST(CAST(ChargePeriodStart AS DATE) AS VARCHAR) AS day,
            COALESCE({c('ProviderName')}, '') AS provider,
            COALESCE(NULLIF({c('SubAccountId')}, ''), {c('BillingAccountId')}, '') AS account,
            COALESCE({c('ServiceName')}, '') AS service,
            COALESCE({c('RegionId')}, '') AS region,
            COALESCE(NULLIF({c('x_UsageType')}, ''), {c('ChargeDescription')}, '') AS usage_type,
            COALESCE({pipeline}, '') AS pipeline,
            BillingCurrency AS currency,
            SUM(BilledCost) AS billed_cost,
            SUM(COALESCE({c('EffectiveCost', 'DOUBLE')}, BilledCost)) AS effective_cost,
            SUM({c('ConsumedQuantity', 'DOUBLE')}) AS usage_quantity,
            COUNT(*) AS line_items"""
        where = f"ChargePeriodStart >= {lo} AND ChargePeriodStart < {hi} AND BilledCost IS NOT NULL AND BillingCurrency IS NOT NULL"
    return f"SELECT{select}\nFROM {source}\nWHERE {where}{extra}\nGROUP BY 1, 2, 3, 4, 5, 6, 7, 8"


def rows_to_frame(header: list[str], rows: list[list[str | None]], *, where: str) -> pd.DataFrame:
    """Athena's text rows (``VarCharValue``s) as ``cost_daily`` rows, checked: a day that is not a
    date or an amount that is not a finite number is an error naming the row and column."""
    if [h.lower() for h in header] != list(RESULT_COLUMNS):
        raise CollectorError(SOURCE, f"{where}: expected columns {', '.join(RESULT_COLUMNS)}, got {', '.join(header)}")
    frame = pd.DataFrame(rows, columns=list(RESULT_COLUMNS), dtype=object)
    days = pd.to_datetime(frame["day"], format="%Y-%m-%d", errors="coerce")
    for i in np.flatnonzero(days.isna().to_numpy()):
        raise CollectorError(SOURCE, f"{where}: result row {i + 1}: day {frame['day'].iloc[i]!r} is not a date (YYYY-MM-DD)")
    frame["day"] = days.dt.date
    for col in ("billed_cost", "effective_cost", "usage_quantity"):
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = (values.isna() & frame[col].notna()) | ~np.isfinite(values.fillna(0.0))
        for i in np.flatnonzero(bad.to_numpy()):
            raise CollectorError(SOURCE, f"{where}: result row {i + 1}: {col} {frame[col].iloc[i]!r} is not a finite number")
        frame[col] = values.astype(float)
    frame["billed_cost"] = frame["billed_cost"].fillna(0.0)
    frame["effective_cost"] = frame["effective_cost"].fillna(frame["billed_cost"])
    for col in KEY_COLUMNS[1:]:
        frame[col] = frame[col].fillna("").astype(object)
    frame["line_items"] = pd.to_numeric(frame["line_items"], errors="coerce").fillna(0).astype(np.int64)
    # the stored lengths, as the file importers cut them (collectors.costrows.STRING_LIMITS); keys
    # that become equal are summed
    cut = False
    for col, limit in STRING_LIMITS.items():
        if col in frame and (frame[col].str.len() > limit).any():
            frame[col] = frame[col].str.slice(0, limit).astype(object)
            cut = True
    if cut:
        frame = frame.groupby(list(KEY_COLUMNS), sort=False, as_index=False).agg(
            billed_cost=("billed_cost", "sum"), effective_cost=("effective_cost", "sum"),
            usage_quantity=("usage_quantity", lambda v: v.sum(min_count=1)), line_items=("line_items", "sum"))
    return frame


def scan_cost(data_scanned_bytes: int, price_per_tb: float) -> float:
    """What Athena bills for one query: the bytes scanned rounded up to the MB, at least 10 MB."""
    billed = max(MIN_SCAN_BYTES, math.ceil(max(data_scanned_bytes, 0) / MB) * MB)
    return billed / TB * price_per_tb


# ---- the collector ---------------------------------------------------------------------------


def _month_start(d: date, back: int = 0) -> date:
    m = d.year * 12 + d.month - 1 - back
    return date(m // 12, m % 12 + 1, 1)


class AthenaCollector(Collector):
    """Runs the daily aggregate in Athena; stores the daily rows (source ``athena``)."""

    name = SOURCE

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def window(self, ctx: Context, opts: Options) -> tuple[date, date]:
        """[first of the first month, first of next month): backfill on the first pass, then the
        current and the previous month."""
        today = ctx.now.astimezone(UTC).date()
        back = opts.backfill_months - 1 if ctx.watermark("end") is None else 1
        return _month_start(today, back), _month_start(today, -1)

    def collect(self, ctx: Context) -> Batch:
        opts = Options.parse(self.settings, ctx.options)
        start, end = self.window(ctx, opts)
        source = f'"{opts.database}"."{opts.table}"'
        columns = self._columns(ctx.client("glue"), opts)
        sql = daily_sql(opts.format, source, start=start, end=end, tag_key=opts.tag_key, columns=columns,
                        partition_filter=opts.partition_filter)
        athena = ctx.client("athena")
        execution = self._run(athena, sql, opts)
        scanned = int(execution.get("Statistics", {}).get("DataScannedInBytes", 0) or 0)
        usd = scan_cost(scanned, self.settings.prices.athena_tb_scanned)
        ctx.calls.add_billed(usd)
        qid = execution["QueryExecutionId"]
        header, rows, pages = self._results(athena, qid)
        frame = rows_to_frame(header, rows, where=f"Athena query {qid}")
        outside = frame[(frame["day"] < start) | (frame["day"] >= end)]
        if len(outside):
            raise CollectorError(SOURCE, f"Athena query {qid}: day {outside['day'].iloc[0]} is outside the window {start}..{end}")
        costs = []
        m = start
        while m < end:
            nxt = _month_start(m, -1)
            part = frame[(frame["day"] >= m) & (frame["day"] < nxt)]
            costs.append(CostDays(source=SOURCE, start=m, end=nxt, rows=part[[*KEY_COLUMNS, "billed_cost", "effective_cost", "usage_quantity"]].reset_index(drop=True)))
            m = nxt
        batch = Batch(
            costs=costs,
            window_start=datetime.combine(start, time(), tzinfo=UTC),
            window_end=datetime.combine(end, time(), tzinfo=UTC),
            details={"query_execution_id": qid, "data_scanned_bytes": scanned, "scan_usd": round(usd, 6),
                     "result_pages": pages, "daily_rows": len(frame), "line_items": int(frame["line_items"].sum()),
                     "billed_cost": round(float(frame["billed_cost"].sum()), 6)},
        )
        batch.watermarks["end"] = end.isoformat()
        return batch

    @staticmethod
    def _columns(glue: Any, opts: Options) -> set[str]:
        """The table's columns and partition keys from the Glue Data Catalog (Athena's
        AwsDataCatalog): one ``glue:GetTable``."""
        table = glue.get_table(DatabaseName=opts.database, Name=opts.table)["Table"]
        cols = [*table.get("StorageDescriptor", {}).get("Columns", []), *table.get("PartitionKeys", [])]
        return {c["Name"].lower() for c in cols}

    def _run(self, athena: Any, sql: str, opts: Options) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "QueryString": sql,
            "QueryExecutionContext": {"Database": opts.database, "Catalog": opts.catalog},
            "WorkGroup": opts.workgroup,
        }
        if opts.output_location:
            kwargs["ResultConfiguration"] = {"OutputLocation": opts.output_location}
        qid = athena.start_query_execution(**kwargs)["QueryExecutionId"]
        deadline = _time.monotonic() + opts.timeout_seconds
        while True:
            execution = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
            state = execution.get("Status", {}).get("State")
            if state == "SUCCEEDED":
                return dict(execution)
            if state in ("FAILED", "CANCELLED"):
                reason = execution.get("Status", {}).get("StateChangeReason", "no reason given")
                raise CollectorError(SOURCE, f"Athena query {qid} {state.lower()}: {reason} (table {opts.database}.{opts.table}, "
                                             f"format {opts.format}: check the table's columns match the format and tag_key)")
            if _time.monotonic() > deadline:
                athena.stop_query_execution(QueryExecutionId=qid)
                raise CollectorError(SOURCE, f"Athena query {qid} still {state} after {opts.timeout_seconds:.0f} s: stopped; "
                                             "raise timeout_seconds or set partition_filter to scan less")
            _time.sleep(opts.poll_seconds)

    @staticmethod
    def _results(athena: Any, qid: str) -> tuple[list[str], list[list[str | None]], int]:
        header: list[str] = []
        rows: list[list[str | None]] = []
        pages = 0
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"QueryExecutionId": qid, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            page = athena.get_query_results(**kwargs)
            pages += 1
            result = page.get("ResultSet", {})
            if not header:
                header = [c.get("Name", "") for c in result.get("ResultSetMetadata", {}).get("ColumnInfo", [])]
            data = [[d.get("VarCharValue") for d in r.get("Data", [])] for r in result.get("Rows", [])]
            if pages == 1 and data and [str(v).lower() for v in data[0]] == [h.lower() for h in header]:
                data = data[1:]  # the first row of the first page repeats the column names
            rows.extend(data)
            token = page.get("NextToken")
            if not token:
                return header, rows, pages


def create(settings: Settings) -> AthenaCollector:
    """The collector the runner loads for source ``athena``."""
    return AthenaCollector(settings)
