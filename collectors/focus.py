"""FOCUS 1.0 cost exports (CSV or Parquet, gzip ok) -> daily cost rows (source ``focus``).

Columns used (found by name; the rest are ignored): ChargePeriodStart (the day, UTC),
BilledCost, EffectiveCost (FOCUS requires it; absent -> BilledCost), BillingCurrency,
ProviderName (1.2: ServiceProviderName), SubAccountId (else BillingAccountId), ServiceName,
RegionId (1.0-preview: Region), x_UsageType (AWS's extra column; else ChargeDescription),
ConsumedQuantity, BillingPeriodStart (the billing month for totals), Tags (a JSON object, or a
map in Parquet; the ``cost_tag_key`` value names the pipeline). The string ``NULL`` and empty fields are nulls.
ChargeFrequency and ChargeCategory are not filtered on: every charge counts, so the stored total
is the file's BilledCost total (mixed casing such as ``Usage-based`` does not matter).

A row is rejected (file, line, reason) when ChargePeriodStart, BilledCost or BillingCurrency is
empty or malformed, BilledCost or EffectiveCost is not a finite number (``inf``, ``nan``,
``1e400``) or beyond ``costrows.MAX_LINE_AMOUNT``, or Tags is not a JSON object. A file without a
BillingCurrency column is refused as a whole. FOCUS 1.0 and 1.2 are read alike (1.2's new
columns, e.g. PricingCurrency*, are not money in the billing currency and are not summed);
columns in neither version and without the ``x_`` prefix are ignored with a note.

The ``focus`` source is ``collectors.costfiles.ExportCollector`` with this format: it imports
the files under ``[collectors.focus] paths`` (``s3://`` prefixes or local folders).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from collectors.costrows import (
    Parsed,
    amount_problems,
    fallback,
    finish,
    is_value,
    month_of,
    parse_tags,
    text,
    to_day,
    to_number,
)
from pipepulse.errors import InputError

__all__ = ["parse_focus", "unknown_columns", "version", "wanted_columns"]

OPTIONAL = (
    "EffectiveCost", "BillingCurrency", "ProviderName", "ServiceProviderName", "SubAccountId",
    "BillingAccountId", "ServiceName", "RegionId", "Region", "x_UsageType", "ChargeDescription",
    "ConsumedQuantity", "BillingPeriodStart", "Tags",
)
REQUIRED = ("ChargePeriodStart", "BilledCost")

# Every column of FOCUS 1.0 and 1.2 (the FOCUS_Spec repository, tags v1.0 and v1.2,
# specification/columns/*.md); 1.2 added the ones in NEW_IN_1_2. Columns outside these (and
# outside the spec's ``x_`` custom-column prefix) are ignored with a note.
FOCUS_1_0 = frozenset((
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription",
    "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart", "CommitmentDiscountCategory",
    "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountStatus", "CommitmentDiscountType",
    "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "ContractedUnitPrice", "EffectiveCost",
    "InvoiceIssuerName", "ListCost", "ListUnitPrice", "PricingCategory", "PricingQuantity", "PricingUnit",
    "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType",
    "ServiceCategory", "ServiceName", "SkuId", "SkuPriceId", "SubAccountId", "SubAccountName", "Tags",
))
NEW_IN_1_2 = frozenset((
    "BillingAccountType", "CapacityReservationId", "CapacityReservationStatus", "CommitmentDiscountQuantity",
    "CommitmentDiscountUnit", "InvoiceId", "PricingCurrency", "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice", "ServiceSubcategory", "SkuMeter",
    "SkuPriceDetails", "SubAccountType",
))
KNOWN = FOCUS_1_0 | NEW_IN_1_2 | {"Region", "ServiceProviderName", "HostProviderName", "InvoiceIssuer", "Provider", "Publisher"}


def version(columns: Sequence[str]) -> str:
    """``FOCUS 1.2`` when any column added in 1.1/1.2 is present, else ``FOCUS 1.0``."""
    return "FOCUS 1.2" if NEW_IN_1_2 & set(columns) else "FOCUS 1.0"


def unknown_columns(columns: Sequence[str]) -> list[str]:
    """Columns neither in FOCUS 1.0/1.2 nor custom (``x_``): read past, named in a note."""
    return [c for c in columns if c not in KNOWN and not c.startswith("x_")]


def wanted_columns(columns: Sequence[str], tag_key: str) -> list[str]:
    """The columns to read from a file that has ``columns``."""
    have = set(columns)
    return [c for c in (*REQUIRED, *OPTIONAL) if c in have]


def _col(table: pa.Table, *names: str) -> Any:
    for n in names:
        if n in table.column_names:
            return table.column(n)
    return None


def parse_focus(table: pa.Table, *, file: str, lines: np.ndarray, unit: str, tag_key: str) -> Parsed:
    """Typed line items and rejections from a FOCUS table (all-string CSV or typed Parquet)."""
    n = table.num_rows
    if "BillingCurrency" not in table.column_names:
        raise InputError(f"{file}: no BillingCurrency column: FOCUS requires it (the currency of BilledCost); "
                         "re-export with it, or add it with the currency of every row")
    raw_start = table.column("ChargePeriodStart")
    days, bad_day = to_day(raw_start)
    billed, bad_billed = to_number(table.column("BilledCost"))
    eff_col = _col(table, "EffectiveCost")
    if eff_col is not None:
        effective, bad_eff = to_number(eff_col)
    else:
        effective, bad_eff = billed.copy(), np.zeros(n, dtype=bool)
    currency = text(_col(table, "BillingCurrency"), n)
    qty_col = _col(table, "ConsumedQuantity")
    quantity = to_number(qty_col)[0] if qty_col is not None else np.full(n, np.nan)
    pipeline, bad_tags = parse_tags(_col(table, "Tags"), n, tag_key)
    bp_col = _col(table, "BillingPeriodStart")
    if bp_col is not None:
        bp_days, _ = to_day(bp_col)
        bp_days = np.where(np.isnat(bp_days), days, bp_days)
    else:
        bp_days = days
    usage = fallback(text(_col(table, "x_UsageType"), n), text(_col(table, "ChargeDescription"), n))
    account = fallback(text(_col(table, "SubAccountId"), n), text(_col(table, "BillingAccountId"), n))

    def value(col: Any, i: int) -> str:
        v = col[i].as_py()
        return str(v)[:60]

    billed_col, start_col = table.column("BilledCost"), raw_start
    problems = [
        (np.isnat(days) & ~bad_day, lambda i: "ChargePeriodStart is empty"),
        (bad_day, lambda i: f"ChargePeriodStart {value(start_col, i)!r} is not a timestamp"),
        (np.isnan(billed) & ~bad_billed, lambda i: "BilledCost is empty"),
        *amount_problems("BilledCost", billed_col, billed, bad_billed, value),
        *amount_problems("EffectiveCost", eff_col, effective, bad_eff, value),
        (is_value(currency, ""), lambda i: "BillingCurrency is empty"),
        (bad_tags, lambda i: f"Tags {value(_col(table, 'Tags'), i)!r} is not a JSON object"),
    ]
    # an empty EffectiveCost counts as BilledCost (some exports leave it out on credits)
    effective = np.where(np.isnan(effective), billed, effective)
    columns = {
        "billing_period": month_of(bp_days),
        "day": days,
        "provider": text(_col(table, "ProviderName", "ServiceProviderName"), n),
        "account": account,
        "service": text(_col(table, "ServiceName"), n),
        "region": text(_col(table, "RegionId", "Region"), n),
        "usage_type": usage,
        "pipeline": pipeline,
        "billed_cost": billed,
        "effective_cost": effective,
        "usage_quantity": quantity,
        "currency": currency,
    }
    return finish("focus", file, lines, unit, columns, problems)
