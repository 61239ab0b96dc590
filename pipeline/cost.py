"""A run's cost: the resources it used, priced with public AWS list prices (``settings.prices``).

Usage keys (all summed over every stage attempt, failed ones too, since AWS bills those):

- ``compute_vcpu_seconds`` Fargate-style tasks of ingest, validate, quarantine and load (1 vCPU)
- ``glue_dpu_seconds``     the transform's Glue job: DPUs x seconds, at least 60 s per attempt
                           (Glue 2.0+ bills per second with a one-minute minimum)
- ``s3_get_requests``, ``s3_put_requests`` (LIST counts as a PUT-class request, as S3 bills it)
- ``metric_put_requests``  PutMetricData calls' share for this run
- ``log_bytes``            bytes ingested into CloudWatch Logs
"""

from __future__ import annotations

from collections.abc import Mapping

from pipepulse.settings import Prices

__all__ = ["USAGE_KEYS", "cost_usd", "priced"]

USAGE_KEYS = (
    "compute_vcpu_seconds",
    "glue_dpu_seconds",
    "s3_get_requests",
    "s3_put_requests",
    "metric_put_requests",
    "log_bytes",
)


def priced(usage: Mapping[str, float], prices: Prices) -> dict[str, float]:
    """Dollars per usage key."""
    return {
        "compute_vcpu_seconds": usage.get("compute_vcpu_seconds", 0.0)
        / 3600
        * prices.compute_vcpu_hour,
        "glue_dpu_seconds": usage.get("glue_dpu_seconds", 0.0) / 3600 * prices.glue_dpu_hour,
        "s3_get_requests": usage.get("s3_get_requests", 0.0) * prices.s3_get_request,
        "s3_put_requests": usage.get("s3_put_requests", 0.0) * prices.s3_put_request,
        "metric_put_requests": usage.get("metric_put_requests", 0.0)
        * prices.cloudwatch_put_metric_request,
        "log_bytes": usage.get("log_bytes", 0.0) / 1e9 * prices.cloudwatch_logs_gb_ingested,
    }


def cost_usd(usage: Mapping[str, float], prices: Prices) -> float:
    """Total dollars for ``usage``, rounded to a millionth of a dollar."""
    return round(sum(priced(usage, prices).values()), 6)
