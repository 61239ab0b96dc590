"""Shared fixtures: databases (SQLite and PostgreSQL), a local AWS over HTTP, a fixed clock.

The clock (``now``) is ``clocks.FIXED_NOW``, or ``clocks.AWS_NOW`` for a test marked ``aws_clock``
(it sends times that AWS checks against its own clock; see ``tests/clocks.py``). The local AWS
refuses PutMetricData datums outside AWS's window, as AWS does and moto does not.

Which databases the storage-touching tests run on comes from ``PIPEPULSE_TEST_DBS``
(comma-separated: ``sqlite``, ``postgresql``; default ``sqlite``). ``.ci/run`` sets both, so
every test that takes ``engine`` or ``db_url`` runs once per database.
PostgreSQL is reached at ``PIPEPULSE_TEST_PG_URL`` (default the local ``test`` database); each
session works in a database of its own, dropped at the end.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from clocks import AWS_NOW, FIXED_NOW

from pipepulse.settings import load_settings
from store.db import MIGRATIONS, connect, upgrade
from store.schema import metadata

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TEST_DBS = [d.strip() for d in os.environ.get("PIPEPULSE_TEST_DBS", "sqlite").split(",") if d.strip()]
PG_ADMIN_URL = os.environ.get("PIPEPULSE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()


def pytest_configure(config):
    unknown = set(TEST_DBS) - {"sqlite", "postgresql"}
    if unknown:
        raise pytest.UsageError(f"PIPEPULSE_TEST_DBS: unknown database(s) {sorted(unknown)}; use sqlite, postgresql")
    from faults.faulttable import (
        FaultTablePlugin,  # the fault suite's table, printed at the end (also under xdist)
    )

    config.pluginmanager.register(FaultTablePlugin(), "pipepulse-fault-table")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout (real third-party data and tools)."""
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the tests read real data from ../shared/data")
    return SHARED


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = connect(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[str]:
    name = f"pp_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = connect(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=TEST_DBS)
def db_url(request, tmp_path) -> str:
    """URL of an empty, migrated database; one test per database in PIPEPULSE_TEST_DBS."""
    if request.param == "sqlite":
        path = tmp_path / "pipepulse.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("_pg_database")
    engine = sa.create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        # a test may have moved the schema revision (e.g. to one "newer than the code")
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :head"), {"head": _HEAD})
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url) -> Iterator[sa.Engine]:
    eng = connect(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def now(request) -> datetime:
    """The injected clock: a fixed moment, so results are exact. ``AWS_NOW`` (yesterday noon) for
    a test marked ``aws_clock``, ``FIXED_NOW`` (2026-11-20 12:00 UTC) for every other."""
    return AWS_NOW if request.node.get_closest_marker("aws_clock") else FIXED_NOW


# PutMetricData: AWS refuses the whole call when a datum is more than two weeks old or more than
# two hours ahead of its clock; moto 5.2.5 takes any time (../shared/notes/aws-emulation.md).
METRIC_MAX_AGE = timedelta(days=14)
METRIC_MAX_AHEAD = timedelta(hours=2)


@pytest.fixture(scope="session", autouse=True)
def _metric_timestamps_checked_like_aws():
    """Every local AWS of the session (the fixture's, and those a command starts in-process)
    refuses PutMetricData datums outside AWS's window, with AWS's error."""
    from moto.cloudwatch.exceptions import InvalidParameterValue
    from moto.cloudwatch.models import CloudWatchBackend

    put = CloudWatchBackend.put_metric_data

    def checked(self, namespace, metric_data):
        wall = datetime.now(UTC).replace(tzinfo=None)  # moto parses Timestamp as naive UTC
        for i, datum in enumerate(metric_data, 1):
            ts = datum.get("Timestamp")
            if ts is None:
                continue
            if ts < wall - METRIC_MAX_AGE:
                raise InvalidParameterValue(f"The parameter MetricData.member.{i}.Timestamp must specify a time within the past two weeks.")
            if ts > wall + METRIC_MAX_AHEAD:
                raise InvalidParameterValue(f"The parameter MetricData.member.{i}.Timestamp must specify a time no more than two hours in the future.")
        return put(self, namespace, metric_data)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CloudWatchBackend, "put_metric_data", checked)
        yield


@pytest.fixture
def make_settings(tmp_path, db_url):
    """``make_settings(toml_text)`` -> Settings on the test database and a temp data folder."""

    def build(text: str = "", **env: str):
        path = tmp_path / "pipepulse.toml"
        path.write_text(text)
        base_env = {"PIPEPULSE_DATABASE_URL": db_url, "PIPEPULSE_DATA_DIR": str(tmp_path / "data")}
        base_env.update(env)
        return load_settings(base_env, config_path=path)

    return build


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    # a rebinding attacker's name and a proxy's public name, both answering with 127.0.0.1
    # (tests/security); harmless for the other browser tests
    "--host-resolver-rules=MAP attacker.example 127.0.0.1, MAP dash.example.com 127.0.0.1",
]


def require_browser() -> None:
    """Skip (or, with ``PIPEPULSE_REQUIRE_BROWSER=1`` as in CI, fail) when Chromium is missing."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("PIPEPULSE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{CHROMIUM} is missing and PIPEPULSE_REQUIRE_BROWSER=1: install Debian's chromium", pytrace=False)
        pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium to run the browser tests)")


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium per test process. Playwright's sync API runs its event loop on the
    calling thread, so two ``sync_playwright()`` blocks open at once in one process fail ("using
    Playwright Sync API inside the asyncio loop"): every browser test shares this one."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def local_aws():
    """One local AWS server (moto + stand-ins) for the session, over real HTTP."""
    from devkit.localaws import LocalAWS

    server = LocalAWS().start()
    yield server
    server.stop()


@pytest.fixture
def aws(local_aws, monkeypatch):
    """A clean local AWS for one test, with boto3 pointed at it through the environment."""
    local_aws.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_aws.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("MOTO_PORT", str(local_aws.port))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return local_aws
