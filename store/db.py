"""Engines, connections and schema migrations for SQLite and PostgreSQL.

``connect(url)`` gives an engine with the right per-dialect settings (SQLite: WAL; writes, i.e.
``engine.begin()``, take the write lock up front with BEGIN IMMEDIATE, reads a deferred BEGIN that
never takes it; a busy timeout whose error names the passes holding locks; PostgreSQL: ``TimeZone=UTC`` on the session, which reads timestamps faster than
the server default). ``upgrade(engine)`` takes any database to the newest schema and is a
no-op when it is already there; ``check_schema(engine)`` refuses a database that is missing the
schema or whose schema is newer than this code.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from pipepulse.errors import SchemaError, StoreError
from pipepulse.files import create_private, private_dir
from pipepulse.redact import mask_url

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = ["SchemaStatus", "check_schema", "connect", "describe_url", "is_database_error", "schema_status", "store_error", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")


def describe_url(url: str) -> str:
    """A URL without its password, for messages (also a URL SQLAlchemy cannot parse)."""
    return mask_url(str(url))


def is_database_error(exc: BaseException) -> bool:
    """True for an error of the database itself (unreachable, restarted, connection lost)."""
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, StoreError)) or (
        isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
    )


def store_error(engine: Engine, exc: BaseException) -> StoreError:
    """One line naming the database and what to do, for a database error met during a job."""
    if isinstance(exc, StoreError):
        return exc
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    reason = mask_url(text.splitlines()[0] if text else type(exc).__name__)
    return StoreError(
        f"database {describe_url(str(engine.url))} unreachable: {reason}; is the server running, "
        "and is PIPEPULSE_DATABASE_URL right? Nothing was stored; the next pass retries"
    )


def connect(url: str, *, create_dirs: bool = True, pool_size: int = 5, busy_timeout: float = 30.0) -> Engine:
    """An engine for ``url``; raises StoreError naming the file or host:port when unusable.

    SQLite: a write waits up to ``busy_timeout`` seconds for another writer, then fails with a
    StoreError naming the pipepulse passes that hold job locks; reads never wait."""
    try:
        parsed = make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise StoreError(f"database URL {mask_url(url)} is not valid: {mask_url(str(exc))}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _sqlite_engine(parsed, create_dirs=create_dirs, busy_timeout=busy_timeout)
    elif backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = sa.create_engine(
            parsed,
            pool_size=pool_size,
            pool_pre_ping=True,
            connect_args={"options": "-c TimeZone=UTC", "connect_timeout": 5},
        )
    else:
        raise StoreError(
            f"database {describe_url(url)}: unsupported backend {backend!r}; use sqlite:///path or "
            "postgresql+psycopg://user@host:5432/db"
        )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        if backend == "postgresql":
            host = parsed.host or "localhost"
            port = parsed.port or 5432
            reason = mask_url(str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc))
            raise StoreError(
                f"cannot reach PostgreSQL at {host}:{port} (database {parsed.database!r}): {reason}. "
                "Is the server running, and is PIPEPULSE_DATABASE_URL right?"
            ) from exc
        raise StoreError(f"cannot open SQLite database {parsed.database}: {exc.orig}") from exc
    return engine


def _sqlite_engine(parsed: sa.URL, *, create_dirs: bool, busy_timeout: float) -> Engine:
    path = parsed.database
    if path and path != ":memory:" and not path.startswith("file:"):
        folder = Path(path).resolve().parent
        if create_dirs:
            try:
                # the database holds everything pipepulse knows: its folder 0700, the file 0600
                # (SQLite gives its -wal/-shm files the database file's mode)
                private_dir(folder)
                create_private(path)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the data folder {folder}: {exc.strerror}; choose another with "
                    "PIPEPULSE_DATA_DIR or PIPEPULSE_DATABASE_URL"
                ) from exc
        elif not Path(path).exists():
            raise StoreError(f"SQLite database {path} does not exist yet: run `pipepulse db upgrade`")
        if not os.access(folder, os.W_OK):
            raise StoreError(
                f"the data folder {folder} is not writable; fix its permissions or choose another "
                "with PIPEPULSE_DATA_DIR or PIPEPULSE_DATABASE_URL"
            )
    engine = sa.create_engine(parsed, connect_args={"timeout": busy_timeout})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
        # autocommit off in the driver; SQLAlchemy issues BEGIN itself (below), so that a
        # write transaction takes the write lock up front and a read does not take it at all
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):  # pragma: no cover - trivial
        # engine.begin() (every write of store/) marks its connection: BEGIN IMMEDIATE waits for
        # the write lock up to the busy timeout; a read (engine.connect()) is a deferred BEGIN,
        # which in WAL mode reads a snapshot and never waits for a writer nor blocks one
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get(_WRITE) else "BEGIN")

    @sa.event.listens_for(engine, "handle_error")
    def _locked(context):  # a write that waited the whole busy timeout: say who holds the lock
        if _is_locked(context.original_exception):
            raise _locked_error(parsed, busy_timeout) from context.sqlalchemy_exception

    plain_begin = engine.begin

    @contextmanager
    def _write_begin() -> Iterator[Connection]:
        with engine.connect() as conn:
            conn.info[_WRITE] = True  # the pooled connection's info: taken off again below
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop(_WRITE, None)

    _write_begin.__doc__ = plain_begin.__doc__
    engine.begin = _write_begin  # type: ignore[method-assign]
    return engine


_WRITE = "pipepulse_write"


def _is_locked(exc: BaseException | None) -> bool:
    text = str(exc or "")
    return isinstance(exc, sqlite3.OperationalError) and ("database is locked" in text or "database table is locked" in text)


def _locked_error(parsed: sa.URL, busy_timeout: float) -> StoreError:
    """The store error for a write that waited ``busy_timeout`` for SQLite's write lock: which
    pipepulse passes hold job locks now (read without the write lock), and what to do."""
    holders: list[str] = []
    path = parsed.database or ""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)) as raw:
            rows = raw.execute("SELECT name, owner, acquired_at FROM locks ORDER BY acquired_at").fetchall()
            running = raw.execute(
                "SELECT source, started_at FROM collector_runs WHERE status = 'running' ORDER BY started_at"
            ).fetchall()
        for name, owner, acquired in rows:
            parts = str(owner).split(":")
            who = f"pid {parts[1]} on host {parts[0]}" if len(parts) >= 2 else owner
            holders.append(f"{name} held by {who} since {str(acquired)[:19]} UTC")
        holders += [f"a {source} pass running since {str(started)[:19]} UTC" for source, started in running
                    if not any(h.startswith(f"job:{source} ") for h in holders)]
    except sqlite3.Error:
        pass  # an older schema, or the file is gone: say what we can
    held = "; ".join(holders) if holders else "no pipepulse pass holds a job lock: another program (a backup, a sqlite3 shell?)"
    return StoreError(
        f"SQLite database {path} stayed locked for {busy_timeout:g} s by another writer ({held}). "
        "Wait for it to end and try again, or stop that process; for many concurrent writers "
        "use PostgreSQL (PIPEPULSE_DATABASE_URL)"
    )


def _alembic_config(engine: Engine) -> Config:
    # alembic is imported where it is used, so a process that only reads does not pay for it
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None  # revision in the database, None when empty
    head: str  # newest revision this code knows
    known: bool  # the database revision is one this code knows

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def newer_than_code(self) -> bool:
        return self.current is not None and not self.known


def schema_status(engine: Engine) -> SchemaStatus:
    """Where the database stands against this code's migrations."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    assert head is not None
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    known = current is None or _known(script, current)
    return SchemaStatus(current=current, head=head, known=known)


