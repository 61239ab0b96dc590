"""The one settings object: built once per entry point, then passed down.

Sources, later ones winning: built-in defaults (which work on a laptop), the TOML config file
(``pipepulse.toml`` in the working directory, or ``PIPEPULSE_CONFIG``), then ``PIPEPULSE_*``
environment variables. No other module reads ``os.environ``.

Areas with their own config section (``[collectors]``, ``[alerts]``, ``[dashboard]``,
``[retention]``) parse it from ``Settings.section(name)`` with the helpers at the bottom of this
module, so every config error names the file, the key and what was expected.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pipepulse.errors import ConfigError
from pipepulse.redact import mask_url

__all__ = [
    "AIRFLOW_KEYS",
    "DEMO_MARKER",
    "AirflowConfig",
    "PipelineConfig",
    "Prices",
    "Settings",
    "airflow_config",
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
    sfn_transition: float = 0.000025
    s3_put_request: float = 0.000005
    s3_get_request: float = 0.0000004
    s3_gb_month: float = 0.023
    cloudwatch_put_metric_request: float = 0.00001
    cloudwatch_logs_gb_ingested: float = 0.50
    ce_request: float = 0.01
    cloudwatch_metrics_requested_per_1000: float = 0.01
    compute_vcpu_hour: float = 0.04048  # Fargate vCPU-hour: the reference pipeline's compute


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


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything an entry point needs (README's configuration table says what each field means)."""

    database_url: str
    data_dir: Path
    config_path: Path | None = None
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    local_aws: bool = True
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
    label = str(path) if path else "(environment)"

    database = require_table(raw.get("database", {}), label, "database")
    aws = require_table(raw.get("aws", {}), label, "aws")
    general = require_table(raw.get("pipepulse", {}), label, "pipepulse")
    budgets = require_table(raw.get("budgets", {}), label, "budgets")

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
    if env.get("PIPEPULSE_BUDGET_MONTHLY"):
        monthly = _float(env["PIPEPULSE_BUDGET_MONTHLY"], "PIPEPULSE_BUDGET_MONTHLY")

    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        config_path=path,
        aws_region=env.get("PIPEPULSE_AWS_REGION") or opt(aws, "region", str, label, "aws") or "us-east-1",
        aws_endpoint_url=endpoint,
        local_aws=local_aws,
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
    )


# ---- helpers for every config section -------------------------------------------------------


def url_problem(url: str) -> str | None:
    """What makes a ``scheme://user:password@host:port/db`` URL unusable, or None (so the error
    is one line that never shows the password; the caller masks the URL)."""
    netloc = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
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
        raise ConfigError(f"config file {path} does not exist; create it or unset PIPEPULSE_CONFIG")
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
        known = {"name", "source", "schedule", "interval_minutes", "freshness_sla_minutes", "owner", "cost_tag", "resource"}
        unknown = sorted(set(item) - known)
        if unknown:
            raise ConfigError(f"{label}: [{where}] unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
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


def _prices(table: Mapping[str, Any], label: str) -> Prices:
    known = {f.name for f in fields(Prices)}
    values: dict[str, float] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{label}: [prices] unknown key {key!r}; known keys: {', '.join(sorted(known))}")
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
