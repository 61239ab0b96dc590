"""Idempotent bulk upserts on SQLite and PostgreSQL.

``upsert(conn, table, rows)`` inserts new rows and updates existing ones (matched on the
primary key, or on ``key=`` columns), and touches a row only when one of its values really
changed: a second upsert of the same rows writes nothing and returns 0.

PostgreSQL path: while batches hold only new keys, binary COPY straight into the table (inside a
savepoint); otherwise binary COPY into a temporary staging table, then one
``INSERT ... SELECT ... ON CONFLICT DO UPDATE ... WHERE ... IS DISTINCT FROM ...`` per batch
(``DISTINCT ON`` the key only for a batch that repeats a key; see ``_upsert_pg``).
SQLite path: ``executemany`` of ``INSERT ... ON CONFLICT DO UPDATE ... WHERE ...``.
Column names come from the schema, never from callers' strings.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pandas as pd
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["inserted_id", "rows_of", "upsert"]

BATCH = 50_000


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The primary key the database gave the one row an INSERT wrote."""
    key = result.inserted_primary_key
    assert key is not None, "not a single-row INSERT"
    return int(key[0])


def rows_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as dicts with NaN/NaT as None and numpy scalars as Python ones."""
    clean = frame.astype(object).where(frame.notna(), None)
    return cast(list[dict[str, Any]], clean.to_dict("records"))  # column names are strings


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: Iterable[Mapping[str, Any]] | pd.DataFrame,
    *,
    key: Sequence[str] | None = None,
    now: datetime | None = None,
) -> int:
    """Insert or update ``rows`` into ``table``; returns how many rows were inserted or changed."""
    if isinstance(rows, pd.DataFrame):
        if rows.empty:
            return 0
        columns = [c for c in rows.columns if c in table.c]
        unknown = [c for c in rows.columns if c not in table.c]
        if unknown:
            raise ValueError(f"{table.name} has no column(s) {unknown}")
        iterator: Iterable[Mapping[str, Any]] = rows_of(rows[columns])
    else:
        iterator = iter(rows)
        first = next(iterator, None)
        if first is None:
            return 0
        columns = list(first.keys())
        unknown = [c for c in columns if c not in table.c]
        if unknown:
            raise ValueError(f"{table.name} has no column(s) {unknown}")
        iterator = itertools.chain([first], iterator)

    key_cols = list(key) if key else [c.name for c in table.primary_key.columns]
    missing = [c for c in key_cols if c not in columns]
    if missing:
        raise ValueError(f"rows for {table.name} lack key column(s) {missing}")
    stamp = "updated_at" in table.c and "updated_at" not in columns
    if stamp:
        columns = [*columns, "updated_at"]
        ts = now or datetime.now(UTC)
    tuples = (
        tuple([*(r.get(c) for c in columns[:-1]), ts]) if stamp else tuple(r.get(c) for c in columns)
        for r in iterator
    )
    if conn.dialect.name == "postgresql":
        return _upsert_pg(conn, table, columns, key_cols, tuples)
    return _upsert_sqlite(conn, table, columns, key_cols, tuples)


def _value_cols(columns: list[str], key_cols: list[str]) -> list[str]:
    return [c for c in columns if c not in key_cols]


def _upsert_sqlite(conn, table, columns, key_cols, tuples) -> int:
    q = _quote(conn)
    values = _value_cols(columns, key_cols)
    compare = [c for c in values if c != "updated_at"]
    sql = (
        f"INSERT INTO {q(table.name)} ({', '.join(map(q, columns))}) "
        f"VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({', '.join(map(q, key_cols))}) "
    )
    if values:
        sql += "DO UPDATE SET " + ", ".join(f"{q(c)} = excluded.{q(c)}" for c in values)
        if compare:
            sql += " WHERE " + " OR ".join(f"{q(table.name)}.{q(c)} IS NOT excluded.{q(c)}" for c in compare)
    else:
        sql += "DO NOTHING"
    conv = _sqlite_converters(table, columns)
    raw = conn.connection.driver_connection
    before = raw.total_changes
    cur = raw.cursor()
    int_idx = [i for i, c in enumerate(columns) if isinstance(_base_type(table.c[c].type), sa.Integer)]
    for batch in _batches(tuples):
        if int_idx:
            batch = _ints(batch, int_idx, table, columns)
        cur.executemany(sql, [tuple(f(v) if f else v for f, v in zip(conv, row, strict=True)) for row in batch])
    cur.close()
    return raw.total_changes - before


def _sqlite_converters(table: sa.Table, columns: list[str]) -> list[Callable[[Any], Any] | None]:
    """Turn datetimes into the text SQLAlchemy's SQLite dialect writes, so reads agree."""
    out: list[Callable[[Any], Any] | None] = []
    for c in columns:
        t = _base_type(table.c[c].type)
        if isinstance(t, sa.DateTime):
            out.append(_sqlite_ts)
        elif isinstance(t, sa.Date):
            out.append(_sqlite_date)
        else:
            out.append(None)
    return out


def _sqlite_ts(v):
    if v is None:
        return None
    if isinstance(v, pd.Timestamp):
        if v is pd.NaT:
            return None
        v = v.to_pydatetime()
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    return v


