"""The demo account's bill: a daily FOCUS 1.0 export, written where AWS Data Exports writes it.

``account_rows(...)`` makes one row per day and line item for the whole demo account:

- shared infrastructure (EC2 in two regions, RDS, S3 storage, data transfer, Lambda,
  CloudWatch), with weekly seasonality (weekdays busier), growth over time and noise;
- the Glue pipeline the collectors' demo seeds, tagged with its name;
- Standard Step Functions state transitions as given (``state_transitions``: the demo passes
  what its executions bill, as their histories count them), at ``prices.sfn_transition``, with no
  noise (AWS counts transitions; nothing to meter) and nothing else: no invented base load;
- the reference pipelines, from the usage their runs recorded in the ledger (Glue DPU-hours,
  Fargate vCPU-hours, S3 requests, CloudWatch Logs), tagged ``{"pipeline": "<name>"}``. The bill
  is near the ledger's estimate but not equal: a little noise, plus the S3 storage of each
  pipeline's output, which no run estimate includes;
- incidents: a two-day data-transfer spike (``dt_spike_day``).

The day the bill ends in (``until``, when not midnight) is billed for the hours before it, as a
real export read during the day has only that day's usage so far: the metered lines at their
share of the day, the reference pipelines and Step Functions for the runs and executions that
happened (the caller passes only those), and the nightly Glue job only if its run did
(``glue_nights``). AWS's export trails usage by some hours; the demo does not model that delay.

``write_export`` writes one gzip CSV per billing period to
``s3://<bucket>/focus/pipepulse-demo/data/BILLING_PERIOD=YYYY-MM/pipepulse-demo-00001.csv.gz``
plus a manifest under ``metadata/``, replacing earlier versions (AWS rewrites the month's file
as the month goes on). Columns: the 43 FOCUS 1.0 columns and the five AWS ``x_`` columns, in
AWS's order; empty cells are empty strings, as in AWS's CSV.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime, time, timedelta

import boto3
from botocore.exceptions import ClientError

__all__ = ["ACCOUNT_ID", "COLUMNS", "account_rows", "export_key", "write_export"]

ACCOUNT_ID = "123456789012"
ACCOUNT_NAME = "pipepulse-demo"
EXPORT_NAME = "pipepulse-demo"

COLUMNS = (
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    "x_CostCategories",
    "x_Discounts",
    "x_Operation",
    "x_ServiceCode",
    "x_UsageType",
)

REGIONS = {"us-east-1": "US East (N. Virginia)", "eu-west-1": "Europe (Ireland)"}
SERVICES = {  # service code -> (ServiceName, ServiceCategory)
    "AmazonEC2": ("Amazon Elastic Compute Cloud - Compute", "Compute"),
    "AmazonRDS": ("Amazon Relational Database Service", "Databases"),
    "AmazonS3": ("Amazon Simple Storage Service", "Storage"),
    "AWSDataTransfer": ("AWS Data Transfer", "Networking"),
    "AWSLambda": ("AWS Lambda", "Compute"),
    "AmazonCloudWatch": ("AmazonCloudWatch", "Management and Governance"),
    "AWSStepFunctions": ("AWS Step Functions", "Integration"),
    "AWSGlue": ("AWS Glue", "Analytics"),
    "AmazonECS": ("Amazon Elastic Container Service", "Compute"),
}


# (service, region, usage type, operation, unit, unit price, base quantity per day, weekday
#  swing, daily growth, resource id, pipeline tag)
_BASE = (
    (
        "AmazonEC2",
        "us-east-1",
        "BoxUsage:m5.xlarge",
        "RunInstances",
        "Hrs",
        0.192,
        144.0,
        0.10,
        0.0005,
        "i-0a1b2c3d4e5f60001",
        None,
    ),
    (
        "AmazonEC2",
        "eu-west-1",
        "EU-BoxUsage:m5.large",
        "RunInstances",
        "Hrs",
        0.107,
        72.0,
        0.05,
        0.0,
        "i-0a1b2c3d4e5f60002",
        None,
    ),
    (
        "AmazonRDS",
        "us-east-1",
        "InstanceUsage:db.r5.large",
        "CreateDBInstance:0014",
        "Hrs",
        0.25,
        48.0,
        0.0,
        0.0,
        "arn:aws:rds:us-east-1:123456789012:db:orders-db",
        None,
    ),
    (
        "AmazonRDS",
        "us-east-1",
        "RDS:GP2-Storage",
        "CreateDBInstance:0014",
        "GB-Mo",
        0.115,
        16.7,
        0.0,
        0.002,
        "arn:aws:rds:us-east-1:123456789012:db:orders-db",
        None,
    ),
    (
        "AmazonS3",
        "us-east-1",
        "TimedStorage-ByteHrs",
        "StandardStorage",
        "GB-Mo",
        0.023,
        266.0,
        0.0,
        0.003,
        "pipepulse-demo-archive",
        None,
    ),
    (
        "AWSDataTransfer",
        "us-east-1",
        "DataTransfer-Out-Bytes",
        "PublicIP-Out",
        "GB",
        0.09,
        60.0,
        0.25,
        0.003,
        "",
        None,
    ),
    (
        "AWSLambda",
        "us-east-1",
        "Lambda-GB-Second",
        "Invoke",
        "Lambda-GB-Second",
        0.0000166667,
        150_000.0,
        0.30,
        0.004,
        "arn:aws:lambda:us-east-1:123456789012:function:api-handler",
        None,
    ),
    (
        "AWSLambda",
        "us-east-1",
        "Request",
        "Invoke",
        "Requests",
        0.0000002,
        3_000_000.0,
        0.30,
        0.004,
        "arn:aws:lambda:us-east-1:123456789012:function:api-handler",
        None,
    ),
    (
        "AmazonCloudWatch",
        "us-east-1",
        "CW:MetricMonitorUsage",
        "MetricStorage",
        "Metrics",
        0.01,
        300.0,
        0.0,
        0.001,
        "",
        None,
    ),
    (
        "AWSGlue",
        "us-east-1",
        "USE1-ETL-DPU-Hour",
        "Jobrun",
        "DPU-Hour",
        0.44,
        5.0,
        0.0,
        0.002,
        "arn:aws:glue:us-east-1:123456789012:job/nightly-compaction",
        "glue_nightly",
    ),
)

# ledger usage key -> (service, usage type, operation, unit, unit price attr, quantity divisor)
_PIPELINE_LINES = (
    (
        "glue_dpu_seconds",
        "AWSGlue",
        "USE1-ETL-DPU-Hour",
        "Jobrun",
        "DPU-Hour",
        "glue_dpu_hour",
        3600.0,
    ),
    (
        "compute_vcpu_seconds",
        "AmazonECS",
        "USE1-Fargate-vCPU-Hours:perCPU",
        "FargateTask",
        "vCPU-Hours",
        "compute_vcpu_hour",
        3600.0,
    ),
    (
        "s3_put_requests",
        "AmazonS3",
        "Requests-Tier1",
        "PutObject",
        "Requests",
        "s3_put_request",
        1.0,
    ),
    (
        "s3_get_requests",
        "AmazonS3",
        "Requests-Tier2",
        "GetObject",
        "Requests",
        "s3_get_request",
        1.0,
    ),
    (
        "log_bytes",
        "AmazonCloudWatch",
        "DataProcessing-Bytes",
        "PutLogEvents",
        "GB",
        "cloudwatch_logs_gb_ingested",
        1e9,
    ),
    (
        "metric_put_requests",
        "AmazonCloudWatch",
        "CW:Requests",
        "PutMetricData",
        "Requests",
        "cloudwatch_put_metric_request",
        1.0,
    ),
)


def account_rows(
    start: date,
    end: date,
    pipeline_usage: Mapping[tuple[date, str], Mapping[str, float]],
    prices,
    *,
    seed: int,
    dt_spike_day: date | None = None,
    state_transitions: Mapping[tuple[date, str, str], float] | None = None,
    until: datetime | None = None,
    glue_nights: Collection[date] | None = None,
) -> list[dict[str, str]]:
    """FOCUS rows for every day in ``[start, end)`` (see module docstring).
    ``state_transitions``: (day, pipeline tag, state machine ARN) -> Standard workflow state
    transitions that day; billed exactly, one row each.
    ``until``: the bill's end (UTC); the day it falls in is billed for the hours before it, a day
    after it not at all. None: every day in full.
    ``glue_nights``: the days the nightly Glue job ran; its line is billed on those days only.
    None: every day."""
    transitions = state_transitions or {}
    rng = random.Random(f"focus:{seed}")
    rows: list[dict[str, str]] = []
    day = start
    n = 0
    while day < end:
        weekday = day.weekday() < 5
        share = _share_of_day(day, until)
        if share <= 0:
            break
        for svc, region, usage, op, unit, price, qty, swing, growth, resource, tag in _BASE:
            if svc == "AWSGlue":
                # the draw of the invented Step Functions line that stood here, kept so that
                # every other line's noise is what it was (same demo, same incidents' backdrop)
                rng.gauss(1.0, 0.03)
            q = (
                qty
                * (1 + growth * n)
                * ((1 + swing) if weekday else (1 - swing))
                * rng.gauss(1.0, 0.03)
            )
            if (
                dt_spike_day is not None
                and svc == "AWSDataTransfer"
                and dt_spike_day <= day < dt_spike_day + timedelta(days=2)
            ):
                q *= 6.0  # incident: a replication job sent the lake across the internet for two days
            if tag == "glue_nightly" and glue_nights is not None:
                if day not in glue_nights:
                    continue  # no run that day (tonight's has not happened yet): nothing to bill
            else:
                q *= share
            rows.append(_row(day, svc, region, usage, op, unit, price, max(q, 0.0), resource, tag))
        for (_, tag, machine), count in sorted(t for t in transitions.items() if t[0][0] == day):
            rows.append(_row(day, "AWSStepFunctions", "us-east-1", "StateTransition", "StartExecution",
                             "StateTransitions", prices.sfn_transition, count, machine, tag or None))
        for pipeline in sorted({p for d, p in pipeline_usage if d == day}):
            use = pipeline_usage[(day, pipeline)]
            for key, svc, usage, op, unit, attr, div in _PIPELINE_LINES:
                amount = use.get(key, 0.0)
                if amount <= 0:
                    continue
                q = amount / div * rng.gauss(1.0, 0.02)  # the bill's metering is not the estimate's
                rows.append(
                    _row(
                        day,
                        svc,
                        "us-east-1",
                        usage,
                        op,
                        unit,
                        getattr(prices, attr),
                        q,
                        _pipeline_resource(svc, pipeline),
                        pipeline,
                    )
                )
            # the output the pipeline keeps in the lake: billed, but in no run's estimate
            stored_gb = 4.0 + 0.05 * n
            rows.append(
                _row(
                    day,
                    "AmazonS3",
                    "us-east-1",
                    "TimedStorage-ByteHrs",
                    "StandardStorage",
                    "GB-Mo",
                    0.023,
                    stored_gb * 24 / 720 * 30 * share,
                    f"pipepulse-demo-lake/{pipeline}",
                    pipeline,
                )
            )
        day += timedelta(days=1)
        n += 1
    return rows


def _share_of_day(day: date, until: datetime | None) -> float:
    """The part of ``day`` (UTC) before ``until``: 1.0 for a day that has ended, 0.0 for one
    that has not begun."""
    if until is None:
        return 1.0
    begins = datetime.combine(day, time.min, UTC)
    return min(max((until - begins) / timedelta(days=1), 0.0), 1.0)


def _pipeline_resource(svc: str, pipeline: str) -> str:
    if svc == "AWSGlue":
        return f"arn:aws:glue:us-east-1:{ACCOUNT_ID}:job/{pipeline}-transform"
    if svc == "AmazonECS":
        return f"arn:aws:ecs:us-east-1:{ACCOUNT_ID}:task-definition/{pipeline}"
    if svc == "AmazonS3":
        return "pipepulse-demo-lake"
    return f"arn:aws:logs:us-east-1:{ACCOUNT_ID}:log-group:/pipepulse/reference/{pipeline}"


def _row(
    day: date,
    svc: str,
    region: str,
    usage: str,
    op: str,
    unit: str,
    price: float,
    qty: float,
    resource: str,
    tag: str | None,
) -> dict[str, str]:
    name, category = SERVICES[svc]
    cost = round(qty * price, 10)
    period_start = day.replace(day=1)
    period_end = (period_start + timedelta(days=32)).replace(day=1)
    sku = _sku(svc, usage)
    return {
        "AvailabilityZone": "",
        "BilledCost": f"{cost:.10f}",
        "BillingAccountId": ACCOUNT_ID,
        "BillingAccountName": ACCOUNT_NAME,
        "BillingCurrency": "USD",
        "BillingPeriodEnd": f"{period_end:%Y-%m-%d} 00:00:00",
        "BillingPeriodStart": f"{period_start:%Y-%m-%d} 00:00:00",
        "ChargeCategory": "Usage",
        "ChargeClass": "",
        "ChargeDescription": f"${price:g} per {unit} for {usage} in {REGIONS[region]}",
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodEnd": f"{day + timedelta(days=1):%Y-%m-%d} 00:00:00",
        "ChargePeriodStart": f"{day:%Y-%m-%d} 00:00:00",
        "CommitmentDiscountCategory": "",
        "CommitmentDiscountId": "",
        "CommitmentDiscountName": "",
        "CommitmentDiscountStatus": "",
        "CommitmentDiscountType": "",
        "ConsumedQuantity": f"{qty:.10f}",
        "ConsumedUnit": unit,
        "ContractedCost": f"{cost:.10f}",
        "ContractedUnitPrice": f"{price:g}",
        "EffectiveCost": f"{cost:.10f}",
        "InvoiceIssuerName": "Amazon Web Services, Inc.",
        "ListCost": f"{cost:.10f}",
        "ListUnitPrice": f"{price:g}",
        "PricingCategory": "Standard",
        "PricingQuantity": f"{qty:.10f}",
        "PricingUnit": unit,
        "ProviderName": "AWS",
        "PublisherName": "Amazon Web Services, Inc.",
        "RegionId": region,
        "RegionName": REGIONS[region],
        "ResourceId": resource,
        "ResourceName": "",
        "ResourceType": "",
        "ServiceCategory": category,
        "ServiceName": name,
        "SkuId": sku,
        "SkuPriceId": f"{sku}.JRTCKXETXF",
        "SubAccountId": ACCOUNT_ID,
        "SubAccountName": ACCOUNT_NAME,
        "Tags": json.dumps({"pipeline": tag}) if tag else "",
        "x_CostCategories": "{}",
        "x_Discounts": "{}",
        "x_Operation": op,
        "x_ServiceCode": svc,
        "x_UsageType": usage,
    }


def _sku(svc: str, usage: str) -> str:
    import hashlib

    return hashlib.sha1(f"{svc}:{usage}".encode()).hexdigest()[:16].upper()  # noqa: S324 - an id, not security


def export_key(period: date) -> str:
    """The S3 key of a billing period's file, as AWS Data Exports names it."""
    return f"focus/{EXPORT_NAME}/data/BILLING_PERIOD={period:%Y-%m}/{EXPORT_NAME}-00001.csv.gz"


def write_export(rows: list[dict[str, str]], bucket: str, *, client=None) -> list[str]:
    """One gzip CSV per billing period (plus a manifest); returns the data keys written."""
    s3 = client or boto3.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)
    by_period: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_period.setdefault(r["BillingPeriodStart"][:7], []).append(r)
    keys = []
    for period in sorted(by_period):
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(by_period[period])
        body = gzip.compress(buf.getvalue().encode(), mtime=0)
        key = export_key(date.fromisoformat(period + "-01"))
        s3.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType="text/csv", ContentEncoding="gzip"
        )
        manifest = {
            "exportName": EXPORT_NAME,
            "billingPeriod": period,
            "dataFiles": [f"s3://{bucket}/{key}"],
            "rowCount": len(by_period[period]),
            "columns": list(COLUMNS),
            "format": "csv.gz",
            "schema": "FOCUS_1_0_AWS",
        }
        s3.put_object(
            Bucket=bucket,
            Key=f"focus/{EXPORT_NAME}/metadata/BILLING_PERIOD={period}/{EXPORT_NAME}-Manifest.json",
            Body=json.dumps(manifest, indent=2).encode(),
        )
        keys.append(key)
    return keys
