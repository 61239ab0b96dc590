"""The one settings object: built once per entry point, then passed down.

Sources, later ones winning: built-in defaults (which work on a laptop), the TOML config file
(``pipepulse.toml`` in the working directory, or ``PIPEPULSE_CONFIG``), then ``PIPEPULSE_*``
environment variables. No other module reads ``os.environ``.

Areas with their own config section (``[collectors]``, ``[alerts]``, ``[dashboard]``,
``[retention]``) parse it from ``Settings.section(name)`` with the helpers at the bottom of this
module, so every config error names the file, the key and what was expected.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pipepulse.errors import ConfigError
from pipepulse.redact import mask_url

__all__ = [
    "AIRFLOW_KEYS",
    "CONFIG_KEYS",
    "DEMO_MARKER",
    "NOTIFY_KINDS",
    "AirflowConfig",
    "AwsAccount",
    "NotifyTarget",
    "PipelineConfig",
    "Prices",
    "Settings",
    "airflow_config",
    "check_config",
    "check_keys",
    "known_keys",
    "load_settings",
    "opt",
    "read_toml",
    "require_table",
]

DEFAULT_CONFIG_NAME = "pipepulse.toml"
# A data folder that holds this file was built by `pipepulse demo build` (the dashboard says so).
DEMO_MARKER = ".pipepulse-demo"
# Any of these means the user has set up real AWS credentials, so no local AWS by default.
_CREDENTIAL_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


@dataclass(frozen=True, kw_only=True)
class Prices:
    """Public AWS list prices (us-east-1) used for estimates. Override under ``[prices]``."""

    lambda_gb_second: float = 0.0000166667
    lambda_request: float = 0.0000002
    glue_dpu_hour: float = 0.44
    glue_flex_dpu_hour: float = 0.29  # ExecutionClass FLEX (Glue 3.0+ Spark jobs)
    sfn_transition: float = 0.000025
    sfn_express_request: float = 0.000001  # Express workflows: $1.00 per million requests
    sfn_express_gb_second: float = 0.00001667  # Express duration, first 1,000 GB-hours tier ($0.06 per GB-hour)
    s3_put_request: float = 0.000005
    s3_get_request: float = 0.0000004
    s3_gb_month: float = 0.023
    cloudwatch_put_metric_request: float = 0.00001
    cloudwatch_logs_gb_ingested: float = 0.50
    ce_request: float = 0.01
    cloudwatch_metrics_requested_per_1000: float = 0.01
    compute_vcpu_hour: float = 0.04048  # Fargate vCPU-hour: the reference pipeline's compute
    athena_tb_scanned: float = 5.0  # Athena SQL queries, per TB scanned (10 MB minimum a query)


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    """One watched pipeline: where its runs come from and when they are expected."""

    name: str
    source: str = "reference"  # reference | stepfunctions | glue | airflow
    schedule: str | None = None  # cron expression, UTC
    interval_seconds: int | None = None  # or a fixed interval
    freshness_sla_seconds: int = 3600  # how late a run may be before it is "late"
    owner: str = ""
    cost_tag: str | None = None  # value of the cost-allocation tag naming this pipeline
    resource: str | None = None  # state machine ARN / Glue job name / Airflow DAG id


NOTIFY_KINDS = ("slack", "webhook")


@dataclass(frozen=True, kw_only=True)
class NotifyTarget:
    """One chat or webhook destination, ``[notify.<name>]``; alert rules name it as a recipient
    ``"<kind>:<name>"`` (``"slack:oncall"``). Secrets are named here, never written: the URL (a
    Slack webhook URL is itself a secret) and the webhook's signing key come from a ``PIPEPULSE_*``
    environment variable (``*_env``) or a Secrets Manager secret id or ARN (``*_secret``); a
    generic webhook may give a plain ``url``."""

    name: str
    kind: str  # slack | webhook
    url: str | None = None
    url_env: str | None = None
    url_secret: str | None = None
    signing_secret_env: str | None = None  # webhook only: the HMAC-SHA256 key
    signing_secret_secret: str | None = None
    timeout_seconds: float = 10.0
    attempts: int = 4  # tries per message, the first included (5xx, 429 and dropped connections are retried)

    @property
    def address(self) -> str:
        return f"{self.kind}:{self.name}"


_NOTIFY_KEYS = {"kind", "url", "url_env", "url_secret", "signing_secret_env", "signing_secret_secret",
                "timeout_seconds", "attempts"}


@dataclass(frozen=True, kw_only=True)
class AwsAccount:
    """One ``[[aws.accounts]]`` entry: a member account the collectors reach by AssumeRole."""

    role_arn: str
    external_id: str | None = None
    name: str = ""  # shown in the dashboard; the account id when not given

    @property
    def account_id(self) -> str:
        return self.role_arn.split(":")[4]

    @property
    def label(self) -> str:
        return self.name or self.account_id


# arn:<partition>:iam::<12 digits>:role/<path/>name  (IAM role names: letters, digits, +=,.@_-)
ROLE_ARN = re.compile(r"arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::\d{12}:role/([\w+=,.@/-]+/)?[\w+=,.@-]{1,64}")
# the shape of a region name (us-east-1, us-gov-west-1, cn-north-1); whether AWS knows it is
# checked when a client is made (collectors/aws.py), against botocore's endpoint data
REGION = re.compile(r"[a-z]{2,8}(-[a-z]+)+-\d{1,2}")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything an entry point needs (README's configuration table says what each field means)."""

    database_url: str
    data_dir: Path
    config_path: Path | None = None
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    # [aws] regions and [[aws.accounts]]: what the AWS collectors fan out over (empty: the one
    # aws_region with the default credentials, as before)
    aws_regions: tuple[str, ...] = ()
    aws_accounts: tuple[AwsAccount, ...] = ()
    local_aws: bool = True
    # local_aws was asked for (PIPEPULSE_LOCAL_AWS or [aws] local), not only the default: only
    # then may a command start an empty local AWS of its own (cli/awsenv.py)
    local_aws_explicit: bool = False
    log_level: str = "INFO"
    log_format: str = "json"
    dashboard_url: str = "http://localhost:8501"
    cost_tag_key: str = "pipeline"
    currency: str = "USD"
    budget_monthly: float | None = None
    budgets_by_pipeline: Mapping[str, float] = field(default_factory=dict)
    pipelines: tuple[PipelineConfig, ...] = ()
    prices: Prices = field(default_factory=Prices)
    raw: Mapping[str, Any] = field(default_factory=dict)
    # PIPEPULSE_* variables as they were at load time, for secrets named in the config
    # (e.g. ``password_env = "PIPEPULSE_SMTP_PASSWORD"``); read through ``secret()``.
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)
    # [backup]: where the backup job copies the SQLite database, and how many copies it keeps
    backup_dir: Path | None = None  # None: <data_dir>/backups
    backup_keep: int = 7
    # [notify.<name>]: Slack and webhook destinations alert rules may name as recipients
    notify: Mapping[str, NotifyTarget] = field(default_factory=dict)
    # [metrics]: where `pipepulse schedule` serves Prometheus /metrics (port 0: not served)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108

    def secret(self, name: str, *, where: str) -> str:
        """The value of environment variable ``name`` (must start with PIPEPULSE_); ``where``
        names the config key that asked for it, for the error when it is unset."""
        if not name.startswith("PIPEPULSE_"):
            raise ConfigError(f"{self.config_label}: {where}: secrets come from PIPEPULSE_* variables, got {name!r}")
        value = self.environment.get(name)
        if not value:
            raise ConfigError(f"{self.config_label}: {where}: environment variable {name} is not set")
        return value

    def section(self, name: str) -> Mapping[str, Any]:
        """The raw ``[name]`` table of the config file (empty when absent)."""
        value = self.raw.get(name, {})
        return require_table(value, self.config_label, name)

    @property
    def config_label(self) -> str:
        return str(self.config_path) if self.config_path else "(no config file)"

    def pipeline(self, name: str) -> PipelineConfig | None:
        return next((p for p in self.pipelines if p.name == name), None)


