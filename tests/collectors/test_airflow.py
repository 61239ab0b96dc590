"""The Airflow collector against a real Airflow 3 (``make airflow``), directly and through MWAA.

One ``airflow standalone`` per session (devkit/airflowserver.py, SQLite, a free port) runs the
DAGs of tests/airflow_dags/ once each, triggered through the REST API; the tests then read them
as a user would: runs, every try, durations, timeouts, mapped tasks, what a second pass reads.
MWAA's boto3 calls go to the local AWS, whose MWAA stand-in forwards them to that same Airflow.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import sqlalchemy as sa
from botocore.config import Config
from botocore.exceptions import ClientError

from collectors import runner
from devkit.airflowserver import PASSWORD, USER, AirflowServer, AirflowUnavailable
from pipepulse.errors import ConfigError
from pipepulse.settings import airflow_config
from pipepulse.vocab import FAILED, RUNNING, SUCCEEDED, TIMED_OUT
from store.schema import collector_runs, run_steps, runs

DAGS = ("pp_success", "pp_fail", "pp_retry", "pp_timeout", "pp_mapped")
ENV = {"PIPEPULSE_AIRFLOW_PASSWORD": PASSWORD}


@pytest.fixture(scope="session")
def airflow():
    """A real Airflow with one finished run of each test DAG: (server, {dag_id: run_id})."""
    server = AirflowServer()
    try:
        server.start(dag_ids=DAGS)
        triggered = {dag: server.trigger(dag) for dag in DAGS}
        states = server.wait(list(triggered.items()))
    except AirflowUnavailable as exc:
        server.stop()
        pytest.fail(f"no real Airflow for the Airflow tests: {exc}")
    assert states == {("pp_success", triggered["pp_success"]): "success", ("pp_fail", triggered["pp_fail"]): "failed",
                      ("pp_retry", triggered["pp_retry"]): "success", ("pp_timeout", triggered["pp_timeout"]): "failed",
                      ("pp_mapped", triggered["pp_mapped"]): "success"}
    yield server, triggered
    server.stop()


def _config(url: str, extra: str = "") -> str:
    return f"""
[collectors.airflow]
url = "{url}"
username = "{USER}"
password_env = "PIPEPULSE_AIRFLOW_PASSWORD"
dags = {json.dumps(list(DAGS))}
{extra}

