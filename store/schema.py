"""Every table pipepulse stores, on one ``MetaData`` with a naming convention.

Conventions:
- Times are UTC. Columns are ``UTCDateTime`` (``DateTime(timezone=True)``, which SQLite keeps
  naive), so every read hands back tz-aware UTC values.
- Status and severity columns are checked against the words of ``pipepulse.vocab``.
- Ids that come from a source are *source-qualified* (``"stepfunctions:<execution arn>"``,
  ``"glue:<job>:<run id>"``, ``"reference:<run id>"``) so two sources never collide.
- Strings that may be unknown are ``''`` rather than NULL where they take part in a key.
- Money is float (double precision): sums over a month of line items stay within a
  millionth of a cent, and pandas reads floats far faster than Decimal.

Changing a table: edit it here, then add an Alembic revision under ``store/migrations``
(``alembic -c store/alembic.ini revision --autogenerate -m "..."``).
"""

from __future__ import annotations

from datetime import UTC

import sqlalchemy as sa

from pipepulse.vocab import ANOMALY_STATUSES, RUN_STATUSES, SEVERITIES
from store.partitions import storage_clause

__all__ = ["metadata"]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = sa.MetaData(naming_convention=NAMING)


class UTCDateTime(sa.types.TypeDecorator):
    """``DateTime(timezone=True)`` that always reads back tz-aware UTC (SQLite stores naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None and dialect.name == "sqlite":
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


TS = UTCDateTime()

pipelines = sa.Table(
    "pipelines",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("source", sa.String(32), nullable=False, server_default="reference"),
    sa.Column("schedule", sa.String(100)),  # cron, UTC
    sa.Column("interval_seconds", sa.Integer),
    sa.Column("freshness_sla_seconds", sa.Integer, nullable=False, server_default="3600"),
    sa.Column("owner", sa.String(200), nullable=False, server_default=""),
    sa.Column("cost_tag", sa.String(200)),
    sa.Column("resource", sa.String(500)),  # state machine ARN, Glue job name
    sa.Column("account", sa.String(64), nullable=False, server_default=""),
    sa.Column("region", sa.String(64), nullable=False, server_default=""),
    sa.Column("updated_at", TS, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(600), primary_key=True),  # source-qualified
    sa.Column("pipeline", sa.String(200), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False, server_default="schedule"),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
    sa.Column("scheduled_for", TS),  # the schedule slot this run fills, for freshness
    sa.Column("queued_at", TS),
    sa.Column("started_at", TS),
    sa.Column("ended_at", TS),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("records_in", sa.BigInteger),
    sa.Column("records_out", sa.BigInteger),
    sa.Column("records_rejected", sa.BigInteger),
    sa.Column("bytes_in", sa.BigInteger),
    sa.Column("retries", sa.Integer, nullable=False, server_default="0"),  # step retries in the run
    sa.Column("error_type", sa.String(200)),
    sa.Column("error_message", sa.Text),
    sa.Column("correlation_id", sa.String(100)),
    sa.Column("cost_usd", sa.Float),  # run-level estimate from usage x public prices
    sa.Column("account", sa.String(64), nullable=False, server_default=""),
    sa.Column("region", sa.String(64), nullable=False, server_default=""),
    sa.Column("updated_at", TS, nullable=False),
    sa.CheckConstraint(sa.column("status").in_(RUN_STATUSES), name="status"),
    sa.Index("ix_runs_pipeline_started_at", "pipeline", "started_at"),
    sa.Index("ix_runs_started_at", "started_at"),
    sa.Index("ix_runs_status_started_at", "status", "started_at"),
    sa.Index("ix_runs_correlation_id", "correlation_id"),
)

run_steps = sa.Table(
    "run_steps",
    metadata,
    sa.Column("run_id", sa.String(600), primary_key=True),
    sa.Column("stage", sa.String(100), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("queued_at", TS),
    sa.Column("started_at", TS),
    sa.Column("ended_at", TS),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("records_in", sa.BigInteger),
    sa.Column("records_out", sa.BigInteger),
    sa.Column("records_rejected", sa.BigInteger),
    sa.Column("error_type", sa.String(200)),
    sa.Column("error_message", sa.Text),
    sa.Column("next_retry_at", TS),  # set while AWAITING_RETRY
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("operator", sa.String(200)),  # Airflow: the task's operator (others: NULL)
    sa.Column("map_index", sa.Integer),  # Airflow: a mapped task instance's index
    sa.Index("ix_run_steps_started_at", "started_at"),
)

run_logs = sa.Table(
    "run_logs",
    metadata,
    sa.Column("log_id", sa.String(300), primary_key=True),  # e.g. "<log group>:<eventId>"
    sa.Column("run_id", sa.String(600)),
    sa.Column("correlation_id", sa.String(100)),
    sa.Column("ts", TS, nullable=False),
    sa.Column("level", sa.String(10), nullable=False, server_default="INFO"),
    sa.Column("stage", sa.String(100)),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("log_group", sa.String(512), nullable=False, server_default=""),
    sa.Column("log_stream", sa.String(512), nullable=False, server_default=""),
    # the AWS account and region the event was read from ('' for the default credentials)
    sa.Column("account", sa.String(64), nullable=False, server_default=""),
    sa.Column("region", sa.String(64), nullable=False, server_default=""),
    sa.Index("ix_run_logs_correlation_id_ts", "correlation_id", "ts"),
    sa.Index("ix_run_logs_run_id", "run_id"),
    sa.Index("ix_run_logs_ts", "ts"),
)

metric_series = sa.Table(
    "metric_series",
    metadata,
    sa.Column("series_id", sa.Integer, primary_key=True, autoincrement=True),
    # canonical JSON of namespace, metric, sorted dimensions, stat and period: the natural key
    sa.Column("series_key", sa.String(2000), nullable=False, unique=True),
    sa.Column("namespace", sa.String(255), nullable=False),
    sa.Column("metric_name", sa.String(255), nullable=False),
    sa.Column("dimensions", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sa.Column("stat", sa.String(32), nullable=False),
    sa.Column("period_seconds", sa.Integer, nullable=False),
    sa.Column("unit", sa.String(32), nullable=False, server_default=""),
    sa.Column("pipeline", sa.String(200)),  # from the Pipeline dimension when present
    sa.Column("stage", sa.String(100)),  # from the Stage dimension when present
    # the AWS account and region read ('' for the default target, whose series_key has no
    # "<account>/<region>/" prefix: the same metric in two accounts is two series)
    sa.Column("account", sa.String(64), nullable=False, server_default=""),
    sa.Column("region", sa.String(64), nullable=False, server_default=""),
    sa.Index("ix_metric_series_pipeline", "pipeline"),
)

metric_points = sa.Table(
    "metric_points",
    metadata,
    sa.Column("series_id", sa.Integer, primary_key=True),
    sa.Column("ts", TS, primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    # PostgreSQL: monthly partitions (migration 0009_h22i, store/partitions.py); SQLite: a plain table
    postgresql_partition_by="RANGE (ts)",
)

cost_daily = sa.Table(
    "cost_daily",
    metadata,
    sa.Column("source", sa.String(16), primary_key=True),  # ce | focus | cur | estimate
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("provider", sa.String(64), primary_key=True),
    sa.Column("account", sa.String(64), primary_key=True),
    sa.Column("service", sa.String(200), primary_key=True),
    sa.Column("region", sa.String(64), primary_key=True),
    sa.Column("usage_type", sa.String(300), primary_key=True),
    sa.Column("pipeline", sa.String(200), primary_key=True),  # '' when untagged
    sa.Column("billed_cost", sa.Float, nullable=False),
    sa.Column("effective_cost", sa.Float, nullable=False),
    sa.Column("usage_quantity", sa.Float),
    # in the key: a month billed in two currencies keeps both (migration 0004_h22c)
    sa.Column("currency", sa.String(8), primary_key=True, server_default="USD"),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_cost_daily_day", "day"),
    postgresql_partition_by="RANGE (day)",  # monthly partitions, as metric_points
)

# A partitioned table created by ``metadata.create_all`` (not by the migrations) gets its default
# partition, so it takes rows before any month partition exists.
for _partitioned in (metric_points, cost_daily):
    sa.event.listen(
        _partitioned,
        "after_create",
        sa.DDL(
            f"CREATE TABLE {_partitioned.name}_default PARTITION OF {_partitioned.name} DEFAULT"
            + storage_clause(_partitioned.name)
        ).execute_if(dialect="postgresql"),
    )

forecast_snapshots = sa.Table(
    "forecast_snapshots",
    metadata,
    sa.Column("snapshot_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("method", sa.String(64), nullable=False),  # e.g. "pipepulse" or "aws"
    sa.Column("subject", sa.String(300), nullable=False),  # "total", "service:Amazon S3", ...
    sa.Column("level", sa.Float, nullable=False),
    sa.Column("train_start", sa.Date),
    sa.Column("train_end", sa.Date),
    sa.Column("mape", sa.Float),
    sa.Column("mase", sa.Float),
    sa.Column("bias", sa.Float),
    sa.Column("coverage", sa.Float),
    sa.Column("backtest_points", sa.Integer),
    sa.Column("month_end_mean", sa.Float),
    sa.Column("month_end_lower", sa.Float),
    sa.Column("month_end_upper", sa.Float),
    sa.Column("budget", sa.Float),
    sa.Column("budget_cross_day", sa.Date),
    # the candidate model that issued the forecast (insights.forecast.CANDIDATES; NULL for
    # AWS's) and the backtest MAE of the procedure beside last-value's and seasonal-naive's on
    # the same points: "worse than same as yesterday" is visible per snapshot
    sa.Column("model", sa.String(64)),
    sa.Column("backtest_mae", sa.Float),
    sa.Column("mae_last_value", sa.Float),
    sa.Column("mae_seasonal_naive", sa.Float),
    sa.UniqueConstraint("method", "subject", "created_at"),
)

forecast_points = sa.Table(
    "forecast_points",
    metadata,
    sa.Column("snapshot_id", sa.Integer, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("mean", sa.Float, nullable=False),
    sa.Column("lower", sa.Float),
    sa.Column("upper", sa.Float),
)

anomalies = sa.Table(
    "anomalies",
    metadata,
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),  # metric | duration | throughput | failure_rate | cost
    sa.Column("subject", sa.String(500), nullable=False),  # what it is about, human readable
    sa.Column("pipeline", sa.String(200)),
    sa.Column("window_start", TS, nullable=False),
    sa.Column("window_end", TS, nullable=False),
    sa.Column("observed", sa.Float),
    sa.Column("expected", sa.Float),
    sa.Column("lower", sa.Float),
    sa.Column("upper", sa.Float),
    sa.Column("score", sa.Float),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("status_note", sa.Text),
    sa.Column("status_by", sa.String(200)),
    sa.Column("status_at", TS),
    sa.Column("snoozed_until", TS),
    sa.Column("root_cause", sa.Text),  # JSON list of {dimension, value, impact}
    sa.Column("detector", sa.String(64), nullable=False, server_default=""),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),  # bumps on change
    sa.Column("first_seen", TS, nullable=False),
    sa.Column("last_seen", TS, nullable=False),
    sa.CheckConstraint(sa.column("status").in_(ANOMALY_STATUSES), name="status"),
    sa.CheckConstraint(sa.column("severity").in_(SEVERITIES), name="severity"),
    sa.Index("ix_anomalies_status_last_seen", "status", "last_seen"),
    sa.Index("ix_anomalies_kind_window_start", "kind", "window_start"),
)

maintenance_windows = sa.Table(
    "maintenance_windows",
    metadata,
    sa.Column("window_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(300), nullable=False, server_default="*"),  # pipeline, or *
    sa.Column("starts_at", TS, nullable=False),
    sa.Column("ends_at", TS, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", TS, nullable=False),
)

digests = sa.Table(
    "digests",
    metadata,
    sa.Column("digest_id", sa.String(64), primary_key=True),
    sa.Column("period", sa.String(16), nullable=False),  # immediate | daily | weekly
    sa.Column("channel", sa.String(16), nullable=False),  # smtp | ses
    sa.Column("recipients", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | sent | failed
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("sent_at", TS),
    sa.Index("ix_digests_status_created_at", "status", "created_at"),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("notification_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("digest_id", sa.String(64), nullable=False),
    sa.Column("rule", sa.String(100), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("item_key", sa.String(600), nullable=False),  # e.g. "run:<run_id>", "anomaly:<fp>"
    sa.Column("item_version", sa.String(64), nullable=False),  # changes when the item changes
    sa.Column("status", sa.String(16), nullable=False),  # pending | sent | failed
    sa.Column("created_at", TS, nullable=False),
    sa.Column("sent_at", TS),
    sa.UniqueConstraint("rule", "recipient", "item_key", "item_version"),
    sa.Index("ix_notifications_digest_id", "digest_id"),
    sa.Index("ix_notifications_item_key", "item_key"),
)

collector_runs = sa.Table(
    "collector_runs",
    metadata,
    sa.Column("collector_run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("ended_at", TS),
    sa.Column("window_start", TS),
    sa.Column("window_end", TS),
    sa.Column("status", sa.String(16), nullable=False),  # running | succeeded | failed
    sa.Column("rows_written", sa.Integer, nullable=False, server_default="0"),
    sa.Column("api_calls", sa.Integer, nullable=False, server_default="0"),
    sa.Column("api_cost_usd", sa.Float, nullable=False, server_default="0"),
    sa.Column("error", sa.Text),
    sa.Column("details", sa.Text),  # JSON: calls per operation, retries, pages
    sa.Column("slot", TS),  # the scheduler's cron firing this pass filled (NULL: not scheduled)
    sa.Index("ix_collector_runs_source_started_at", "source", "started_at"),
    sa.Index("ix_collector_runs_source_slot", "source", "slot"),
)

watermarks = sa.Table(
    "watermarks",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(600), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

locks = sa.Table(
    "locks",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("acquired_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Column("host", sa.String(255), nullable=False, server_default=""),  # the owner's host and pid
    sa.Column("pid", sa.Integer),
    sa.Column("heartbeat_at", TS),  # refreshed while the owner runs; stale: the owner is gone
)

# What the logs collector has read: a failed run is read again when it is not here, when its
# end changed since, or while its read was not yet ``complete`` (done before its end plus the
# re-read window, when late events may still arrive).
log_reads = sa.Table(
    "log_reads",
    metadata,
    sa.Column("run_id", sa.String(600), primary_key=True),
    sa.Column("ended_at", TS),  # the run's end when it was read
    sa.Column("read_at", TS, nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", TS, nullable=False),
)

# Daily rollup the dashboard reads instead of raw runs (refreshed by store.rollups).
run_daily = sa.Table(
    "run_daily",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("pipeline", sa.String(200), primary_key=True),
    sa.Column("runs", sa.Integer, nullable=False),
    sa.Column("succeeded", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("retries", sa.Integer, nullable=False),
    sa.Column("duration_p50", sa.Float),
    sa.Column("duration_p95", sa.Float),
    sa.Column("duration_max", sa.Float),
    sa.Column("duration_sum", sa.Float),
    sa.Column("queue_seconds_sum", sa.Float),
    sa.Column("records_in", sa.BigInteger),
    sa.Column("records_out", sa.BigInteger),
    sa.Column("records_rejected", sa.BigInteger),
    sa.Column("cost_usd", sa.Float),
    sa.Column("failed_cost_usd", sa.Float),
    sa.Column("updated_at", TS, nullable=False),
)

# Where runs and cost rows were read from, per day: the dashboard's account and region lists read
# these few rows instead of two weeks of runs and cost rows (store.places). Whole days are
# recomputed from the rows by store.rollups.refresh_run_daily (kind 'runs') and
# store.costs.replace_cost_rows (kind 'cost'), so the table holds days x places, however many
# runs or cost rows a day has.
places = sa.Table(
    "places",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),  # runs: the UTC date of started_at
    sa.Column("kind", sa.String(8), primary_key=True),  # runs | cost
    sa.Column("account", sa.String(64), primary_key=True),
    sa.Column("region", sa.String(64), primary_key=True),
)

# Who did what on the dashboard (and ``pipepulse anomalies ack|snooze|resolve``): every sign-in,
# failed and refused ones included, every sign-out and every admin action. The login's rate
# limit reads the failures back (store/audit.py). A sign-in row is written "pending" before the
# password is checked and then set to its outcome, so parallel attempts count each other.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", TS, nullable=False),
    sa.Column("action", sa.String(40), nullable=False),  # login | logout | anomaly_<status> | ...
    sa.Column("outcome", sa.String(16), nullable=False),  # ok | failed | locked | refused | pending
    sa.Column("actor", sa.String(200), nullable=False, server_default=""),  # the user (name tried, for a sign-in)
    sa.Column("client", sa.String(64), nullable=False, server_default=""),  # the client's address
    sa.Column("target", sa.String(600), nullable=False, server_default=""),  # e.g. an anomaly fingerprint
    sa.Column("detail", sa.Text),
    sa.Index("ix_audit_log_actor_at", "actor", "at"),
    sa.Index("ix_audit_log_client_at", "client", "at"),
)

lambda_invocations = sa.Table(
    "lambda_invocations",
    metadata,
    # one row per Lambda REPORT line (text format) or platform.report record (JSON format)
    sa.Column("log_group", sa.String(512), primary_key=True),  # /aws/lambda/<function>
    sa.Column("request_id", sa.String(100), primary_key=True),
    sa.Column("function_name", sa.String(200), nullable=False),
    sa.Column("pipeline", sa.String(200), nullable=False, server_default=""),  # '' when not mapped
    sa.Column("ended_at", TS, nullable=False),  # the REPORT event's time
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("billed_duration_ms", sa.Float, nullable=False),
    sa.Column("memory_size_mb", sa.Integer, nullable=False),
    sa.Column("max_memory_used_mb", sa.Integer, nullable=False),
    sa.Column("init_duration_ms", sa.Float),  # set on a cold start only
    sa.Column("status", sa.String(32)),  # newer runtimes: success | error | timeout
    sa.Column("log_stream", sa.String(512), nullable=False, server_default=""),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("account", sa.String(64), nullable=False, server_default=""),  # '' for the default target
    sa.Column("region", sa.String(64), nullable=False, server_default=""),
    sa.Index("ix_lambda_invocations_function_name_ended_at", "function_name", "ended_at"),
    sa.Index("ix_lambda_invocations_pipeline_ended_at", "pipeline", "ended_at"),
)