def load_settings(
    env: Mapping[str, str] | None = None, *, config_path: str | Path | None = None
) -> Settings:
    """Build the settings from defaults, the config file and the environment."""
    env = os.environ if env is None else env
    path = _config_path(env, config_path)
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_toml(path)
        check_config(raw, str(path), _text(path))
    label = str(path) if path else "(environment)"

    database = require_table(raw.get("database", {}), label, "database")
    aws = require_table(raw.get("aws", {}), label, "aws")
    general = require_table(raw.get("pipepulse", {}), label, "pipepulse")
    budgets = require_table(raw.get("budgets", {}), label, "budgets")
    backup = require_table(raw.get("backup", {}), label, "backup")
    if set(backup) - {"dir", "keep"}:
        raise ConfigError(f"{label}: [backup] unknown key {sorted(set(backup) - {'dir', 'keep'})[0]!r}; known keys: dir, keep")
    backup_dir = opt(backup, "dir", str, label, "backup")
    metrics = require_table(raw.get("metrics", {}), label, "metrics")
    if set(metrics) - {"host", "port"}:
        raise ConfigError(f"{label}: [metrics] unknown key {sorted(set(metrics) - {'host', 'port'})[0]!r}; known keys: host, port")
    metrics_port = opt(metrics, "port", int, label, "metrics", default=9108)
    if not 0 <= metrics_port < 65536:
        raise ConfigError(f"{label}: [metrics] port: expected 0 (off) or 1-65535, got {metrics_port}")
    backup_keep = opt(backup, "keep", int, label, "backup", default=7)
    if backup_keep < 1:
        raise ConfigError(f"{label}: [backup] keep: expected 1 or more copies, got {backup_keep}")

    data_dir = Path(env.get("PIPEPULSE_DATA_DIR") or opt(general, "data_dir", str, label, "pipepulse") or "data")
    database_url = (
        env.get("PIPEPULSE_DATABASE_URL")
        or opt(database, "url", str, label, "database")
        or f"sqlite:///{(data_dir / 'pipepulse.db').as_posix()}"
    )
    if "://" not in database_url:
        raise ConfigError(
            f"{label}: database url {mask_url(database_url)!r} is not a URL; expected e.g. "
            "sqlite:///data/pipepulse.db or postgresql+psycopg://postgres@127.0.0.1:5432/pipepulse"
        )
    problem = url_problem(database_url)
    if problem:
        raise ConfigError(f"{label}: database URL {mask_url(database_url)}: {problem}")
    endpoint = env.get("AWS_ENDPOINT_URL") or opt(aws, "endpoint_url", str, label, "aws")
    local_raw = env.get("PIPEPULSE_LOCAL_AWS")
    has_credentials = any(env.get(k) for k in _CREDENTIAL_VARS)
    local_aws = _bool(local_raw, "PIPEPULSE_LOCAL_AWS") if local_raw is not None else bool(
        opt(aws, "local", bool, label, "aws", default=endpoint is None and not has_credentials)
    )
    log_level = (env.get("PIPEPULSE_LOG_LEVEL") or opt(general, "log_level", str, label, "pipepulse") or "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"PIPEPULSE_LOG_LEVEL / [pipepulse] log_level: expected DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
    log_format = (env.get("PIPEPULSE_LOG_FORMAT") or opt(general, "log_format", str, label, "pipepulse") or "json").lower()
    if log_format not in {"json", "text"}:
        raise ConfigError(f"PIPEPULSE_LOG_FORMAT / [pipepulse] log_format: expected json or text, got {log_format!r}")

    budget_pipes = require_table(budgets.get("pipelines", {}), label, "budgets.pipelines")
    for k, v in budget_pipes.items():
        if not isinstance(v, int | float) or isinstance(v, bool) or v < 0:
            raise ConfigError(f"{label}: [budgets.pipelines] {k}: expected a non-negative number, got {v!r}")
    monthly = opt(budgets, "monthly", (int, float), label, "budgets")
    if monthly is not None and monthly < 0:
        raise ConfigError(f"{label}: [budgets] monthly: expected a non-negative number (the month's budget), got {monthly!r}")
    if env.get("PIPEPULSE_BUDGET_MONTHLY"):
        monthly = _float(env["PIPEPULSE_BUDGET_MONTHLY"], "PIPEPULSE_BUDGET_MONTHLY")
        if monthly < 0:
            raise ConfigError(f"PIPEPULSE_BUDGET_MONTHLY: expected a non-negative number, got {env['PIPEPULSE_BUDGET_MONTHLY']!r}")
    notify = _notify(require_table(raw.get("notify", {}), label, "notify"), label)
    # [[alerts.rules]] now, not at the first digest: `pipepulse schedule` must not start with a
    # rule that fails hours later. The rest of [alerts] (SMTP secrets) is read where it is used.
    from pipepulse.alert_rules import parse_rules  # it uses this module's helpers

    parse_rules(require_table(raw.get("alerts", {}), label, "alerts").get("rules", []), label, notify)

    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        config_path=path,
        aws_region=env.get("PIPEPULSE_AWS_REGION") or opt(aws, "region", str, label, "aws") or "us-east-1",
        aws_endpoint_url=endpoint,
        aws_regions=_regions(aws, label),
        aws_accounts=_accounts(aws.get("accounts", []), label),
        local_aws=local_aws,
        local_aws_explicit=local_aws and (local_raw is not None or "local" in aws),
        log_level=log_level,
        log_format=log_format,
        dashboard_url=(env.get("PIPEPULSE_DASHBOARD_URL") or opt(general, "dashboard_url", str, label, "pipepulse") or "http://localhost:8501").rstrip("/"),
        cost_tag_key=opt(general, "cost_tag_key", str, label, "pipepulse") or "pipeline",
        currency=opt(general, "currency", str, label, "pipepulse") or "USD",
        budget_monthly=float(monthly) if monthly is not None else None,
        budgets_by_pipeline={k: float(v) for k, v in budget_pipes.items()},
        pipelines=_pipelines(raw.get("pipelines", []), label),
        prices=_prices(require_table(raw.get("prices", {}), label, "prices"), label),
        raw=raw,
        environment={k: v for k, v in env.items() if k.startswith("PIPEPULSE_")},
        backup_dir=Path(backup_dir) if backup_dir else None,
        backup_keep=backup_keep,
        notify=notify,
        metrics_host=opt(metrics, "host", str, label, "metrics", default="127.0.0.1"),
        metrics_port=metrics_port,
    )


