"""The ``[pipeline]`` config section and the reference pipelines' profiles.

``[pipeline]`` keys (all optional; defaults work on a laptop with the local AWS):

- ``ledger_path``   the run ledger, default ``<data_dir>/ledger.db``
- ``source``        where new source files land: ``s3://bucket/prefix`` or a local folder
                    (default ``s3://pipepulse-demo-landing/incoming``); files of pipeline P are
                    under ``<source>/P/``
- ``output``        where loaded data goes (default ``s3://pipepulse-demo-lake/curated``)
- ``quarantine``    where rejected records go (default ``s3://pipepulse-demo-lake/quarantine``)
- ``export_bucket`` bucket of the demo's FOCUS cost export (default ``pipepulse-demo-billing``)
- ``max_attempts``  attempts per stage (default 3); ``stage_timeout_seconds`` (default 900)
- ``poll_seconds``  how often ``pipeline schedule`` looks for due runs and new files (default 60)
- ``sample_every_hours`` backfill: one run in this many hours per pipeline processes a real
                    file through S3 (default 72; see ``pipeline.backfill``)

A *profile* says what a pipeline's data looks like and how big it is (dataset schema, file
format, records per run, Glue DPUs of its transform). Profiles exist for the demo's pipelines;
any other reference pipeline gets ``DEFAULT_PROFILE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipepulse.errors import ConfigError
from pipepulse.settings import Settings, check_keys, opt

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "PipelineSection",
    "Profile",
    "pipeline_section",
    "profile_for",
]


@dataclass(frozen=True, kw_only=True)
class PipelineSection:
    ledger_path: Path
    source: str = "s3://pipepulse-demo-landing/incoming"
    output: str = "s3://pipepulse-demo-lake/curated"
    quarantine: str = "s3://pipepulse-demo-lake/quarantine"
    export_bucket: str = "pipepulse-demo-billing"
    max_attempts: int = 3
    stage_timeout_seconds: float = 900.0
    poll_seconds: float = 60.0
    sample_every_hours: int = 72


@dataclass(frozen=True, kw_only=True)
class Profile:
    dataset: str  # a key of pipeline.records.SCHEMAS
    fmt: str  # csv | jsonl
    records_per_run: int  # at the start of a backfill, before growth
    transform_dpus: int  # Glue DPUs of the transform stage
    transform_seconds_per_1k: (
        float  # simulated transform time per 1,000 records (after 60 s startup)
    )
    reject_rate: float = 0.002  # share of bad records on an ordinary day


# Sized so the demo's pipelines cost about $10 a day together (mostly Glue DPU-hours), within the
# demo's per-pipeline budgets, and so a sampled run's real file stays small (< 0.5 MB).
PROFILES: dict[str, Profile] = {
    "orders": Profile(
        dataset="orders",
        fmt="csv",
        records_per_run=1_200,
        transform_dpus=10,
        transform_seconds_per_1k=90,
    ),
    "clickstream": Profile(
        dataset="clickstream",
        fmt="jsonl",
        records_per_run=3_000,
        transform_dpus=8,
        transform_seconds_per_1k=30,
    ),
    "finance_daily": Profile(
        dataset="finance",
        fmt="csv",
        records_per_run=8_000,
        transform_dpus=20,
        # 40 s per 1,000 records: ~500 s at the end of a 90-day backfill, well inside the
        # 900 s stage timeout, so an ordinary day of the demo never times out
        transform_seconds_per_1k=40,
    ),
    "partner_feed": Profile(
        dataset="partner",
        fmt="csv",
        records_per_run=600,
        transform_dpus=4,
        transform_seconds_per_1k=100,
    ),
}
DEFAULT_PROFILE = Profile(
    dataset="orders",
    fmt="csv",
    records_per_run=1_000,
    transform_dpus=2,
    transform_seconds_per_1k=60,
)


def profile_for(name: str) -> Profile:
    return PROFILES.get(name, DEFAULT_PROFILE)


def pipeline_section(settings: Settings) -> PipelineSection:
    """Parse ``[pipeline]``; errors name the file, the key and what was expected."""
    table = settings.section("pipeline")
    label = settings.config_label
    check_keys(table, "pipeline", label)
    ledger = opt(table, "ledger_path", str, label, "pipeline")
    out = PipelineSection(
        ledger_path=Path(ledger) if ledger else Path(settings.data_dir) / "ledger.db",
        source=opt(table, "source", str, label, "pipeline", default=PipelineSection.source),
        output=opt(table, "output", str, label, "pipeline", default=PipelineSection.output),
        quarantine=opt(
            table, "quarantine", str, label, "pipeline", default=PipelineSection.quarantine
        ),
        export_bucket=opt(
            table, "export_bucket", str, label, "pipeline", default=PipelineSection.export_bucket
        ),
        max_attempts=opt(table, "max_attempts", int, label, "pipeline", default=3),
        stage_timeout_seconds=float(
            opt(table, "stage_timeout_seconds", (int, float), label, "pipeline", default=900)
        ),
        poll_seconds=float(opt(table, "poll_seconds", (int, float), label, "pipeline", default=60)),
        sample_every_hours=opt(table, "sample_every_hours", int, label, "pipeline", default=72),
    )
    for key in ("max_attempts", "stage_timeout_seconds", "poll_seconds", "sample_every_hours"):
        if getattr(out, key) <= 0:
            raise ConfigError(
                f"{label}: [pipeline] {key}: expected a positive number, got {getattr(out, key)!r}"
            )
    for key in ("source", "output", "quarantine"):
        value = getattr(out, key)
        if value.startswith("s3://") and not value[5:].split("/", 1)[0]:
            raise ConfigError(
                f"{label}: [pipeline] {key}: {value!r} names no bucket; expected s3://bucket/prefix"
            )
    return out
