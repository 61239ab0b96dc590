"""Record a real Airflow's REST answers once, for the demo's Airflow pipeline.

``python -m devkit.record_airflow [--rounds 3] [--out devkit/airflow_recording.json]`` starts a
real Airflow 3 from ``.venv-airflow`` (``make airflow``; devkit/airflowserver.py), triggers every
DAG of tests/airflow_dags/ ``rounds`` times (one round after the other, so durations vary as
real ones do), waits for the runs, and writes what Airflow's REST API answered for them: per DAG
its ``/tasks`` and ``/details``, per run the DAG run, its task instances and, for a task tried
more than once, its ``/tries``. devkit/airflow_replay.py serves that file to the collector in
the demo build, re-dated to end now. Nothing in the file is made up: edit the DAGs and record
again rather than editing it.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devkit.airflowserver import AirflowServer

__all__ = ["DAGS", "RECORDING", "record"]

RECORDING = Path(__file__).resolve().parent / "airflow_recording.json"
DAGS = ("pp_success", "pp_fail", "pp_retry", "pp_timeout", "pp_mapped")


def record(server: AirflowServer, *, rounds: int) -> dict[str, Any]:
    """Trigger each DAG ``rounds`` times and read back every answer the collector asks for."""
    triggered: list[tuple[str, str]] = []
    for _ in range(rounds):
        batch = [(dag, server.trigger(dag)) for dag in DAGS]
        server.wait(batch, timeout=240)
        triggered.extend(batch)
    version = server.api("GET", "/version")
    out: dict[str, Any] = {"airflow_version": version.get("version"), "recorded_at": datetime.now(UTC).isoformat(),
                           "api": "v2", "dags": {}, "runs": []}
    for dag in DAGS:
        out["dags"][dag] = {"tasks": server.api("GET", f"/dags/{dag}/tasks"), "details": server.api("GET", f"/dags/{dag}/details")}
    for dag, run_id in triggered:
        run = server.api("GET", f"/dags/{dag}/dagRuns/{run_id}")
        instances = server.api("GET", f"/dags/{dag}/dagRuns/{run_id}/taskInstances?limit=100")
        tries: dict[str, Any] = {}
        for ti in instances["task_instances"]:
            if (ti.get("try_number") or 0) > 1:
                suffix = f"/{ti['map_index']}" if ti.get("map_index", -1) >= 0 else ""
                tries[f"{ti['task_id']}{suffix}"] = server.api("GET", f"/dags/{dag}/dagRuns/{run_id}/taskInstances/{ti['task_id']}{suffix}/tries")
        out["runs"].append({"run": run, "task_instances": instances, "tries": tries})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RECORDING)
    args = parser.parse_args(argv)
    server = AirflowServer()
    try:
        server.start(dag_ids=DAGS)
        data = record(server, rounds=args.rounds)
    finally:
        server.stop()
    args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(data['runs'])} runs of {len(data['dags'])} DAGs from Airflow {data['airflow_version']} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