# ---- helpers for every config section -------------------------------------------------------


def url_problem(url: str) -> str | None:
    """What makes a ``scheme://user:password@host:port/db`` URL unusable, or None (so the error
    is one line that never shows the password; the caller masks the URL)."""
    netloc = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    if url.split("://", 1)[0].startswith("sqlite") and netloc:
        rest = url.split("://", 1)[1]
        return (f"a SQLite URL has three slashes before a relative path and four before an absolute one: "
                f"write sqlite:///{rest} (or sqlite:////{rest} for /{rest})")
    userinfo, at, hostport = netloc.rpartition("@")
    if at and "@" in userinfo:
        part = "password" if ":" in userinfo.split("@", 1)[0] else "user name"
        return f"the {part} holds an unencoded '@'; write it as %40"
    if hostport.startswith("["):
        port = hostport.partition("]")[2].removeprefix(":")
    else:
        port = hostport.partition(":")[2]
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        return f"port {port!r} is not a number" if not port.isdigit() else f"port {port} is out of range (1-65535)"
    return None


def require_table(value: Any, label: str, where: str) -> Mapping[str, Any]:
    """``value`` as a TOML table, or a ConfigError naming the file and the section."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{label}: [{where}] must be a table (key = value lines), got {type(value).__name__}")
    return value


def opt(
    table: Mapping[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    label: str,
    where: str,
    *,
    default: Any = None,
) -> Any:
    """``table[key]`` checked against ``kind``; ``default`` when absent."""
    if key not in table:
        return default
    value = table[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        ok = False
    else:
        ok = isinstance(value, kinds)
    if not ok:
        names = " or ".join(k.__name__ for k in kinds)
        raise ConfigError(f"{label}: [{where}] {key}: expected {names}, got {value!r}")
    return value


def _config_path(env: Mapping[str, str], given: str | Path | None) -> Path | None:
    if given is not None:
        path = Path(given)
    elif env.get("PIPEPULSE_CONFIG"):
        path = Path(env["PIPEPULSE_CONFIG"])
    else:
        path = Path(DEFAULT_CONFIG_NAME)
        return path if path.is_file() else None
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        fix = "give a config file's path" if given is not None else "create it or unset PIPEPULSE_CONFIG"
        raise ConfigError(f"config file {path} {what}; {fix}")
    return path


MAX_TOML_BYTES = 10 * 1024 * 1024  # a config or secrets file is a few kB; this is no config


def read_toml(path: Path, what: str = "config file") -> dict[str, Any]:
    """A TOML file as a dict; ConfigError naming the file for anything that is not readable TOML
    (not UTF-8, nested deeper than Python's parser recurses, huge, invalid)."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_TOML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror}") from exc
    if len(raw) > MAX_TOML_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_TOML_BYTES // (1024 * 1024)} MB; this is not a {what}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save the file as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to read (arrays or tables inside each other); flatten it") from None


def _read_toml(path: Path) -> dict[str, Any]:
    return read_toml(path)


def _pipelines(value: Any, label: str) -> tuple[PipelineConfig, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{label}: pipelines must be an array of tables ([[pipelines]]), got {type(value).__name__}")
    out: list[PipelineConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        where = f"pipelines #{i + 1}"
        item = require_table(item, label, where)
        name = opt(item, "name", str, label, where)
        if not name:
            raise ConfigError(f"{label}: [[pipelines]] #{i + 1}: name is required")
        if name in seen:
            raise ConfigError(f"{label}: [[pipelines]] {name!r} is defined twice")
        seen.add(name)
        where = f"pipelines {name}"
        source = opt(item, "source", str, label, where, default="reference")
        if source not in {"reference", "stepfunctions", "glue", "airflow"}:
            raise ConfigError(f"{label}: [{where}] source: expected reference, stepfunctions, glue or airflow, got {source!r}")
        schedule = opt(item, "schedule", str, label, where)
        if schedule is not None:
            from pipepulse.cron import CronSchedule

            try:
                CronSchedule(schedule)
            except ValueError as exc:
                raise ConfigError(f"{label}: [{where}] schedule: {exc}") from exc
        interval = opt(item, "interval_minutes", int, label, where)
        sla = opt(item, "freshness_sla_minutes", int, label, where, default=60)
        for key, v in (("interval_minutes", interval), ("freshness_sla_minutes", sla)):
            if v is not None and v <= 0:
                raise ConfigError(f"{label}: [{where}] {key}: expected a positive whole number of minutes, got {v}")
        check_keys(item, "pipelines", label, where=where)
        out.append(
            PipelineConfig(
                name=name,
                source=source,
                schedule=schedule,
                interval_seconds=interval * 60 if interval else None,
                freshness_sla_seconds=sla * 60,
                owner=opt(item, "owner", str, label, where, default=""),
                cost_tag=opt(item, "cost_tag", str, label, where, default=name),
                resource=opt(item, "resource", str, label, where),
            )
        )
    return tuple(out)


def _regions(aws: Mapping[str, Any], label: str) -> tuple[str, ...]:
    """``[aws] regions``: a list of region names, each once."""
    value = opt(aws, "regions", list, label, "aws", default=[])
    seen: list[str] = []
    for i, region in enumerate(value):
        if not isinstance(region, str) or not REGION.fullmatch(region):
            raise ConfigError(f"{label}: [aws] regions #{i + 1}: {region!r} is not an AWS region name (e.g. us-east-1, eu-west-1)")
        if region in seen:
            raise ConfigError(f"{label}: [aws] regions: {region!r} is listed twice")
        seen.append(region)
    region = opt(aws, "region", str, label, "aws")
    if region is not None and not REGION.fullmatch(region):
        raise ConfigError(f"{label}: [aws] region: {region!r} is not an AWS region name (e.g. us-east-1, eu-west-1)")
    return tuple(seen)


def _accounts(value: Any, label: str) -> tuple[AwsAccount, ...]:
    """``[[aws.accounts]]``: role_arn (required), external_id and name (optional)."""
    if not isinstance(value, list):
        raise ConfigError(f"{label}: [aws] accounts must be an array of tables ([[aws.accounts]]), got {type(value).__name__}")
    out: list[AwsAccount] = []
    for i, item in enumerate(value):
        where = f"aws.accounts #{i + 1}"
        item = require_table(item, label, where)
        check_keys(item, "aws.accounts", label, where=where)
        role_arn = opt(item, "role_arn", str, label, where)
        if not role_arn:
            raise ConfigError(f"{label}: [[aws.accounts]] #{i + 1}: role_arn is required (the role the collectors assume)")
        if not ROLE_ARN.fullmatch(role_arn):
            raise ConfigError(f"{label}: [{where}] role_arn: {role_arn!r} is not an IAM role ARN; expected "
                              "arn:aws:iam::<12-digit account id>:role/<name>")
        external_id = opt(item, "external_id", str, label, where)
        if external_id is not None and not re.fullmatch(r"[\w+=,.@:/-]{2,1224}", external_id):
            raise ConfigError(f"{label}: [{where}] external_id: expected 2-1224 characters of letters, digits and +=,.@:/-")
        account = AwsAccount(role_arn=role_arn, external_id=external_id, name=opt(item, "name", str, label, where, default=""))
        if any(a.account_id == account.account_id for a in out):
            raise ConfigError(f"{label}: [{where}] role_arn: account {account.account_id} is listed twice")
        if account.name and any(a.label == account.name for a in out):
            raise ConfigError(f"{label}: [{where}] name: {account.name!r} is used twice")
        out.append(account)
    return tuple(out)


def _notify(table: Mapping[str, Any], label: str) -> dict[str, NotifyTarget]:
    out: dict[str, NotifyTarget] = {}
    for name, value in table.items():
        where = f"notify.{name}"
        item = require_table(value, label, where)
        unknown = sorted(set(item) - _NOTIFY_KEYS)
        if unknown:
            raise ConfigError(f"{label}: [{where}] unknown key {unknown[0]!r}; known keys: {', '.join(sorted(_NOTIFY_KEYS))}")
        kind = opt(item, "kind", str, label, where)
        if kind not in NOTIFY_KINDS:
            raise ConfigError(f"{label}: [{where}] kind: expected slack or webhook, got {kind!r}")
        urls = [k for k in ("url", "url_env", "url_secret") if item.get(k)]
        if len(urls) != 1:
            raise ConfigError(f"{label}: [{where}] give exactly one of url_env (a PIPEPULSE_* variable), "
                              f"url_secret (a Secrets Manager secret) and url, got {', '.join(urls) or 'none'}")
        if kind == "slack" and urls == ["url"]:
            raise ConfigError(f"{label}: [{where}] url: a Slack webhook URL is a secret; put it in a PIPEPULSE_* "
                              "variable (url_env) or Secrets Manager (url_secret), not in the config file")
        keys = [k for k in ("signing_secret_env", "signing_secret_secret") if item.get(k)]
        if kind == "webhook" and len(keys) != 1:
            raise ConfigError(f"{label}: [{where}] a webhook signs every message: give exactly one of "
                              "signing_secret_env and signing_secret_secret")
        if kind == "slack" and keys:
            raise ConfigError(f"{label}: [{where}] {keys[0]}: Slack webhooks are not signed; remove it")
        for k in ("url_env", "signing_secret_env"):
            if item.get(k) is not None and not str(item[k]).startswith("PIPEPULSE_"):
                raise ConfigError(f"{label}: [{where}] {k}: secrets come from PIPEPULSE_* variables, got {item[k]!r}")
        timeout = opt(item, "timeout_seconds", (int, float), label, where, default=10)
        attempts = opt(item, "attempts", int, label, where, default=4)
        if timeout <= 0 or attempts < 1:
            raise ConfigError(f"{label}: [{where}] timeout_seconds must be positive and attempts 1 or more")
        out[name] = NotifyTarget(
            name=name, kind=kind, url=opt(item, "url", str, label, where), url_env=opt(item, "url_env", str, label, where),
            url_secret=opt(item, "url_secret", str, label, where),
            signing_secret_env=opt(item, "signing_secret_env", str, label, where),
            signing_secret_secret=opt(item, "signing_secret_secret", str, label, where),
            timeout_seconds=float(timeout), attempts=attempts,
        )
    return out


def _prices(table: Mapping[str, Any], label: str) -> Prices:
    check_keys(table, "prices", label)
    values: dict[str, float] = {}
    for key, value in table.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{label}: [prices] {key}: expected a non-negative number, got {value!r}")
        values[key] = float(value)
    return Prices(**values)


def _bool(value: str, name: str) -> bool:
    v = value.strip().lower()
    if v in {"1", "true", "yes", "on"}:
        return True
    if v in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}: expected true or false, got {value!r}")


def _float(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError as exc:
        raise ConfigError(f"{name}: expected a number, got {value!r}") from exc


# ---- [collectors.airflow] --------------------------------------------------------------------

# key -> what it means (the collector's config; README's Airflow section shows an example)
AIRFLOW_KEYS: dict[str, str] = {
    "url": "base URL of the Airflow API server (e.g. http://airflow:8080); not with mwaa_environment",
    "api": '"v2" (Airflow 3, the default) or "v1" (Airflow 2.x)',
    "auth": '"token" (v2: POST /auth/token), "basic" (v1), "none", or "mwaa" (set by mwaa_environment)',
    "username": "the Airflow user for token or basic auth",
    "password_env": "the PIPEPULSE_* environment variable holding that user's password",
    "mwaa_environment": "an Amazon MWAA environment name: calls go through mwaa:InvokeRestApi",
    "dags": "DAG ids to read (default: every DAG the user can see)",
    "lookback_days": "how far back the first pass reads (default 30)",
    "reread_minutes": "runs that ended this long before the newest stored end are read again (default 60)",
    "page_size": "items per API page (default 100; Airflow caps it at its maximum_page_limit)",
    "timeout_seconds": "how long one Airflow answer may take (default 30)",
}


@dataclass(frozen=True, kw_only=True)
class AirflowConfig:
    """The checked ``[collectors.airflow]`` table (``AIRFLOW_KEYS`` says what each key means)."""

    url: str | None = None
    api: str = "v2"
    auth: str = "token"
    username: str | None = None
    password_env: str | None = None
    mwaa_environment: str | None = None
    dags: tuple[str, ...] = ()
    lookback_days: int = 30
    reread_minutes: int = 60
    page_size: int = 100
    timeout_seconds: float = 30.0


def airflow_config(settings: Settings) -> AirflowConfig:
    """``[collectors.airflow]`` checked: ConfigError naming the key and what to write."""
    label, where = settings.config_label, "collectors.airflow"
    table = require_table(settings.section("collectors").get("airflow", {}), label, where)
    unknown = sorted(set(table) - set(AIRFLOW_KEYS) - {"enabled", "cron"})
    if unknown:
        raise ConfigError(f"{label}: [{where}] unknown key {unknown[0]!r}; known keys: {', '.join(sorted(AIRFLOW_KEYS))}, enabled, cron")
    mwaa = opt(table, "mwaa_environment", str, label, where)
    url = opt(table, "url", str, label, where)
    if mwaa and url:
        raise ConfigError(f"{label}: [{where}] set either url (a self-managed Airflow) or mwaa_environment (Amazon MWAA), not both")
    if not mwaa and not url:
        raise ConfigError(f"{label}: [{where}] url is required (e.g. url = \"http://airflow:8080\"), or mwaa_environment for Amazon MWAA")
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"{label}: [{where}] url: expected an http:// or https:// URL, got {url!r}")
    api = opt(table, "api", str, label, where, default="v2")
    if api not in {"v1", "v2"}:
        raise ConfigError(f"{label}: [{where}] api: expected \"v2\" (Airflow 3) or \"v1\" (Airflow 2.x), got {api!r}")
    auth = opt(table, "auth", str, label, where, default="mwaa" if mwaa else ("token" if api == "v2" else "basic"))
    if mwaa:
        if auth != "mwaa":
            raise ConfigError(f"{label}: [{where}] auth: an MWAA environment authenticates through AWS (auth = \"mwaa\"), got {auth!r}")
    elif auth not in {"token", "basic", "none"}:
        raise ConfigError(f"{label}: [{where}] auth: expected \"token\", \"basic\" or \"none\", got {auth!r}")
    username = opt(table, "username", str, label, where)
    password_env = opt(table, "password_env", str, label, where)
    if auth in {"token", "basic"} and not (username and password_env):
        raise ConfigError(f"{label}: [{where}] auth = {auth!r} needs username and password_env (a PIPEPULSE_* variable holding the password)")
    dags = opt(table, "dags", list, label, where, default=[])
    if not all(isinstance(d, str) and d for d in dags):
        raise ConfigError(f"{label}: [{where}] dags: expected a list of DAG ids, got {dags!r}")
    numbers: dict[str, Any] = {}
    for key, default, kinds in (("lookback_days", 30, int), ("reread_minutes", 60, int), ("page_size", 100, int),
                                ("timeout_seconds", 30.0, (int, float))):
        value = opt(table, key, kinds, label, where, default=default)
        if value <= 0:
            raise ConfigError(f"{label}: [{where}] {key}: expected a positive number, got {value}")
        numbers[key] = value
    return AirflowConfig(url=url.rstrip("/") if url else None, api=api, auth=auth, username=username, password_env=password_env,
                         mwaa_environment=mwaa, dags=tuple(dags), lookback_days=numbers["lookback_days"],
                         reread_minutes=numbers["reread_minutes"], page_size=numbers["page_size"],
                         timeout_seconds=float(numbers["timeout_seconds"]))


# ---- the config's shape: every table and every key, declared once ----------------------------
#
# To add a key: add its name to its table below (and parse it where the area parses its table,
# with ``opt``). ``load_settings`` refuses any table or key not declared here, naming the file,
# the line and the closest declared name, so a typo never silently drops a setting. A value is
# ``VALUE``; a table is a dict; an array of tables (``[[pipelines]]``) is a one-element list;
# ``NAMES`` is a table whose keys the user chooses (pipeline names, metric names).
VALUE = None
NAMES = "names"

_COLLECTOR_COMMON = {"enabled": VALUE, "cron": VALUE}


def _source(*keys: str, **tables: Any) -> dict[str, Any]:
    return {**_COLLECTOR_COMMON, **dict.fromkeys(keys, VALUE), **tables}


CONFIG_KEYS: dict[str, Any] = {
    "pipepulse": dict.fromkeys(("data_dir", "log_level", "log_format", "dashboard_url", "cost_tag_key", "currency"), VALUE),
    "database": {"url": VALUE},
    "aws": {**dict.fromkeys(("endpoint_url", "region", "regions", "local"), VALUE),
            "accounts": [dict.fromkeys(("role_arn", "external_id", "name"), VALUE)]},
    "budgets": {"monthly": VALUE, "pipelines": NAMES},
    "pipelines": [dict.fromkeys(("name", "source", "schedule", "interval_minutes", "freshness_sla_minutes", "owner",
                                 "cost_tag", "resource"), VALUE)],
    "prices": dict.fromkeys((f.name for f in fields(Prices)), VALUE),
    # collectors/runner.py SOURCES names the sources (tests/pipepulse/test_config_keys.py compares)
    "collectors": {
        "sources": VALUE,
        "read_timeout_seconds": VALUE,
        "reference": _source("ledger_path", "max_changes"),
        "stepfunctions": _source("state_machines", "lookback_days", "max_history_pages", "history_page_size",
                             "express_log_pages"),
        "glue": _source("jobs", "lookback_days"),
        "cloudwatch": _source("period_seconds", "namespaces", "stats", "lookback_hours", "overlap_minutes",
                              "max_window_hours",
                              queries=[{**dict.fromkeys(("namespace", "metric", "stat", "period_seconds"), VALUE),
                                        "dimensions": NAMES}]),
        "logs": _source("max_events_per_run", "max_runs", "max_pages_per_run", "lookback_days", "reread_minutes", "max_functions",
                        "max_pages_per_function", "glue_groups", "lambda_discover", log_groups=NAMES,
                        lambda_functions=NAMES),
        "ce": _source("backfill_days", "restate_days", "tag_key", "forecast", "forecast_level"),
        "focus": _source("paths", "tag_key"),
        "cur": _source("paths", "tag_key"),
        "athena": _source("database", "table", "workgroup", "output_location", "format", "catalog", "tag_key",
                          "backfill_months", "partition_filter", "poll_seconds", "timeout_seconds"),
        "airflow": _source(*AIRFLOW_KEYS),
    },
    # one key per job of jobs/registry.py JOBS (tests/pipepulse/test_config_keys.py compares)
    "schedule": dict.fromkeys(("lock_ttl_minutes", "detect", "forecast", "digest_daily", "digest_weekly", "retention",
                                 "alerts_immediate", "backup"), VALUE),
    # <table>_days for each of store/retention.py PRUNABLE (tests/pipepulse/test_config_keys.py compares)
    "retention": dict.fromkeys(("batch_size", "metric_points_days", "run_logs_days", "run_steps_days",
                                "collector_runs_days", "notifications_days"), VALUE),
    # the fields of jobs/detect.py AnomalySettings (tests/pipepulse/test_config_keys.py compares)
    "anomalies": {
        **dict.fromkeys(("sensitivity", "metric_sensitivity", "lookback_days", "runs_lookback_days", "cost_lookback_days",
                         "cost_floor_usd", "cost_rel_floor", "duration_floor_seconds", "throughput_floor_records",
                         "failure_rate_floor", "rejected_rate_floor", "metric_rel_floor"), VALUE),
        "metric_floors": NAMES,
        "planned": [dict.fromkeys(("subject", "start", "end"), VALUE)],
    },
    "forecast": dict.fromkeys(("level", "horizon_days", "history_days", "settle_days"), VALUE),
    "pipeline": dict.fromkeys(("ledger_path", "source", "output", "quarantine", "export_bucket", "max_attempts",
                               "stage_timeout_seconds", "poll_seconds", "sample_every_hours"), VALUE),
    "alerts": {
        **dict.fromkeys(("channel", "sender", "suppression_hours", "send_all_clear"), VALUE),
        "smtp": dict.fromkeys(("host", "port", "security", "username", "password", "password_file", "password_env",
                               "ca_file", "timeout_seconds"), VALUE),
        "ses": dict.fromkeys(("region", "configuration_set"), VALUE),
        # each kind accepts a subset (pipepulse/alert_rules.py _KIND_OPTIONS); this is their union
        "rules": [dict.fromkeys(("name", "kind", "recipients", "frequency", "pipelines", "suppression_hours", "threshold",
                                 "window_hours", "min_severity", "tolerance", "min_failures"), VALUE)],
    },
    "backup": dict.fromkeys(("dir", "keep"), VALUE),
    "metrics": dict.fromkeys(("host", "port"), VALUE),
    # [notify.<name>]: the name is the user's; each table takes _NOTIFY_KEYS
    "notify": NAMES,
    "dashboard": dict.fromkeys(("refresh_seconds", "default_range", "title", "auth", "allowed_hosts", "trusted_proxies"),
                               VALUE),
}


def _spec(path: str) -> Any:
    spec: Any = CONFIG_KEYS
    for part in path.split("."):
        if isinstance(spec, list):
            spec = spec[0]
        spec = spec[part]
    return spec[0] if isinstance(spec, list) else spec


def known_keys(path: str) -> frozenset[str]:
    """The declared keys of the table at dotted ``path`` (``"collectors.ce"``; ``"pipelines"``
    for each ``[[pipelines]]`` table)."""
    return frozenset(_spec(path))


def check_keys(table: Mapping[str, Any], path: str, label: str, *, known: set[str] | frozenset[str] | None = None,
               where: str | None = None) -> None:
    """ConfigError for the first key of ``table`` not declared for ``path`` (or not in ``known``),
    naming the closest declared one."""
    allowed = known_keys(path) if known is None else known
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{label}: [{where or path}] {key}: unknown key; {_hint(key, allowed)}")


def check_config(raw: Mapping[str, Any], label: str, text: str | None = None) -> None:
    """ConfigError for the first table or key of ``raw`` that ``CONFIG_KEYS`` does not declare:
    ``file:line: [budgets] montly: unknown key; did you mean monthly?`` (``text``, the file's
    contents, gives the line). Values are checked by each area's parser, not here."""
    problems: list[tuple[int, str]] = []
    headers = _headers(text or "")
    for key, value in raw.items():
        if key in CONFIG_KEYS:
            _walk(value, CONFIG_KEYS[key], key, headers, problems)
        elif isinstance(value, Mapping | list) and not _is_value_list(value):
            line = _line(headers, key, None)
            best = _closest(key, CONFIG_KEYS)
            shown = _table_shown(headers, key)
            hint = f"did you mean [{best}{shown[len(key):]}]?" if best else _hint(key, CONFIG_KEYS, "tables")
            problems.append((line, f"[{shown}]: unknown table; {hint}"))
        else:
            line = _line(headers, "", key)
            where = [(t, k) for t, spec in CONFIG_KEYS.items() if isinstance(spec, dict) for k in spec if spec[k] is VALUE]
            best = _closest(key, [k for _, k in where])
            table = next((t for t, k in where if k == best), None)
            hint = f"did you mean [{table}] {best}?" if best else "keys belong in a table such as [pipepulse]"
            problems.append((line, f"{key}: unknown key outside any table; {hint}"))
    if problems:
        problems.sort(key=lambda p: p[0] or 10**9)
        line, message = problems[0]
        more = f" (and {len(problems) - 1} more unknown names)" if len(problems) > 1 else ""
        raise ConfigError(f"{label}{f':{line}' if line else ''}: {message}{more}")


def _walk(value: Any, spec: Any, path: str, headers: list[tuple[int, str, str | None]], problems: list[tuple[int, str]]) -> None:
    if spec is VALUE or spec == NAMES:
        return
    if isinstance(spec, list):
        for item in value if isinstance(value, list) else []:
            _walk(item, spec[0], path, headers, problems)
        return
    if not isinstance(value, Mapping):
        return  # the area's parser says "must be a table"
    for key, sub in value.items():
        if key in spec:
            _walk(sub, spec[key], f"{path}.{key}", headers, problems)
            continue
        if isinstance(sub, Mapping) or (isinstance(sub, list) and sub and not _is_value_list(sub)):
            full = f"{path}.{key}"
            tables = [k for k, v in spec.items() if v is not VALUE]
            best = _closest(key, tables)
            hint = f"did you mean [{path}.{best}]?" if best else _hint(key, tables, "tables")
            problems.append((_line(headers, full, None), f"[{_table_shown(headers, full)}]: unknown table; {hint}"))
        else:
            problems.append((_line(headers, path, key), f"[{path}] {key}: unknown key; {_hint(key, spec)}"))


def _is_value_list(value: Any) -> bool:
    return isinstance(value, list) and not any(isinstance(v, Mapping) for v in value)


def _closest(key: str, names: Any) -> str | None:
    found = difflib.get_close_matches(key, list(names), n=1, cutoff=0.6)
    return found[0] if found else None


def _hint(key: str, known: Any, noun: str = "keys") -> str:
    best = _closest(key, known)
    return f"did you mean {best}?" if best else f"known {noun}: {', '.join(sorted(known))}"


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*[\"']?([A-Za-z0-9_-]+)[\"']?\s*[.=]")


def _headers(text: str) -> list[tuple[int, str, str | None]]:
    """Per line of ``text`` that opens a table or sets a key: (line number, the dotted table it
    is in, the key or None for a header)."""
    out: list[tuple[int, str, str | None]] = []
    table = ""
    for n, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m:
            table = ".".join(p.strip().strip("\"'") for p in m.group(1).split("."))
            out.append((n, table, None))
            continue
        k = _KEY.match(line)
        if k:
            out.append((n, table, k.group(1)))
    return out


def _table_shown(headers: list[tuple[int, str, str | None]], path: str) -> str:
    """The header as written that opened ``path`` (``collector.ce`` for the table ``collector``)."""
    return next((h for _, h, k in headers if k is None and (h == path or h.startswith(path + "."))), path)


def _line(headers: list[tuple[int, str, str | None]], table: str, key: str | None) -> int:
    """The line of ``key`` in ``table`` (or of the table's header when ``key`` is None); 0 when unknown."""
    for n, h, k in headers:
        if key is None and k is None and (h == table or h.startswith(table + ".")):
            return n
        if key is not None and k == key and h == table:
            return n
    return 0


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        return None
