"""Serve a recorded Airflow (devkit/airflow_recording.json) over HTTP, re-dated, for the demo.

The demo's Airflow pipeline goes through the real collector path: ``collectors/airflow.py``
talks HTTP to this server as to Airflow 3's REST API (``POST /auth/token``, then
``/api/v2/...``). The answers are the ones ``devkit/record_airflow.py`` recorded from a real
Airflow, with every time moved so that the recorded rounds repeat once a day over the last
``days`` days ending at ``end`` (round ``i % rounds`` on day ``i``), and each copy's run id
carrying its new date (``manual__<new logical date>``). Nothing else is changed.

Served (what the collector asks): ``GET /api/v2/dags/{dag_id|~}/dagRuns`` with ``end_date_gte``,
``state``, ``limit``, ``offset`` (ordered by end date); ``GET .../dagRuns/{run_id}``;
``.../taskInstances``; ``.../taskInstances/{task_id}[/{map_index}]/tries``;
``/dags/{dag_id}/tasks`` and ``/details``. Anything else answers 404, as Airflow does.
"""

from __future__ import annotations

import copy
import json
import threading
import urllib.parse
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devkit.record_airflow import RECORDING

__all__ = ["AirflowReplay"]

TIME_KEYS = {"start_date", "end_date", "queued_at", "logical_date", "run_after", "data_interval_start", "data_interval_end",
             "last_scheduling_decision", "queued_when", "scheduled_when", "updated_at"}
TOKEN = "replay-token"


def _shift(value: Any, delta: timedelta) -> Any:
    """Every time under a TIME_KEYS key moved by ``delta`` (a copy)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in TIME_KEYS and isinstance(v, str) and "T" in v:
                try:
                    out[k] = (datetime.fromisoformat(v) + delta).isoformat().replace("+00:00", "Z")
                    continue
                except ValueError:
                    pass
            out[k] = _shift(v, delta)
        return out
    if isinstance(value, list):
        return [_shift(v, delta) for v in value]
    return value


class AirflowReplay:
    """The recorded Airflow, re-dated: ``AirflowReplay(end=..., days=14).start()``; ``url``; ``stop()``."""

    def __init__(self, *, end: datetime, days: int = 14, path: Path = RECORDING) -> None:
        data = json.loads(path.read_text())
        self.dags: dict[str, Any] = data["dags"]
        recorded = data["runs"]
        by_dag: dict[str, list[dict[str, Any]]] = {}
        for r in recorded:
            by_dag.setdefault(r["run"]["dag_id"], []).append(r)
        newest = max(datetime.fromisoformat(r["run"]["end_date"]) for r in recorded)
        self.runs: dict[tuple[str, str], dict[str, Any]] = {}
        for dag, rounds in by_dag.items():
            rounds.sort(key=lambda r: r["run"]["start_date"])
            for day in range(days):
                src = rounds[day % len(rounds)]
                delta = (end - timedelta(days=days - 1 - day)) - newest - timedelta(minutes=5)
                run = _shift(src["run"], delta)
                stamp = run.get("logical_date") or run.get("run_after") or run["start_date"]
                run_id = f"{src['run']['dag_run_id'].split('__', 1)[0]}__{stamp}"
                run["dag_run_id"] = run_id
                instances = _shift(src["task_instances"], delta)
                for ti in instances["task_instances"]:
                    ti["dag_run_id"] = run_id
                tries = {}
                for key, answer in src["tries"].items():
                    shifted = _shift(answer, delta)
                    for t in shifted["task_instances"]:
                        t["dag_run_id"] = run_id
                    tries[key] = shifted
                self.runs[(dag, run_id)] = {"run": run, "task_instances": instances, "tries": tries}
        self._server: ThreadingHTTPServer | None = None
        self.requests = 0

    # ---- answers -------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if method == "POST" and path == "/auth/token":
            return 201, {"access_token": TOKEN}
        if method != "GET" or not path.startswith("/api/v2/dags/"):
            return 404, {"detail": "Not Found"}
        parts = [urllib.parse.unquote(p) for p in path[len("/api/v2/dags/"):].split("/")]
        dag = parts[0]
        if dag != "~" and dag not in self.dags:
            return 404, {"detail": f"The DAG with dag_id: `{dag}` was not found"}
        if parts[1:] == ["tasks"]:
            return 200, self.dags[dag]["tasks"]
        if parts[1:] == ["details"]:
            return 200, self.dags[dag]["details"]
        if len(parts) >= 2 and parts[1] == "dagRuns":
            if len(parts) == 2:
                return 200, self._list_runs(dag, query)
            rec = self.runs.get((dag, parts[2]))
            if rec is None:
                return 404, {"detail": f"The DagRun with dag_id: `{dag}` and run_id: `{parts[2]}` was not found"}
            if len(parts) == 3:
                return 200, rec["run"]
            if parts[3] == "taskInstances" and len(parts) == 4:
                return 200, _page(rec["task_instances"]["task_instances"], "task_instances", query)
            if parts[3] == "taskInstances" and parts[-1] == "tries":
                key = "/".join(parts[4:-1])
                if key in rec["tries"]:
                    return 200, rec["tries"][key]
        return 404, {"detail": "Not Found"}

    def _list_runs(self, dag: str, query: dict[str, list[str]]) -> dict[str, Any]:
        items = [r["run"] for (d, _), r in self.runs.items() if dag in ("~", d)]
        if "end_date_gte" in query:
            floor = datetime.fromisoformat(query["end_date_gte"][0])
            items = [r for r in items if r.get("end_date") and datetime.fromisoformat(r["end_date"]) >= floor]
        if "state" in query:
            items = [r for r in items if r.get("state") in query["state"]]
        items.sort(key=lambda r: (r.get("end_date") or "", r["dag_run_id"]))
        return _page(items, "dag_runs", query)

    # ---- life ----------------------------------------------------------------------------

    def start(self) -> AirflowReplay:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, method: str) -> None:
                split = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if split.path != "/auth/token" and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    status, body = 401, {"detail": "Not authenticated"}
                else:
                    status, body = replay.answer(method, split.path, urllib.parse.parse_qs(split.query))
                replay.requests += 1
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._reply("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._reply("POST")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="airflow-replay", daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "call start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _page(items: list[Any], key: str, query: dict[str, list[str]]) -> dict[str, Any]:
    limit = int(query.get("limit", ["50"])[0])
    offset = int(query.get("offset", ["0"])[0])
    return {key: copy.deepcopy(items[offset:offset + limit]), "total_entries": len(items)}
