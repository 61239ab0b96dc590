"""The README's shell blocks, run exactly as written (issue #21: "README commands that fail as written").

Every ```sh block of README.md is extracted and each command in it is run with bash, unchanged,
from a scratch copy of the checkout (its top-level entries linked into a temporary folder, with
``../shared`` beside it, as in a fresh clone), a temporary HOME, no ``PIPEPULSE_*`` or AWS
variables of the caller, and ``.venv/bin`` first on PATH, which is what the README's
"``source .venv/bin/activate`` once per shell" does. Only how a command is *started* depends on
its section, never its text:

- ``make demo`` / ``make test`` are not run (minutes); ``make -n`` shows that the target exists and
  what it runs;
- "The demo" runs while a demo is up (``demo up`` with 2 days and a free port, as the README's
  ``make demo`` would be), "Collecting" and "Analysis" with ``AWS_ENDPOINT_URL`` at that demo's
  local AWS and dummy credentials, which is what the README says ``collect`` needs;
- commands that serve forever (``schedule``, ``dashboard serve``) run until a probe sees them up
  (the dashboard's ``/_stcore/health``; the scheduler still running after its first jobs), then get
  SIGTERM and must stop with exit 0; ``dashboard serve`` on its fixed port 8501 runs in a network
  namespace of its own when ``unshare`` allows it, so a dashboard already on 8501 does not matter;
- the PostgreSQL block runs when ``postgresql`` is in ``PIPEPULSE_TEST_DBS`` (with ``pg_dump``);
- "Deploy on AWS" needs a real AWS account and is only checked to be what this file expects.

A block or command this file does not know fails the test, so a new README command gets a test.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TEST_DBS = [d.strip() for d in os.environ.get("PIPEPULSE_TEST_DBS", "sqlite").split(",") if d.strip()]
PG_ADMIN_URL = os.environ.get("PIPEPULSE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# what a command's output must show besides exit 0 (a substring of stdout + stderr)
EXPECT = {
    "costs daily --from today-30 --to today --by service": "total: billed",
    "costs daily --from 2024-09-01 --to 2024-09-30 --by service": "total: billed",
    "costs import ../shared/data/cost/focus-1.0-sample/focus_sample.csv": "rows stored:",
    "schedule --list": "collect",
    "forecast spend.csv": "date,mean,lower,upper,model",
    "db status": "schema:",
    "db backup backups/pipepulse.db": "backups/pipepulse.db",
    "healthcheck": "schema current",
    "digest --dry-run --out digest.html": "digest.html",
}
NEEDS_DEMO = ("The demo", "Collecting", "Analysis")
SERVES_FOREVER = ("pipepulse schedule", "pipepulse dashboard serve")
# refused as written, on purpose: the README shows the options of a deployment whose secrets file
# the reader writes first; what must hold is that it refuses to start without it, in one line
REFUSES = {
    "pipepulse dashboard serve --address 0.0.0.0 --secrets /run/secrets/dashboard.toml": "/run/secrets/dashboard.toml",
}


@dataclass
class Block:
    section: str
    line: int
    commands: list[str]


def readme_blocks(text: str) -> list[Block]:
    """Each ```sh block: its section (the nearest ``##`` heading above), first line, commands
    (backslash continuations joined, blank and comment-only lines left out)."""
    blocks: list[Block] = []
    section = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        if line.strip() == "```sh":
            start = i + 1
            body: list[str] = []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            commands: list[str] = []
            pending = ""
            for raw in body:
                if raw.rstrip().endswith("\\"):
                    pending += raw.rstrip()[:-1] + " "
                    continue
                command = (pending + raw).strip()
                pending = ""
                if command and not command.startswith("#"):
                    commands.append(command)
            blocks.append(Block(section, start + 1, commands))
        i += 1
    return blocks


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh-clone look-alike: the checkout's top-level entries linked, ../shared beside it."""
    shared = ROOT.parent / "shared"
    if not (shared / "data").is_dir():
        pytest.fail(f"{shared} is missing: the README's commands read ../shared/data")
    top = tmp_path_factory.mktemp("readme")
    work = top / "pipepulse"
    work.mkdir()
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in sorted({p.split("/")[0] for p in tracked} | {".venv"}):
        if (ROOT / name).exists():
            (work / name).symlink_to(ROOT / name)
    (top / "shared").symlink_to(shared)
    (top / "home").mkdir()
    return work


