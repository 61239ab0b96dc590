"""Legacy AWS Cost and Usage Reports (Athena Parquet, or CSV) -> daily cost rows (source ``cur``).

Columns are found by name, never by position: the column set changes from month to month (new
products, tags and reservation/savings-plan columns appear and vanish). CSV headers in the
``lineItem/UsageStartDate`` style are mapped to the Athena names (``line_item_usage_start_date``).

Required: line_item_usage_start_date (the day, UTC) and line_item_unblended_cost (billed).
Optional, each with a fallback: line_item_usage_account_id (else bill_payer_account_id),
product_product_name (else line_item_product_code), product_region (else the availability zone
without its letter), line_item_usage_type, line_item_usage_amount, line_item_currency_code
(else USD), bill_billing_period_start_date (else the day's month), ``resource_tags_user_<key>``
for the pipeline tag (CUR 2.0: key ``user_<key>`` of the ``resource_tags`` map). Effective cost is AWS's amortized cost, from whichever of these columns the
month has (absent ones count as 0):

    SavingsPlanCoveredUsage  savings_plan_savings_plan_effective_cost
    SavingsPlanRecurringFee  savings_plan_total_commitment_to_date - savings_plan_used_commitment
    SavingsPlanNegation, SavingsPlanUpfrontFee   0
    DiscountedUsage          reservation_effective_cost
    RIFee                    reservation_unused_amortized_upfront_fee_for_billing_period
                             + reservation_unused_recurring_fee
    Fee with a reservation ARN (RI upfront)      0
    anything else            line_item_unblended_cost

A row is rejected (file, line/row, reason) when its start date or unblended cost is empty or
malformed. The ``cur`` source is ``collectors.costfiles.ExportCollector`` with this format.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collectors.costrows import (
    Parsed,
    amount_problems,
    fallback,
    finish,
    is_value,
    map_value,
    month_of,
    normalise_name,
    parse_tags,
    text,
    to_day,
    to_number,
)

__all__ = ["parse_cur", "tag_column", "version", "wanted_columns"]

REQUIRED = ("line_item_usage_start_date", "line_item_unblended_cost")
OPTIONAL = (
    "line_item_usage_account_id", "bill_payer_account_id", "product_product_name", "line_item_product_code",
    "product_region", "line_item_availability_zone", "line_item_usage_type", "line_item_usage_amount",
    "line_item_currency_code", "bill_billing_period_start_date", "line_item_line_item_type",
    "savings_plan_savings_plan_effective_cost", "savings_plan_total_commitment_to_date",
    "savings_plan_used_commitment", "reservation_effective_cost",
    "reservation_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_recurring_fee",
    "reservation_reservation_a_r_n",
    # CUR 2.0: region code, the product map (product_name is a key there), the identity of a line item
    "product_region_code", "product", "identity_line_item_id", "identity_time_interval",
    "bill_payer_account_name", "line_item_usage_account_name",
)


def version(columns: Sequence[str]) -> str:
    """``CUR 2.0`` (Data Exports' fixed schema with map columns) or ``legacy CUR``.

    CUR 2.0 has the account-name columns legacy CUR never had, and one ``product`` column (a
    map) where legacy CUR has a ``product_<attribute>`` column per attribute."""
    norm = {normalise_name(c) for c in columns}
    return "CUR 2.0" if {"bill_payer_account_name", "line_item_usage_account_name", "product"} & norm else "legacy CUR"


def tag_column(tag_key: str) -> str:
    """The Athena column of user tag ``tag_key`` (``resource_tags_user_<key>``, lower snake case)."""
    return "resource_tags_user_" + re.sub(r"[^a-z0-9]+", "_", normalise_name(tag_key).lower()).strip("_")


def wanted_columns(columns: Sequence[str], tag_key: str) -> list[str]:
    """The file's own names of the columns to read."""
    wanted = {*REQUIRED, *OPTIONAL, tag_column(tag_key), "resource_tags"}
    return [c for c in columns if normalise_name(c) in wanted]


def _col(table: pa.Table, name: str) -> Any:
    return table.column(name) if name in table.column_names else None


def _num(table: pa.Table, name: str, n: int) -> np.ndarray:
    col = _col(table, name)
    if col is None:
        return np.zeros(n)
    values, _ = to_number(col)
    return np.nan_to_num(values, nan=0.0)


def _pipeline(table: pa.Table, tag_key: str, n: int) -> pa.Array:
    """The pipeline tag: legacy ``resource_tags_user_<key>``, or CUR 2.0's ``resource_tags`` map."""
    column = tag_column(tag_key)
    if column in table.column_names:
        return text(table.column(column), n)
    tags = _col(table, "resource_tags")
    key = "user_" + column.removeprefix("resource_tags_user_")
    if tags is not None and pa.types.is_map(tags.type):
        return map_value(tags, key, n)
    if tags is not None:  # CUR 2.0 as CSV: the map as a JSON object
        return parse_tags(tags, n, key)[0]
    return text(None, n)


def _product_name(table: pa.Table, n: int) -> pa.Array:
    """Legacy ``product_product_name``, or CUR 2.0's ``product_name`` key of the ``product`` map."""
    if "product_product_name" in table.column_names:
        return text(table.column("product_product_name"), n)
    product = _col(table, "product")
    if product is not None and pa.types.is_map(product.type):
        return map_value(product, "product_name", n)
    if product is not None:
        return parse_tags(product, n, "product_name")[0]
    return text(None, n)


def _row_ids(table: pa.Table, n: int) -> pa.Array | None:
    """``identity_line_item_id`` + ``identity_time_interval`` per row (AWS: unique per line item and hour)."""
    ids = _col(table, "identity_line_item_id")
    if ids is None:
        return None
    interval = text(_col(table, "identity_time_interval"), n)
    return pc.binary_join_element_wise(text(ids, n), interval, "|")


def parse_cur(table: pa.Table, *, file: str, lines: np.ndarray, unit: str, tag_key: str) -> Parsed:
    """Typed line items and rejections from a CUR table with Athena column names."""
    n = table.num_rows
    start_col = table.column("line_item_usage_start_date")
    days, bad_day = to_day(start_col)
    cost_col = table.column("line_item_unblended_cost")
    unblended, bad_cost = to_number(cost_col)

    kind = text(_col(table, "line_item_line_item_type"), n)
    arn = text(_col(table, "reservation_reservation_a_r_n"), n)
    base = np.nan_to_num(unblended, nan=0.0)
    effective = np.select(
        [
            is_value(kind, "SavingsPlanCoveredUsage"),
            is_value(kind, "SavingsPlanRecurringFee"),
            is_value(kind, "SavingsPlanNegation") | is_value(kind, "SavingsPlanUpfrontFee"),
            is_value(kind, "DiscountedUsage"),
            is_value(kind, "RIFee"),
            is_value(kind, "Fee") & ~is_value(arn, ""),
        ],
        [
            _num(table, "savings_plan_savings_plan_effective_cost", n),
            _num(table, "savings_plan_total_commitment_to_date", n) - _num(table, "savings_plan_used_commitment", n),
            np.zeros(n),
            _num(table, "reservation_effective_cost", n),
            _num(table, "reservation_unused_amortized_upfront_fee_for_billing_period", n) + _num(table, "reservation_unused_recurring_fee", n),
            np.zeros(n),
        ],
        default=base,
    )
    service = fallback(_product_name(table, n), text(_col(table, "line_item_product_code"), n))
    # an availability zone ("us-east-1d") without its letter; some rows hold a region there already
    az_region = pc.replace_substring_regex(text(_col(table, "line_item_availability_zone"), n), pattern=r"^(.*\d)[a-z]$", replacement=r"\1")
    region = fallback(fallback(text(_col(table, "product_region"), n), text(_col(table, "product_region_code"), n)), az_region)
    account = fallback(text(_col(table, "line_item_usage_account_id"), n), text(_col(table, "bill_payer_account_id"), n))
    currency = fallback(text(_col(table, "line_item_currency_code"), n), text(None, n, "USD"))
    bp_col = _col(table, "bill_billing_period_start_date")
    bp_days = to_day(bp_col)[0] if bp_col is not None else days
    bp_days = np.where(np.isnat(bp_days), days, bp_days)
    qty_col = _col(table, "line_item_usage_amount")
    quantity = to_number(qty_col)[0] if qty_col is not None else np.full(n, np.nan)

    def value(col: Any, i: int) -> str:
        return str(col[i].as_py())[:60]

    problems = [
        (np.isnat(days) & ~bad_day, lambda i: "line_item_usage_start_date is empty"),
        (bad_day, lambda i: f"line_item_usage_start_date {value(start_col, i)!r} is not a timestamp"),
        (np.isnan(unblended) & ~bad_cost, lambda i: "line_item_unblended_cost is empty"),
        *amount_problems("line_item_unblended_cost", cost_col, unblended, bad_cost, value),
        *amount_problems("effective cost", cost_col, effective, np.zeros(n, dtype=bool), value),
    ]
    columns = {
        "billing_period": month_of(bp_days),
        "day": days,
        "provider": "AWS",
        "account": account,
        "service": service,
        "region": region,
        "usage_type": text(_col(table, "line_item_usage_type"), n),
        "pipeline": _pipeline(table, tag_key, n),
        "billed_cost": unblended,
        "effective_cost": effective,
        "usage_quantity": quantity,
        "currency": currency,
    }
    return finish("cur", file, lines, unit, columns, problems, row_ids=_row_ids(table, n))
