"""The audit log (``audit_log``): sign-ins, sign-outs and admin actions, and the failed sign-ins
the login's rate limit counts (``pipepulse.access.login_lock`` decides from them).

``record`` appends a row and returns its id; ``finish`` sets a pending row's outcome;
``login_failures`` gives, for one user name and one client, the times of sign-ins that failed
(or never finished) since the last successful one; ``recent`` lists the newest rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipepulse.redact import strip_controls
from store.schema import audit_log

__all__ = ["FAILED", "LOGIN", "finish", "login_failures", "recent", "record"]

LOGIN = "login"
FAILED = ("failed", "pending")  # a pending row is an attempt still being checked, or one that died


def _cut(value: str | None, n: int) -> str:
    return strip_controls(value or "")[:n]


def record(
    conn: Connection, *, at: datetime, action: str, outcome: str, actor: str = "", client: str = "",
    target: str = "", detail: str | None = None,
) -> int:
    """Append one row (text cut to the column sizes, control characters removed); its id."""
    result = conn.execute(audit_log.insert().values(
        at=at, action=action[:40], outcome=outcome[:16], actor=_cut(actor, 200), client=_cut(client, 64),
        target=_cut(target, 600), detail=strip_controls(detail)[:2000] if detail else None,
    ))
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def finish(conn: Connection, audit_id: int, outcome: str, detail: str | None = None) -> None:
    """Set the outcome of a row written ``pending``."""
    values: dict[str, Any] = {"outcome": outcome}
    if detail is not None:
        values["detail"] = strip_controls(detail)[:2000]
    conn.execute(audit_log.update().where(audit_log.c.audit_id == audit_id).values(**values))


def _failures(conn: Connection, column: sa.Column, value: str, since: datetime) -> list[datetime]:
    last_ok = sa.select(sa.func.max(audit_log.c.audit_id)).where(
        audit_log.c.action == LOGIN, column == value, audit_log.c.outcome == "ok", audit_log.c.at >= since
    ).scalar_subquery()
    q = (
        sa.select(audit_log.c.at)
        .where(audit_log.c.action == LOGIN, column == value, audit_log.c.outcome.in_(FAILED), audit_log.c.at >= since,
               audit_log.c.audit_id > sa.func.coalesce(last_ok, 0))
        .order_by(audit_log.c.audit_id)
    )
    return list(conn.execute(q).scalars())


def login_failures(conn: Connection, *, actor: str, client: str, since: datetime) -> tuple[list[datetime], list[datetime]]:
    """Times of failed (or unfinished) sign-ins since ``since`` and since the last successful one:
    for the user name ``actor``, and from ``client``; oldest first."""
    return (
        _failures(conn, audit_log.c.actor, _cut(actor, 200), since),
        _failures(conn, audit_log.c.client, _cut(client, 64), since),
    )


def recent(conn: Connection, *, limit: int = 50, actor: str | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` rows (of ``actor`` only, when given), newest first."""
    q = sa.select(audit_log).order_by(audit_log.c.audit_id.desc()).limit(max(1, limit))
    if actor is not None:
        q = q.where(audit_log.c.actor == actor)
    return [dict(r) for r in conn.execute(q).mappings()]