def _sqlite_date(v):
    if v is None:
        return None
    if isinstance(v, datetime | pd.Timestamp):
        return v.strftime("%Y-%m-%d")
    return v.isoformat() if hasattr(v, "isoformat") else v


def _upsert_pg(conn, table, columns, key_cols, tuples) -> int:
    q = _quote(conn)
    values = _value_cols(columns, key_cols)
    compare = [c for c in values if c != "updated_at"]
    stage = f"_pp_stage_{table.name}"
    raw = conn.connection.driver_connection
    total = 0
    with raw.cursor() as cur:
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {q(stage)} "
            f"(LIKE {q(table.name)} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        types = [_pg_type(_base_type(table.c[c].type)) for c in columns]
        int_idx = [i for i, t in enumerate(types) if t in ("int4", "int8")]
        cols = ", ".join(map(q, columns))
        keys = ", ".join(map(q, key_cols))
        tail = f"FROM {q(stage)} ON CONFLICT ({keys}) "
        if values:
            tail += "DO UPDATE SET " + ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in values)
            if compare:
                # ROW(...) also for one column: PostgreSQL rejects the "(x,)" tuple spelling
                tail += (
                    f" WHERE ROW({', '.join('t.' + q(c) for c in compare)}) "
                    f"IS DISTINCT FROM ROW({', '.join('EXCLUDED.' + q(c) for c in compare)})"
                )
        else:
            tail += "DO NOTHING"
        head = f"INSERT INTO {q(table.name)} AS t ({cols}) SELECT "
        # Speed: most batches have unique keys, so try without DISTINCT ON (a sort of the whole
        # batch, which spills to disk at the default work_mem); a batch that repeats a key makes
        # DO UPDATE fail with CardinalityViolation, and is redone with DISTINCT ON.
        fast = head + cols + " " + tail
        safe = head + f"DISTINCT ON ({keys}) " + cols + " " + tail
        savepoints = bool(values) and not raw.autocommit
        # Speed: a batch of rows that are all new is COPYed straight into the table, as fast as
        # a raw COPY; a key that exists already (or repeats) makes the COPY fail with
        # UniqueViolation, the savepoint undoes it, and from then on batches take the merge path.
        direct = not raw.autocommit
        for batch in _batches(tuples):
            if int_idx:
                batch = _ints(batch, int_idx, table, columns)
            if direct:
                cur.execute("SAVEPOINT _pp_direct")
                try:
                    with cur.copy(f"COPY {q(table.name)} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                        copy.set_types(types)
                        for row in batch:
                            copy.write_row(row)
                except psycopg.errors.UniqueViolation:
                    cur.execute("ROLLBACK TO SAVEPOINT _pp_direct")
                    cur.execute("RELEASE SAVEPOINT _pp_direct")
                    direct = False
                else:
                    cur.execute("RELEASE SAVEPOINT _pp_direct")
                    total += len(batch)
                    continue
            cur.execute(f"TRUNCATE {q(stage)}")
            with cur.copy(f"COPY {q(stage)} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for row in batch:
                    copy.write_row(row)
            if not values:
                cur.execute(fast)  # DO NOTHING tolerates repeated keys
                total += cur.rowcount
            elif savepoints:
                cur.execute("SAVEPOINT _pp_upsert")
                try:
                    cur.execute(fast)
                except psycopg.errors.CardinalityViolation:
                    cur.execute("ROLLBACK TO SAVEPOINT _pp_upsert")
                    cur.execute(safe)
                total += cur.rowcount
                cur.execute("RELEASE SAVEPOINT _pp_upsert")
            else:
                cur.execute(safe)
                total += cur.rowcount
    return total


def _ints(batch: list[tuple], idx: list[int], table: sa.Table, columns: list[str]) -> list[tuple]:
    """Binary COPY wants Python ints in integer columns: turn whole floats (pandas makes them of
    nullable ints) into ints and NaN into NULL; a fractional value is an error naming the column."""
    if not any(type(row[i]) is float for row in batch for i in idx):
        return batch
    out = []
    for row in batch:
        values = list(row)
        for i in idx:
            v = values[i]
            if type(v) is float:
                if v != v:
                    values[i] = None
                elif v.is_integer():
                    values[i] = int(v)
                else:
                    raise ValueError(f"{table.name}.{columns[i]} is a whole-number column, got {v!r}")
        out.append(tuple(values))
    return out


def _base_type(t: sa.types.TypeEngine) -> sa.types.TypeEngine:
    """The underlying type of a TypeDecorator (``store.schema.TS`` wraps DateTime)."""
    return t.impl_instance if isinstance(t, sa.types.TypeDecorator) else t


def _pg_type(t: sa.types.TypeEngine) -> str:
    if isinstance(t, sa.DateTime):
        return "timestamptz" if t.timezone else "timestamp"
    if isinstance(t, sa.Date):
        return "date"
    if isinstance(t, sa.BigInteger):
        return "int8"
    if isinstance(t, sa.Integer):
        return "int4"
    if isinstance(t, sa.Float):
        return "float8"
    if isinstance(t, sa.Boolean):
        return "bool"
    return "text"


def _batches(tuples):
    it = iter(tuples)
    while batch := list(itertools.islice(it, BATCH)):
        yield batch


def _quote(conn):
    prep = conn.dialect.identifier_preparer
    return prep.quote