[[pipelines]]
name = "nightly-orders"
source = "airflow"
resource = "pp_success"
"""


def _runs(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r["run_id"]: dict(r) for r in conn.execute(sa.select(runs).where(runs.c.source == "airflow")).mappings()}


def _steps(engine, run_id: str) -> list[tuple]:
    cols = (run_steps.c.stage, run_steps.c.attempt, run_steps.c.status, run_steps.c.error_type, run_steps.c.map_index)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(*cols).where(run_steps.c.run_id == run_id).order_by(run_steps.c.stage, run_steps.c.attempt))]


def _check_runs(engine, triggered) -> None:
    stored = _runs(engine)
    rid = {dag: f"airflow:{dag}:{run}" for dag, run in triggered.items()}
    assert set(rid.values()) <= set(stored)
    ok, fail, retry, slow, mapped = (stored[rid[d]] for d in DAGS)
    assert (ok["pipeline"], ok["status"], ok["trigger"], ok["retries"]) == ("nightly-orders", SUCCEEDED, "manual", 0)
    assert (fail["pipeline"], fail["status"], fail["error_type"], fail["error_message"]) == ("pp_fail", FAILED, "TaskFailed", "failed tasks: transform")
    assert (retry["status"], retry["retries"]) == (SUCCEEDED, 1)
    assert (slow["status"], slow["error_type"], slow["error_message"]) == (TIMED_OUT, "AirflowTaskTimeout", "task timed out: slow")
    assert mapped["status"] == SUCCEEDED
    for run in (ok, fail, retry, slow, mapped):
        assert run["duration_seconds"] == pytest.approx((run["ended_at"] - run["started_at"]).total_seconds())
        assert 0 < run["duration_seconds"] < 120


def test_reads_runs_and_every_try_from_a_real_airflow(airflow, make_settings, engine):
    server, triggered = airflow
    settings = make_settings(_config(server.url), **ENV)
    result = runner.run_source(settings, engine, "airflow", now=datetime.now(UTC))
    assert result.ok, result.error
    _check_runs(engine, triggered)
    assert _steps(engine, f"airflow:pp_success:{triggered['pp_success']}") == [
        ("extract", 1, SUCCEEDED, None, None), ("load", 1, SUCCEEDED, None, None)]
    assert _steps(engine, f"airflow:pp_fail:{triggered['pp_fail']}") == [
        ("prepare", 1, SUCCEEDED, None, None), ("transform", 1, FAILED, "TaskFailed", None)]
    retry = _steps(engine, f"airflow:pp_retry:{triggered['pp_retry']}")
    assert [(s[0], s[1], s[2]) for s in retry] == [("flaky", 1, FAILED), ("flaky", 2, SUCCEEDED)]  # Airflow 3 keeps the failed try as failed
    assert _steps(engine, f"airflow:pp_timeout:{triggered['pp_timeout']}") == [("slow", 1, TIMED_OUT, "AirflowTaskTimeout", None)]
    assert _steps(engine, f"airflow:pp_mapped:{triggered['pp_mapped']}") == [
        ("parts", 1, SUCCEEDED, None, None), ("square[0]", 1, SUCCEEDED, None, 0), ("square[1]", 1, SUCCEEDED, None, 1),
        ("square[2]", 1, SUCCEEDED, None, 2)]
    with engine.connect() as conn:
        ops = dict(conn.execute(sa.select(run_steps.c.stage, run_steps.c.operator).where(
            run_steps.c.run_id == f"airflow:pp_mapped:{triggered['pp_mapped']}")).all())
        slow = conn.execute(sa.select(run_steps.c.duration_seconds).where(
            run_steps.c.run_id == f"airflow:pp_timeout:{triggered['pp_timeout']}")).scalar_one()
        recorded = conn.execute(sa.select(collector_runs.c.api_calls, collector_runs.c.details).where(
            collector_runs.c.collector_run_id == result.collector_run_id)).one()
    assert ops["parts"] == ops["square[1]"] == "@task"
    assert 2 <= slow < 10  # execution_timeout is 2 s; the task would sleep 30
    # every HTTP request counted: a token, 3 run lists per DAG, tasks + details per DAG, one
    # task-instance list per run, one try history (pp_retry's flaky)
    assert result.calls == {"airflow-api:CreateToken": 1, "airflow-api:ListDagRuns": 15, "airflow-api:ListTasks": 5,
                            "airflow-api:GetDagDetails": 5, "airflow-api:ListTaskInstances": 5,
                            "airflow-api:ListTaskInstanceTries": 1}
    details = recorded.details if isinstance(recorded.details, dict) else json.loads(recorded.details)
    assert recorded.api_calls == 32 and details["runs"] == 5 and details["tries"] == 11


def test_second_pass_reads_only_what_changed(airflow, make_settings, engine):
    server, triggered = airflow
    settings = make_settings(_config(server.url), **ENV)
    assert runner.run_source(settings, engine, "airflow", now=datetime.now(UTC)).ok
    before = _runs(engine)
    again = runner.run_source(settings, engine, "airflow", now=datetime.now(UTC))
    assert again.ok and again.rows_written == 0
    assert again.calls == {"airflow-api:CreateToken": 1, "airflow-api:ListDagRuns": 15}  # nothing re-read
    # a new run: stored while it runs, then again when it has ended
    new = server.trigger("pp_timeout")
    running = runner.run_source(settings, engine, "airflow", now=datetime.now(UTC))
    assert running.ok
    assert _runs(engine)[f"airflow:pp_timeout:{new}"]["status"] in (RUNNING, "QUEUED")
    server.wait([("pp_timeout", new)])
    done = runner.run_source(settings, engine, "airflow", now=datetime.now(UTC))
    assert done.ok and done.calls["airflow-api:ListTaskInstances"] == 1
    after = _runs(engine)
    assert after[f"airflow:pp_timeout:{new}"]["status"] == TIMED_OUT
    assert {k: v["status"] for k, v in after.items() if k in before} == {k: v["status"] for k, v in before.items()}


def test_wrong_password_is_a_clear_error_and_stores_nothing(airflow, make_settings, engine):
    server, _ = airflow
    settings = make_settings(_config(server.url), PIPEPULSE_AIRFLOW_PASSWORD="not-the-password")
    result = runner.run_source(settings, engine, "airflow", now=datetime.now(UTC))
    assert not result.ok
    assert result.error.endswith("/auth/token: Airflow refused user 'pipepulse' (401); check username and the password in password_env")
    assert _runs(engine) == {}


def test_mwaa_invoke_rest_api_reads_the_same_runs(airflow, aws, make_settings, engine):
    server, triggered = airflow
    aws.app(_mwaa()).register("pp-env", server.url, username=USER, password=PASSWORD)
    text = _config(server.url).replace(f'url = "{server.url}"\nusername = "{USER}"\npassword_env = "PIPEPULSE_AIRFLOW_PASSWORD"',
                                       'mwaa_environment = "pp-env"')
    settings = make_settings(text, AWS_ENDPOINT_URL=aws.endpoint)
    result = runner.run_source(settings, engine, "airflow", now=datetime.now(UTC))
    assert result.ok, result.error
    _check_runs(engine, triggered)
    # boto3 counted every InvokeRestApi; run ids make task-instance paths longer than MWAA's 64
    # characters, so task instances come through the batch list and try histories are skipped
    stand_in = aws.app(_mwaa())
    assert result.calls == {"airflow:InvokeRestApi": stand_in.requests["invoke_rest_api"]}
    assert all(len(p.split(" ", 1)[1]) <= 64 for p in stand_in.paths)
    # one batch list per run stored (other tests of the session may have added runs)
    assert sum(p.startswith("POST /dags/~/dagRuns/~/taskInstances/list") for p in stand_in.paths) == len(_runs(engine))
    retry = _steps(engine, f"airflow:pp_retry:{triggered['pp_retry']}")
    assert [(s[0], s[1], s[2]) for s in retry] == [("flaky", 2, SUCCEEDED)]


def test_mwaa_stand_in_checks_like_mwaa(airflow, aws):
    server, _ = airflow
    aws.app(_mwaa()).register("pp-env", server.url, username=USER, password=PASSWORD)
    mwaa = boto3.client("mwaa", region_name="us-east-1", endpoint_url=aws.endpoint, config=Config(inject_host_prefix=False))
    dags = mwaa.invoke_rest_api(Name="pp-env", Path="/dags", Method="GET", QueryParameters={"dag_id_pattern": "pp_mapped"})
    assert dags["RestApiStatusCode"] == 200 and [d["dag_id"] for d in dags["RestApiResponse"]["dags"]] == ["pp_mapped"]
    with pytest.raises(ClientError) as missing:
        mwaa.invoke_rest_api(Name="pp-env", Path="/dags/no_such_dag", Method="GET")
    assert missing.value.response["Error"]["Code"] == "RestApiClientException"
    assert missing.value.response["RestApiStatusCode"] == 404
    with pytest.raises(ClientError) as long_path:
        mwaa.invoke_rest_api(Name="pp-env", Path="/dags/" + "x" * 60, Method="GET")
    assert long_path.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as unknown:
        mwaa.invoke_rest_api(Name="other-env", Path="/dags", Method="GET")
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFoundException"
    token = mwaa.create_cli_token(Name="pp-env")
    assert token["WebServerHostname"] == f"127.0.0.1:{server.port}" and len(token["CliToken"]) > 20


def _mwaa():
    from devkit.localaws.mwaa import MwaaStandIn

    return MwaaStandIn


class _Canned(BaseHTTPRequestHandler):
    answers: dict[str, object] = {}

    def do_GET(self):  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0]
        body = json.dumps(self.answers.get(path, {"detail": "Not Found"})).encode()
        self.send_response(200 if path in self.answers else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_an_answer_without_its_list_fails_the_pass_and_keeps_the_watermark(make_settings, engine):
    _Canned.answers = {"/api/v2/dags/~/dagRuns": {"total_entries": 3}}  # no "dag_runs"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        settings = make_settings(f'[collectors.airflow]\nurl = "http://127.0.0.1:{httpd.server_port}"\nauth = "none"\n')
        result = runner.run_source(settings, engine, "airflow", now=datetime.now(UTC))
    finally:
        httpd.shutdown()
    assert not result.ok
    assert result.error == "airflow: GET /dags/~/dagRuns: the answer has no 'dag_runs' list (got ['total_entries']); is this Airflow's REST API?"
    assert result.calls == {"airflow-api:ListDagRuns": 1}
    assert _runs(engine) == {}


@pytest.mark.parametrize(("text", "message"), [
    ('url = "http://a:8080"\nmwaa_environment = "e"', "set either url (a self-managed Airflow) or mwaa_environment"),
    ('auth = "none"', "url is required"),
    ('url = "airflow:8080"\nauth = "none"', "url: expected an http:// or https:// URL, got 'airflow:8080'"),
    ('url = "http://a:8080"\napi = "v3"', 'api: expected "v2" (Airflow 3) or "v1" (Airflow 2.x), got \'v3\''),
    ('url = "http://a:8080"', "auth = 'token' needs username and password_env"),
    ('url = "http://a:8080"\nauth = "none"\npage_size = 0', "page_size: expected a positive number, got 0"),
    ('url = "http://a:8080"\nauth = "none"\ndag = ["x"]', "dag: unknown key; did you mean dags?"),  # refused at load
])
def test_config_errors_name_the_key(make_settings, text, message):
    with pytest.raises(ConfigError) as err:
        airflow_config(make_settings(f"[collectors.airflow]\n{text}\n"))
    assert message in str(err.value) and "[collectors.airflow]" in str(err.value)


def test_config_defaults(make_settings):
    cfg = airflow_config(make_settings('[collectors.airflow]\nmwaa_environment = "prod"\n'))
    assert (cfg.api, cfg.auth, cfg.url, cfg.dags, cfg.lookback_days, cfg.reread_minutes, cfg.page_size) == ("v2", "mwaa", None, (), 30, 60, 100)
    v1 = airflow_config(make_settings('[collectors.airflow]\nurl = "http://a:8080/"\napi = "v1"\nusername = "u"\npassword_env = "PIPEPULSE_X"\n'))
    assert (v1.auth, v1.url) == ("basic", "http://a:8080")
