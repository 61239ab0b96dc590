from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from cli.health import HealthError, check_health
from pipepulse.settings import Settings


@pytest.fixture
def http_status():
    """A local HTTP server answering GET with the status in ``box[0]``; yields (url, box)."""
    box = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(box[0])
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/_stcore/health", box
    server.shutdown()
    server.server_close()


def test_healthy_database_and_url(db_url, http_status):
    url, _ = http_status
    settings = Settings(database_url=db_url, data_dir=Path("."))
    lines = check_health(settings, url=url)
    assert lines[0].endswith(": reachable, schema current")
    assert lines[1] == f"{url}: HTTP 200"


def test_unhealthy_when_the_url_fails(db_url, http_status):
    url, box = http_status
    box[0] = 503
    settings = Settings(database_url=db_url, data_dir=Path("."))
    with pytest.raises(HealthError, match=f"unhealthy: {url} answered HTTP 503"):
        check_health(settings, url=url)


def test_unhealthy_before_the_schema_exists(tmp_path):
    # an empty database (the migrate step has not run): never touch the shared test databases' schema
    from store.db import connect

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    connect(url).dispose()
    settings = Settings(database_url=url, data_dir=tmp_path)
    with pytest.raises(HealthError, match=r"unhealthy: .*schema revision \(empty\).*run `pipepulse db upgrade`"):
        check_health(settings)