def _env(clone: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPEPULSE_", "AWS_"))}
    env.update(
        HOME=str(clone.parent / "home"),
        PATH=f"{clone / '.venv' / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",  # source .venv/bin/activate
        VIRTUAL_ENV=str(clone / ".venv"),
        PYTHONPATH=str(ROOT),  # this checkout's code, whatever the venv was installed from
        PIPEPULSE_LOG_FORMAT="text",
    )
    env.pop("PYTHONHOME", None)
    env.update(extra)
    return env


def _run(command: str, clone: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo(clone):
    """`make demo` as the README's first block runs it, with 2 days instead of 90 and a free port:
    started at once, while the blocks that do not need it run; calling the fixture's value waits
    until it serves and gives the environment of "Collecting" and "Analysis"."""
    port = free_port()
    log = (clone.parent / "demo.log").open("w")
    proc = subprocess.Popen(
        [str(clone / ".venv/bin/pipepulse"), "--config", "examples/demo.toml", "demo", "up", "--days", "2",
         "--port", str(port)],
        cwd=clone, env=_env(clone), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def ready() -> dict[str, str]:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"demo up stopped ({proc.returncode}): {(clone.parent / 'demo.log').read_text()[-3000:]}")
            text = (clone.parent / "demo.log").read_text()
            found = re.search(r"local AWS for this demo: (\S+)", text)
            if found and _healthy(f"http://127.0.0.1:{port}/_stcore/health"):
                return {"AWS_ENDPOINT_URL": found.group(1), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
            time.sleep(0.5)
        pytest.fail(f"demo up not serving after 150 s: {(clone.parent / 'demo.log').read_text()[-3000:]}")

    try:
        yield ready
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own server
            return answer.status == 200
    except OSError:
        return False


class _Netns:
    """A network namespace of its own (loopback up), held by a sleeping process; None without
    the rights to make one."""

    def __init__(self) -> None:
        self.holder: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> _Netns | None:
        if not shutil.which("unshare") or not shutil.which("nsenter"):
            return None
        self.holder = subprocess.Popen(["unshare", "-n", "--", "sh", "-c", "ip link set lo up && exec sleep 300"],
                                       stderr=subprocess.DEVNULL)
        for _ in range(50):
            if self.holder.poll() is not None:
                return None
            up = subprocess.run(self.prefix() + ["ip", "-o", "link", "show", "lo"], capture_output=True, text=True)
            if "UP" in up.stdout.split("mtu")[0] or "LOWER_UP" in up.stdout:
                return self
            time.sleep(0.1)
        return None

    def prefix(self) -> list[str]:
        assert self.holder is not None
        return ["nsenter", "-t", str(self.holder.pid), "-n", "--"]

    def __exit__(self, *exc: object) -> None:
        if self.holder is not None:
            self.holder.kill()
            self.holder.wait()


def _serve_and_stop(command: str, clone: Path, env: dict[str, str]) -> str | None:
    """Run a command that serves forever; None when it came up and stopped cleanly on SIGTERM,
    else what went wrong."""
    out = clone.parent / f"serve-{abs(hash(command))}.log"
    with _Netns() as ns, out.open("w") as sink:
        dashboard = _bare(command).startswith("pipepulse dashboard serve")
        if dashboard and ns is None and not _port_free(8501):
            return "SKIP: port 8501 is in use and no network namespace could be made for it"
        prefix = ns.prefix() if (dashboard and ns is not None) else []
        proc = subprocess.Popen(prefix + ["bash", "-c", f"exec {command}"], cwd=clone, env=env, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            up = False
            while time.monotonic() < deadline and proc.poll() is None:
                if dashboard:
                    probe = subprocess.run(prefix + [sys.executable, "-c", (
                        "import urllib.request, sys\n"
                        "try:\n"
                        "    sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=2).status == 200 else 1)\n"
                        "except OSError:\n"
                        "    sys.exit(1)\n")], capture_output=True)
                    up = probe.returncode == 0
                else:  # the scheduler: alive and past its start-up line
                    up = "schedul" in out.read_text().lower() and time.monotonic() > deadline - 52
                if up:
                    break
                time.sleep(0.5)
            if not up:
                return f"not up ({'exit ' + str(proc.returncode) if proc.poll() is not None else 'no answer'}): {out.read_text()[-1500:]}"
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                return f"did not stop within 30 s of SIGTERM: {out.read_text()[-1500:]}"
            return None if code == 0 else f"exit {code} after SIGTERM: {out.read_text()[-1500:]}"
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _bare(command: str) -> str:
    """The command without its trailing ``# comment``."""
    return re.sub(r"\s+#\s.*$", "", command)


def _check(command: str, clone: Path, env: dict[str, str]) -> str | None:
    """None when ``command`` ran as the README means it, else what went wrong."""
    bare = _bare(command)
    if any(bare.startswith(k) for k in REFUSES):
        key = next(k for k in REFUSES if bare.startswith(k))
        if Path(REFUSES[key]).exists():
            return f"SKIP: {REFUSES[key]} exists on this machine"
        done = _run(command, clone, env, timeout=60)
        lines = done.stderr.strip().splitlines()
        if done.returncode == 0 or len(lines) != 1 or REFUSES[key] not in lines[0]:
            return f"expected one line naming {REFUSES[key]}, got exit {done.returncode}: {done.stderr[-1500:]}"
        return None
    if bare in SERVES_FOREVER:
        return _serve_and_stop(command, clone, env)
    done = _run(command, clone, env)
    if done.returncode != 0:
        return f"exit {done.returncode}: {(done.stdout + done.stderr)[-2000:]}"
    if "Traceback" in done.stderr:
        return f"traceback: {done.stderr[-2000:]}"
    for key, needle in EXPECT.items():
        if key in command and needle not in done.stdout + done.stderr:
            return f"expected {needle!r} in its output: {(done.stdout + done.stderr)[-1500:]}"
    return None


def test_every_readme_block_is_known():
    sections = [b.section for b in readme_blocks(README.read_text())]
    assert sections == ["", "The demo", "Collecting", "Analysis", "Dashboard", "Database", "Database",
                        "Deploy on AWS", "Operations"], "a new README shell block: say in tests/test_readme.py how it is run"


def test_readme_commands_run_as_written(clone, demo):
    blocks = readme_blocks(README.read_text())
    failures: list[str] = []
    skipped: list[str] = []
    ran = 0
    aws: dict[str, str] = {}
    # the blocks that need the running demo last (in README order among themselves), so that the
    # others run while it builds
    for block in sorted(blocks, key=lambda b: b.section in NEEDS_DEMO):
        if block.section in NEEDS_DEMO and not aws:
            aws = demo()
        if block.section == "":  # make demo / make test: minutes each; the targets exist
            for command in block.commands:
                target = command.split("#")[0].split()
                assert target[0] == "make", command
                done = _run(f"make -n {target[1]}", clone, _env(clone))
                if done.returncode != 0 or {"demo": "demo up", "test": "pytest"}[target[1]] not in done.stdout:
                    failures.append(f"README.md:{block.line}: make -n {target[1]}: {done.stdout}{done.stderr}")
                ran += 1
            continue
        if block.section == "Deploy on AWS":  # needs an AWS account
            assert all(c.startswith(("ZIP=", "aws ")) for c in block.commands), block.commands
            continue
        if block.section == "Database" and any("pg_dump" in c for c in block.commands):
            continue  # test_readme_postgresql_block
        env = _env(clone, **(aws if block.section in ("Collecting", "Analysis") else {}))
        for command in block.commands:
            t0 = time.monotonic()
            problem = _check(command, clone, env)
            print(f"{time.monotonic() - t0:6.1f} s  {_bare(command)}")
            ran += 1
            if problem and problem.startswith("SKIP"):
                skipped.append(f"{command}: {problem}")
            elif problem:
                failures.append(f"README.md:{block.line}: {command}\n    {problem}")
    assert not failures, "\n".join(failures)
    assert ran >= 20
    if skipped:
        pytest.skip("; ".join(skipped))


@pytest.mark.skipif("postgresql" not in TEST_DBS, reason="PIPEPULSE_TEST_DBS has no postgresql")
def test_readme_postgresql_block(clone):
    import sqlalchemy as sa

    if not shutil.which("pg_dump"):
        pytest.fail("pg_dump is missing: the README's PostgreSQL backup is run with it")
    block = next(b for b in readme_blocks(README.read_text()) if any("pg_dump" in c for c in b.commands))
    url = next(re.search(r"postgresql\+psycopg://\S+", c).group(0) for c in block.commands if "export" in c)
    name = sa.make_url(url).database
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # the README's `createdb ... pipepulse first`
        if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    (clone / "pipepulse.dump").unlink(missing_ok=True)
    done = _run("set -e\n" + "\n".join(block.commands), clone, _env(clone))
    assert done.returncode == 0, done.stdout + done.stderr
    dump = clone / "pipepulse.dump"
    assert dump.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
    listing = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True).stdout
    assert "TABLE public alembic_version" in listing


def test_the_readme_says_how_to_change_the_demo_port_and_make_does_it():
    text = README.read_text()
    assert "`make demo DEMO_PORT=8600`" in text
    done = subprocess.run(["make", "-n", "demo", "DEMO_PORT=8600"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "demo up --port 8600" in done.stdout
