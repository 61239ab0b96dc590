"""Idempotent bulk upserts on SQLite and PostgreSQL.

``upsert(conn, table, rows)`` inserts new rows and updates existing ones (matched on the
primary key, or on ``key=`` columns), and touches a row only when one of its values really
changed: a second upsert of the same rows writes nothing and returns 0.

PostgreSQL path: per batch, one query finds which keys are stored; the new rows are binary
COPYed straight into the table (inside a savepoint), the stored ones that differ binary COPYed
into a temporary staging table and updated from it; a batch whose new rows fail (a repeated
key) is staged whole and merged with ``INSERT ... SELECT DISTINCT ON (key) ... ON CONFLICT DO
UPDATE ... WHERE ... IS DISTINCT FROM ...`` (see ``_upsert_pg``).
SQLite path: ``executemany`` of ``INSERT ... ON CONFLICT DO UPDATE ... WHERE ...``.
Column names come from the schema, never from callers' strings.
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pandas as pd
import psycopg
import sqlalchemy as sa
from psycopg import abc, adapt, pq
from psycopg._copy_base import _binary_signature as _BINARY_SIGNATURE
from psycopg._copy_base import _binary_trailer as _BINARY_TRAILER
from psycopg._copy_base import format_row_binary
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
    # the key's columns first, updated_at last: a stored row read back as (key, compared
    # values) is then the start of the batch's row, and a row compares with it as a whole
    # (the rows' own strings, not the schema's quoted names: a str subclass slows every dict
    # look-up of the batching ~1.5x)
    own = {c: c for c in columns}
    rest = [c for c in columns if c not in key_cols]
    columns = [*(own[k] for k in key_cols), *(c for c in rest if c != "updated_at"), *(c for c in rest if c == "updated_at")]
    stamp = "updated_at" in table.c and "updated_at" not in columns
    if stamp:
        columns = [*columns, "updated_at"]
        ts = now or datetime.now(UTC)
    batches = _batches(iterator, columns[:-1] if stamp else columns, (ts,) if stamp else ())
    if conn.dialect.name == "postgresql":
        return _upsert_pg(conn, table, columns, key_cols, batches)
    return _upsert_sqlite(conn, table, columns, key_cols, batches)


def _batches(rows: Iterable[Mapping[str, Any]], columns: list[str], tail: tuple) -> Iterator[list[tuple]]:
    """Lists of up to BATCH rows, each row's values in ``columns`` order (a missing key is
    None), then ``tail``; built with map and zip, so the per-row work stays in C."""
    get = operator.itemgetter(*columns)
    one = len(columns) == 1
    it = iter(rows)
    while chunk := list(itertools.islice(it, BATCH)):
        try:
            if one:
                batch = list(zip(map(get, chunk), *map(itertools.repeat, tail), strict=False))
            elif tail:
                batch = list(map(operator.add, map(get, chunk), itertools.repeat(tail)))
            else:
                batch = list(map(get, chunk))
        except KeyError:  # a row without some of the columns
            batch = [(*(r.get(c) for c in columns), *tail) for r in chunk]
        yield batch


def _value_cols(columns: list[str], key_cols: list[str]) -> list[str]:
    return [c for c in columns if c not in key_cols]


def _upsert_sqlite(conn, table, columns, key_cols, batches) -> int:
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
    for batch in batches:
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


def _upsert_pg(conn, table, columns, key_cols, batches) -> int:
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
        tx = _binary_transformer(cur, types)

        def ints(batch: list[tuple]) -> list[tuple]:
            return _ints(batch, int_idx, table, columns) if int_idx else batch

        sql = _MergeSql(q, table.name, stage, columns, key_cols, values, compare)
        if raw.autocommit:  # no savepoints (and a temp table emptied by every statement's commit)
            for batch in map(ints, batches):
                cur.execute(f"TRUNCATE {q(stage)}")
                with cur.copy(sql.copy_stage) as copy:
                    copy.write(_binary_copy_rows(tx, batch))
                cur.execute(sql.on_conflict_distinct if compare else sql.on_conflict)
                total += cur.rowcount
            return total
        # Per batch (after a batch without stored keys, step 2 is tried first with all rows, the
        # batch encoded as binary COPY data once and the new rows cut out of it if that fails;
        # else each row is encoded only for the COPY it goes to):
        # 1. which of its keys are stored already: one query (an index range scan over the
        #    batch's key range when the key columns are numbers and times, else index look-ups
        #    of the batch's keys), answered with the stored keys and values: stored rows that
        #    are unchanged are dropped here;
        # 2. the new rows: COPYed straight into the table (multi-row inserts, as fast as a raw
        #    COPY), inside a savepoint;
        # 3. the stored rows that differ: binary COPY into the temporary staging table, then one
        #    UPDATE ... FROM of those that differ (by index look-ups);
        # 4. all rows, if step 2 failed with UniqueViolation (a key repeated in the batch, or
        #    inserted by another writer meanwhile): staged, then INSERT ... ON CONFLICT DO
        #    UPDATE ... WHERE the row differs (DISTINCT ON the key). Plain COPY measured 2-4x faster than
        #    INSERT ... SELECT ... ON CONFLICT for new rows, which is why they skip the staging.
        # An unchanged row is written by none of these: a second identical upsert returns 0.
        probe = _KeyProbe(cur, q, table.name, key_cols, [types[columns.index(k)] for k in key_cols], compare,
                          len(columns))
        merge = sql.on_conflict_distinct if compare else sql.on_conflict

        def merge_all(batch: list[tuple], data: bytes | bytearray | None) -> int:
            cur.execute(f"TRUNCATE {q(stage)}")
            with cur.copy(sql.copy_stage) as copy:
                copy.write(_binary_copy_rows(tx, batch) if data is None else data)
            cur.execute(merge)
            return cur.rowcount

        # (index look-ups for the joins, no JIT: for the whole upsert, not per batch)
        with _nested_loops(cur):
            optimistic = True  # the last batch held no stored key: try this one as all new first
            for batch in map(ints, batches):
                data: bytearray | None = None
                if optimistic:
                    data, starts = _binary_copy_data(tx, batch)
                    if _copy_new(cur, sql.copy_table, data):
                        total += len(batch)
                        continue
                split = probe.split(batch)
                if split is None:  # the probe could not tell: merge the whole batch
                    total += merge_all(batch, data)
                    optimistic = False
                    continue
                held, changed = split  # held: where the stored rows are; changed: those that differ
                optimistic = not held
                if len(held) < len(batch):
                    if data is None:
                        fresh: bytes | bytearray = _binary_copy_rows(tx, _rows_without(batch, held))
                    else:
                        fresh = _rows_except(data, starts, held) if held else data
                    if not _copy_new(cur, sql.copy_table, fresh):
                        total += merge_all(batch, data)
                        continue
                    total += len(batch) - len(held)
                if changed:
                    # rows known stored: an UPDATE of those that differ (index look-ups) is
                    # cheaper than INSERT ... ON CONFLICT's speculative insertion
                    cur.execute(f"TRUNCATE {q(stage)}")
                    with cur.copy(sql.copy_stage) as copy:
                        copy.write(_binary_copy_rows(tx, changed))
                    cur.execute(sql.update)
                    total += cur.rowcount
    return total


def _copy_new(cur: psycopg.Cursor, statement: str, data: bytes | bytearray) -> bool:
    """COPY rows straight into the table inside a savepoint; False (and nothing written) if one
    of their keys is stored already or repeats. The server stops at the first such row."""
    cur.execute("SAVEPOINT _pp_direct")
    try:
        with cur.copy(statement) as copy:
            copy.write(data)
    except psycopg.errors.UniqueViolation:
        cur.execute("ROLLBACK TO SAVEPOINT _pp_direct")
        cur.execute("RELEASE SAVEPOINT _pp_direct")
        return False
    cur.execute("RELEASE SAVEPOINT _pp_direct")
    return True


_RANGE_TYPES = {"int4", "int8", "date", "timestamptz", "timestamp"}


class _KeyProbe:
    """Splits a batch into rows whose key is not stored yet, rows stored with other values, and
    rows stored as they are (dropped: nothing to write), by reading the stored values back.

    The batch's rows hold the key's columns first, then the compared ones (then updated_at):
    a stored row read back (key, compared values) is the start of the batch's row.

    Only a speed-up: a stored row taken for new fails its COPY with UniqueViolation and the
    batch is merged; a row taken for changed is updated only if the database finds it differs."""

    def __init__(self, cur, q, name, key_cols, key_types, compare, width):
        self.cur = cur
        nk = self.nk = len(key_cols)
        cols = ", ".join(map(q, key_cols))
        read = ", ".join([*map(q, key_cols), *map(q, compare)])
        # the range: over the whole key when its columns are all numbers and times, else over its
        # first such column (cost_daily's day), else none
        if all(t in _RANGE_TYPES for t in key_types):
            self.ranged: list[int] | None = list(range(nk))
        else:
            self.ranged = next(([i] for i, t in enumerate(key_types) if t in _RANGE_TYPES), None)
        if self.ranged is not None:
            row = f"ROW({', '.join(q(key_cols[i]) for i in self.ranged)})"
            bound = f"ROW({', '.join(f'%s::{key_types[i]}' for i in self.ranged)})"
            where = f"{row} >= {bound} AND {row} <= {bound}"
            self.range_sql = f"SELECT {read} FROM {q(name)} WHERE {where} LIMIT %s"
        # (also for one column: "= ANY(array)" of a whole batch is planned as a scan of the table)
        on = " AND ".join(f"t.{q(c)} = k.{q(c)}" for c in key_cols)
        unnest = ", ".join(f"%s::{t}[]" for t in key_types)
        self.lookup_sql = (
            f"SELECT {', '.join('t.' + q(c) for c in [*key_cols, *compare])} FROM unnest({unnest}) AS k({cols}) "
            f"JOIN {q(name)} AS t ON {on}"
        )
        # a row's key: the value itself for one column (compared and hashed without a tuple)
        self.key = operator.itemgetter(0) if nk == 1 else operator.itemgetter(slice(0, nk))
        # what of a batch's row compares with a stored one: all of it, or all but updated_at
        read_width = nk + len(compare)
        self.cut = None if read_width == width else operator.itemgetter(slice(0, read_width))

    def stored(self, batch: list[tuple], ascending: bool) -> list[tuple] | None:
        """The stored rows (key columns, then compared ones) among ``batch``'s keys (those of
        the range may come along), or None when the keys cannot be ordered."""
        if self.ranged is not None:
            try:
                if len(self.ranged) == self.nk:
                    if ascending:
                        lo, hi = batch[0][: self.nk], batch[-1][: self.nk]
                    else:
                        key = operator.itemgetter(slice(0, self.nk))
                        lo, hi = min(map(key, batch)), max(map(key, batch))
                else:
                    part = operator.itemgetter(*self.ranged)
                    lo, hi = (min(map(part, batch)),), (max(map(part, batch)),)
            except TypeError:  # e.g. naive and aware times in one batch
                return None
            # a range holding more rows than the batch (say one new point for each of many
            # series) is not read back: the keys are looked up one by one instead
            limit = len(batch) + 1
            self.cur.execute(self.range_sql, [*lo, *hi, limit], binary=True)  # (binary: parsed faster)
            found = self.cur.fetchall()
            if len(found) < limit:
                return found
        # index look-ups of each key (nested loop, under _nested_loops: a hash join would read
        # the whole table)
        keys = [list(map(operator.itemgetter(i), batch)) for i in range(self.nk)]
        self.cur.execute(self.lookup_sql, keys, binary=True)
        return self.cur.fetchall()

    def split(self, batch: list[tuple]) -> tuple[list[int], list[tuple]] | None:
        """(where the batch's stored rows are, ascending; those of them that differ from what is
        stored), or None when the stored keys could not be read."""
        try:
            # rows in ascending order: their keys (leading) ascend too, or repeat (a repeated
            # key goes to the COPY of new rows, which then fails and the batch is merged)
            ascending = all(map(operator.lt, batch, itertools.islice(batch, 1, None)))
        except TypeError:  # e.g. naive and aware times
            ascending = False
        found = self.stored(batch, ascending)
        if found is None:
            return None
        if not found:
            return [], []
        split = self._in_order(batch, found) if ascending else None
        return self._hashed(batch, found) if split is None else split

    def _in_order(self, batch: list[tuple], found: list[tuple]) -> tuple[list[int], list[tuple]] | None:
        """``split`` for a batch whose rows ascend: the stored rows, sorted, are found by walking
        both in order (a stored row next to the last one found costs no search) instead of
        hashing every key of the batch (a new datetime's hash costs ~1 us: 50 ms a batch).
        None when the keys cannot be ordered."""
        key, cut = self.key, self.cut
        held: list[int] = []
        changed: list[tuple] = []
        hold, change = held.append, changed.append
        n = len(batch)
        at = 0
        try:
            found.sort()  # (by key: the table holds each key once)
            for r in found:
                k = key(r)
                row = batch[at]
                if key(row) != k:  # further on, or not in the batch: search the next rows first
                    near = at + 8 if at + 8 < n else n
                    at = bisect.bisect_left(batch, k, at, near, key=key)
                    if at == near < n:
                        at = bisect.bisect_left(batch, k, near, n, key=key)
                    if at == n:
                        break
                    row = batch[at]
                    if key(row) != k:  # stored in the batch's key range, not in the batch
                        continue
                hold(at)
                if (row if cut is None else cut(row)) != r:
                    change(row)
                at += 1
                if at == n:
                    break
        except TypeError:  # e.g. naive and aware times
            return None
        return held, changed

    def _hashed(self, batch: list[tuple], found: list[tuple]) -> tuple[list[int], list[tuple]]:
        """``split`` for any batch: its keys hashed in C (a repeated key keeps its last place: the
        other copy goes to the COPY of new rows, which then fails and the batch is merged)."""
        key, cut = self.key, self.cut
        where = dict(zip(map(key, batch), range(len(batch)), strict=True))
        held: list[int] = []
        changed: list[tuple] = []
        for i, r in zip(map(where.get, map(key, found)), found, strict=True):
            if i is None:  # stored in the batch's key range, not in the batch
                continue
            held.append(i)
            row = batch[i]
            if (row if cut is None else cut(row)) != r:
                changed.append(row)
        held.sort()
        return held, changed


@contextlib.contextmanager
def _nested_loops(cur: psycopg.Cursor) -> Iterator[None]:
    """Join a batch to the table by index look-ups: the planner, knowing nothing of the staged
    rows, would otherwise hash the whole table for every batch. And no JIT compilation, which
    the planner's row estimates for such a join (far above the batch's) trigger and which cost
    more than the join itself (0.8 s of a 1.4 s statement for a 50,000-row batch)."""
    names = ("enable_hashjoin", "enable_mergejoin", "jit")
    shown = ", ".join(f"current_setting('{n}')" for n in names)
    off = ", ".join(f"set_config('{n}', 'off', true)" for n in names)
    cur.execute(f"SELECT {shown}, {off}")
    row = cur.fetchone()
    assert row is not None
    try:
        yield
    finally:
        # (after an error the transaction is aborted: its rollback resets them, and a query
        # now would hide the error)
        if cur.connection.info.transaction_status != pq.TransactionStatus.INERROR:
            cur.execute("SELECT " + ", ".join(f"set_config('{n}', %s, true)" for n in names), row[: len(names)])


def _rows_except(data: bytearray, starts: list[int], skip: list[int]) -> bytes:
    """The binary COPY data ``data`` (its rows beginning at ``starts``) without the rows at
    ``skip`` (ascending)."""
    view = memoryview(data)
    end = len(data) - len(_BINARY_TRAILER)
    parts = []
    at = 0
    for i in skip:
        if starts[i] > at:  # (a run of skipped rows is cut out in one piece)
            parts.append(view[at : starts[i]])
        at = starts[i + 1] if i + 1 < len(starts) else end
    parts.append(view[at:])
    return b"".join(parts)


def _rows_without(batch: list[tuple], skip: list[int]) -> list[tuple]:
    """``batch`` without the rows at ``skip`` (C loops: a mask, then ``compress``)."""
    keep = [True] * len(batch)
    collections.deque(map(keep.__setitem__, skip, itertools.repeat(False)), maxlen=0)
    return list(itertools.compress(batch, keep))


class _MergeSql:
    """The statements of ``_upsert_pg`` for one table and column list (names quoted)."""

    def __init__(self, q, name, stage, columns, key_cols, values, compare):
        cols = ", ".join(map(q, columns))
        keys = ", ".join(map(q, key_cols))
        self.copy_table = f"COPY {q(name)} ({cols}) FROM STDIN (FORMAT BINARY)"
        self.copy_stage = f"COPY {q(stage)} ({cols}) FROM STDIN (FORMAT BINARY)"
        # ROW(...) also for one column: PostgreSQL rejects the "(x,)" tuple spelling
        differs = (
            f"ROW({', '.join('t.' + q(c) for c in compare)}) "
            f"IS DISTINCT FROM ROW({', '.join('{s}.' + q(c) for c in compare)})"
        )
        tail = f"FROM {q(stage)} ON CONFLICT ({keys}) "
        if compare:  # (only updated_at besides the key: nothing changed, nothing to write)
            tail += "DO UPDATE SET " + ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in values)
            tail += f" WHERE {differs.format(s='EXCLUDED')}"
        else:
            tail += "DO NOTHING"
        on_key = " AND ".join(f"t.{q(c)} = s.{q(c)}" for c in key_cols)
        self.update = (
            f"UPDATE {q(name)} AS t SET {', '.join(f'{q(c)} = s.{q(c)}' for c in values)} "
            f"FROM {q(stage)} AS s WHERE {on_key}" + (f" AND {differs.format(s='s')}" if compare else "")
        )
        head = f"INSERT INTO {q(name)} AS t ({cols}) SELECT "
        self.on_conflict = head + cols + " " + tail
        self.on_conflict_distinct = head + f"DISTINCT ON ({keys}) " + cols + " " + tail


def _binary_transformer(cur: psycopg.Cursor, types: list[str]) -> abc.Transformer:
    """psycopg's binary encoder of rows of ``types`` (made here, in the connection's thread)."""
    tx = adapt.Transformer(cur)
    tx.set_dumper_types([cur.adapters.types.get_oid(t) for t in types], pq.Format.BINARY)
    return tx


def _binary_copy_data(tx: abc.Transformer, batch: list[tuple]) -> tuple[bytearray, list[int]]:
    """``batch`` as one block of binary COPY data (signature, rows, trailer), written with one
    ``Copy.write``, and where each row begins in it: psycopg's own row encoder (what
    ``Copy.write_row`` calls; C in psycopg-binary, pinned in requirements.lock) without a Python
    call per row."""
    out = bytearray(_BINARY_SIGNATURE)
    starts: list[int] = []
    begin = starts.append
    for row in batch:
        begin(len(out))
        format_row_binary(row, tx, out)
    out += _BINARY_TRAILER
    return out, starts


def _binary_copy_rows(tx: abc.Transformer, batch: list[tuple]) -> bytearray:
    """``batch`` as one block of binary COPY data, as ``_binary_copy_data`` without noting where
    each row begins (a third faster: the per-row loop runs in C)."""
    out = bytearray(_BINARY_SIGNATURE)
    collections.deque(map(format_row_binary, batch, itertools.repeat(tx), itertools.repeat(out)), maxlen=0)
    out += _BINARY_TRAILER
    return out


def _ints(batch: list[tuple], idx: list[int], table: sa.Table, columns: list[str]) -> list[tuple]:
    """Binary COPY wants Python ints in integer columns: turn whole floats (pandas makes them of
    nullable ints) into ints and NaN into NULL; a fractional value is an error naming the column."""
    if not any(float in set(map(type, map(operator.itemgetter(i), batch))) for i in idx):
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


def _quote(conn):
    prep = conn.dialect.identifier_preparer
    return prep.quote
