"""A real Apache Airflow 3 for the tests and the demo's recording, started from ``.venv-airflow``.

Airflow pins versions that conflict with ours (SQLAlchemy and more), so it lives in a venv of
its own (``make airflow`` builds it) and runs as subprocesses: ``airflow standalone`` (API
server, scheduler, DAG processor, triggerer) on SQLite in a temporary ``AIRFLOW_HOME``, on a
free loopback port, with one user whose password this module writes (Airflow's simple auth
manager; the REST API then wants a token from ``POST /auth/token``, as a real deployment does).

``AirflowServer(venv, dags_folder).start()`` waits (bounded) until the API answers and every
DAG is parsed; ``trigger(dag_id)`` starts a run through the REST API; ``wait(runs)`` polls until
they end; ``stop()`` ends the process group it started, and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["AIRFLOW_VENV", "AirflowServer", "AirflowUnavailable", "free_port"]

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_VENV = ROOT / ".venv-airflow"
USER, PASSWORD = "pipepulse", "pipepulse-test-password"


class AirflowUnavailable(RuntimeError):
    """Airflow is not installed, or did not come up in time (the message says why)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AirflowServer:
    """One ``airflow standalone`` on SQLite, for as long as a test session or a recording."""

    def __init__(self, venv: Path = AIRFLOW_VENV, dags_folder: Path | None = None, *, home: Path | None = None) -> None:
        self.venv = Path(venv)
        self.dags_folder = Path(dags_folder or ROOT / "tests" / "airflow_dags")
        self._own_home = home is None
        self.home = Path(home or tempfile.mkdtemp(prefix="pp-airflow-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._token: str | None = None
        self.log_path = self.home / "standalone.log"

    # ---- life ----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({USER: PASSWORD}))
        env.update({
            # standalone starts its parts as `airflow ...` from PATH
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "NO_PROXY": "*",
            "no_proxy": "*",
        })
        return env

    def start(self, *, timeout: float = 180.0, dag_ids: tuple[str, ...] = ()) -> AirflowServer:
        """Start ``airflow standalone``; wait until the API answers and ``dag_ids`` are parsed."""
        airflow = self.venv / "bin" / "airflow"
        if not airflow.exists():
            raise AirflowUnavailable(f"{airflow} is missing: run `make airflow` (Airflow lives in its own venv)")
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen([str(airflow), "standalone"], env=self.env(), cwd=self.home, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AirflowUnavailable(f"airflow standalone exited with {self.proc.returncode}: {self.tail()}")
            try:
                self.token()
                break
            except (OSError, urllib.error.URLError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise AirflowUnavailable(f"the Airflow API did not answer within {timeout:.0f} s: {self.tail()}")
            time.sleep(1)
        for dag_id in dag_ids:
            while True:
                try:
                    self.api("GET", f"/dags/{dag_id}")
                    break
                except urllib.error.HTTPError as exc:
                    if exc.code != 404:
                        raise
                if time.monotonic() > deadline:
                    raise AirflowUnavailable(f"DAG {dag_id} was not parsed within {timeout:.0f} s: {self.tail()}")
                time.sleep(1)
        return self

    def stop(self) -> None:
        """End the process group this server started; remove its home when it made one."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.proc = None
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    # ---- the REST API --------------------------------------------------------------------

    def token(self) -> str:
        if self._token is None:
            req = urllib.request.Request(f"{self.url}/auth/token", data=json.dumps({"username": USER, "password": PASSWORD}).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                self._token = json.loads(resp.read())["access_token"]
        return self._token

    def api(self, method: str, path: str, body: Any = None, *, raw_path: bool = False) -> Any:
        url = (self.url if raw_path else f"{self.url}/api/v2") + path
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.token()}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def trigger(self, dag_id: str, run_id: str | None = None) -> str:
        """Start a run of ``dag_id`` now; returns its run id."""
        body: dict[str, Any] = {"logical_date": None}
        if run_id:
            body["dag_run_id"] = run_id
        return str(self.api("POST", f"/dags/{dag_id}/dagRuns", body)["dag_run_id"])

    def wait(self, runs: list[tuple[str, str]], *, timeout: float = 150.0) -> dict[tuple[str, str], str]:
        """Poll until every (dag_id, run_id) has ended; their final states."""
        deadline = time.monotonic() + timeout
        states: dict[tuple[str, str], str] = {}
        while True:
            for dag_id, run_id in runs:
                if (dag_id, run_id) not in states:
                    state = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
                    if state in ("success", "failed"):
                        states[(dag_id, run_id)] = state
            if len(states) == len(runs):
                return states
            if time.monotonic() > deadline:
                left = [r for r in runs if r not in states]
                raise AirflowUnavailable(f"runs {left} did not end within {timeout:.0f} s: {self.tail()}")
            time.sleep(1)