def _known(script: ScriptDirectory, rev: str) -> bool:
    try:
        return script.get_revision(rev) is not None
    except Exception:  # alembic raises several kinds for an unknown revision
        return False


def upgrade(engine: Engine) -> SchemaStatus:
    """Migrate to the newest schema; a no-op when already there."""
    try:
        status = schema_status(engine)
    except sa.exc.DBAPIError as exc:  # unreachable, or gone between the two reads
        raise store_error(engine, exc) from exc
    if status.newer_than_code:
        raise SchemaError(_newer_message(engine, status))
    if not status.up_to_date:
        from alembic import command

        command.upgrade(_alembic_config(engine), "head")
    from store.partitions import ensure_months  # PostgreSQL: this month's and the next ones'

    with engine.begin() as conn:
        ensure_months(conn, datetime.now(UTC))
    return schema_status(engine)


_REVISION = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:['"]([^'"]+)['"]|None)\s*$""", re.M)


def _head_from_files() -> str | None:
    """The head revision read from the migration files themselves, when their history is one
    line (each file one ``revision``, one ``down_revision`` string or None); None otherwise."""
    revs: set[str] = set()
    downs: set[str] = set()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        found = dict(_REVISION.findall(path.read_text(encoding="utf-8")))
        if "revision" not in found or not found["revision"]:
            return None
        revs.add(found["revision"])
        if found.get("down_revision"):
            downs.add(found["down_revision"])
    heads = revs - downs
    return heads.pop() if len(heads) == 1 else None


def check_schema(engine: Engine) -> None:
    """Raise SchemaError unless the database schema matches this code.

    The usual answer, "at the head", is read without alembic (the dashboard and the one-shot
    commands check on every start); anything else goes through alembic for its message."""
    head = _head_from_files()
    if head is not None:
        try:
            with engine.connect() as conn:
                current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        except sa.exc.DBAPIError:
            current = []  # no version table yet: alembic below says what to run
        if current == [head]:
            return
    try:
        status = schema_status(engine)
    except sa.exc.DBAPIError as exc:  # unreachable, or gone between the two reads
        raise store_error(engine, exc) from exc
    if status.newer_than_code:
        raise SchemaError(_newer_message(engine, status))
    if not status.up_to_date:
        raise SchemaError(
            f"database {describe_url(str(engine.url))} is at schema revision "
            f"{status.current or '(empty)'}, this code needs {status.head}: run `pipepulse db upgrade`"
        )


def _newer_message(engine: Engine, status: SchemaStatus) -> str:
    return (
        f"database {describe_url(str(engine.url))} has schema revision {status.current}, which is "
        f"newer than this version of pipepulse knows (newest {status.head}); upgrade pipepulse "
        "rather than the database"
    )
