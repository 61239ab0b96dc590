"""The dashboard's own PostgreSQL role: it reads everything, and writes only what the dashboard
writes (an anomaly's status, and the audit log). Collectors, jobs and migrations keep the writer
(the owner of the tables); the internet-facing dashboard never holds it.

``grant_dashboard_role(conn, role, password)`` creates the role if missing, sets its password and
(re)grants exactly these, on every ``pipepulse db upgrade --dashboard-role NAME``, so a migration
that adds a table is covered at once:

    GRANT CONNECT ON DATABASE <db> TO <role>;
    GRANT USAGE ON SCHEMA <schema> TO <role>;
    GRANT SELECT ON ALL TABLES IN SCHEMA <schema> TO <role>;
    GRANT UPDATE (status, status_note, status_by, status_at, snoozed_until, version) ON anomalies TO <role>;
    GRANT INSERT, UPDATE (outcome, detail) ON audit_log TO <role>;
    GRANT USAGE ON SEQUENCE audit_log_audit_id_seq TO <role>;

Anything else it held on the schema's tables is revoked first. SQLite has no roles: the
dashboard's file permissions are its boundary there.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipepulse.errors import ConfigError, StoreError

__all__ = ["ANOMALY_STATUS_COLUMNS", "grant_dashboard_role"]

ANOMALY_STATUS_COLUMNS = ("status", "status_note", "status_by", "status_at", "snoozed_until", "version")
_ROLE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def grant_dashboard_role(conn: Connection, role: str, password: str) -> list[str]:
    """Create or update ``role`` with the dashboard's grants; the statements run (password masked)."""
    if conn.dialect.name != "postgresql":
        raise StoreError("a dashboard role is a PostgreSQL role; SQLite has none (protect the file instead)")
    if not _ROLE.fullmatch(role):
        raise ConfigError(f"--dashboard-role {role!r}: expected a lower-case PostgreSQL name (letters, digits, _)")
    if len(password) < 16:
        raise ConfigError("the dashboard role's password (PIPEPULSE_DASHBOARD_DB_PASSWORD) must have at least 16 characters")
    from psycopg import sql

    raw = conn.connection.driver_connection
    db = conn.execute(sa.text("SELECT current_database()")).scalar_one()
    schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
    exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first() is not None
    r, s = sql.Identifier(role), sql.Identifier(schema)
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in ANOMALY_STATUS_COLUMNS)
    statements = [
        sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}" if exists else "CREATE ROLE {} WITH LOGIN PASSWORD {}").format(
            r, sql.Literal(password)),
        sql.SQL("ALTER ROLE {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT").format(r),
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(s, r),
        sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(s, r),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(db), r),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, r),
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(s, r),
        sql.SQL("GRANT UPDATE ({}) ON {}.anomalies TO {}").format(cols, s, r),
        sql.SQL("GRANT INSERT, UPDATE (outcome, detail) ON {}.audit_log TO {}").format(s, r),
        sql.SQL("GRANT USAGE ON SEQUENCE {}.audit_log_audit_id_seq TO {}").format(s, r),
    ]
    shown = []
    for st in statements:
        text = st.as_string(raw)
        conn.exec_driver_sql(text.replace("%", "%%"))
        shown.append(re.sub(r"PASSWORD '.*'$", "PASSWORD '***'", text))
    return shown
