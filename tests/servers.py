"""Servers the tests start as subprocesses: ``pipepulse dashboard serve`` (browser and security
tests), and a free local port for them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "examples" / "demo.toml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``pipepulse dashboard serve`` as a subprocess, up once /_stcore/health answers."""

    def __init__(self, db_url: str, *, cwd: Path, args: tuple[str, ...] = (), secrets: Path | None = None,
                 config: Path = DEMO_CONFIG, address: str = "127.0.0.1"):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.db_url = db_url
        cmd = [sys.executable, "-m", "cli", "--config", str(config), "dashboard", "serve",
               "--address", address, "--port", str(self.port), *args]
        if secrets:
            cmd += ["--secrets", str(secrets)]
        env = {**os.environ, "PIPEPULSE_DATABASE_URL": db_url, "PIPEPULSE_LOG_FORMAT": "text", "HOME": str(cwd)}
        self.log = cwd / f"server-{self.port}.log"
        # a session of its own, so stop() can end the served child with it
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"dashboard exited with {self.proc.returncode}: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.base + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.25)
        raise AssertionError(f"dashboard did not answer in 90 s: {self.log.read_text()}")

    def stop(self) -> None:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        # uvicorn waits for open websockets to close; the tests are done with them
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.stop_seconds = time.monotonic() - t0
