"""Row counts per table, for ``pipepulse db status`` and the demo summary."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.schema import metadata

__all__ = ["table_counts"]


def table_counts(engine: Engine) -> dict[str, int]:
    """``{table: rows}`` for every pipepulse table."""
    out: dict[str, int] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            out[table.name] = int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    return dict(sorted(out.items()))
