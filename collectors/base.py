"""The one small interface every collector implements, and how its output is persisted.

A collector is an object with a ``name`` (the source it records under, e.g. ``"ce"``) and
``collect(ctx) -> Batch``. It reads its watermarks from ``ctx``, calls AWS through
``ctx.client(service)`` (which counts every HTTP attempt, because AWS bills per request), turns
raw answers into typed rows at the boundary, and returns them. It never writes to the database.

The runner (``collectors/runner.py``) then, in ONE transaction, calls ``persist(conn, name,
batch, now=...)`` (rows + watermarks together: nothing lost, nothing twice) and records the
``collector_runs`` row with ``ctx.calls`` and their price (``ctx.calls.cost(prices)``).

Extending: add ``collectors/<source>.py`` with a class that has ``name`` and ``collect``;
return rows keyed by table name (``store.schema`` tables). Writes that are not plain upserts
(replacing a range of days that a source restates, inserting a forecast snapshot with its points)
go in ``Batch.writes`` as functions of the connection, defined in ``store/<area>.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from pipepulse.settings import Prices, Settings

__all__ = ["Batch", "CallCounter", "Collector", "Context", "persist", "PRICE_PER_CALL"]

# What one request of an operation costs, as (Prices attribute, divisor). Operations not listed
# are free (most describe/list calls). GetMetricData is billed per metric requested, which the
# collector adds itself with ``CallCounter.add_billed``.
PRICE_PER_CALL: dict[str, tuple[str, float]] = {
    "ce:GetCostAndUsage": ("ce_request", 1.0),
    "ce:GetCostForecast": ("ce_request", 1.0),
    "ce:GetDimensionValues": ("ce_request", 1.0),
    "ce:GetTags": ("ce_request", 1.0),
}


@dataclass
class CallCounter:
    """AWS requests made in one pass, per ``service:Operation`` (every HTTP attempt counts)."""

    calls: Counter[str] = field(default_factory=Counter)
    billed_usd: float = 0.0  # extra charges not tied to a request count (e.g. metrics requested)

    def add(self, operation: str, n: int = 1) -> None:
        self.calls[operation] += n

    def add_billed(self, usd: float) -> None:
        self.billed_usd += usd

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def cost(self, prices: Prices) -> float:
        """The price of the calls made, at the configured list prices."""
        usd = self.billed_usd
        for op, n in self.calls.items():
            if op in PRICE_PER_CALL:
                attr, div = PRICE_PER_CALL[op]
                usd += n * getattr(prices, attr) / div
        return usd

    def attach(self, client: Any) -> Any:
        """Count every request ``client`` sends (retries included); returns the client."""
        service = client.meta.service_model.endpoint_prefix

        def _count(event_name: str = "", **_: Any) -> None:
            # event_name is "before-send.<service id>.<Operation>"; fires once per HTTP attempt
            self.add(f"{service}:{event_name.rsplit('.', 1)[-1]}")

        client.meta.events.register("before-send", _count)
        return client


@dataclass
class Context:
    """What a collector gets for one pass."""

    settings: Settings
    session_factory: Callable[[], Any]  # -> boto3.Session
    now: datetime
    watermarks: Mapping[str, str] = field(default_factory=dict)  # key -> value, for this source
    calls: CallCounter = field(default_factory=CallCounter)
    client_config: Any = None  # botocore Config (retries, timeouts) the runner wants

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` in the configured region whose requests are counted."""
        kwargs.setdefault("region_name", self.settings.aws_region)
        if self.settings.aws_endpoint_url and "endpoint_url" not in kwargs:
            kwargs["endpoint_url"] = self.settings.aws_endpoint_url
        if self.client_config is not None and "config" not in kwargs:
            kwargs["config"] = self.client_config
        return self.calls.attach(self.session_factory().client(service, **kwargs))


@dataclass
class Batch:
    """What one pass produced: rows per table (upserted), new watermarks, extra writes."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    watermarks: dict[str, str] = field(default_factory=dict)  # key -> value, for this source
    # Writes that are not plain upserts, run first in the same transaction; each returns the
    # number of rows it changed. Defined in store/<area>.py (SQL lives in store/ only).
    writes: list[Callable[[Connection], int]] = field(default_factory=list)
    window_start: datetime | None = None
    window_end: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)  # for collector_runs.details

    @property
    def row_count(self) -> int:
        return sum(len(v) for v in self.rows.values())


class Collector(Protocol):
    name: str

    def collect(self, ctx: Context) -> Batch: ...


def persist(conn: Connection, source: str, batch: Batch, *, now: datetime) -> int:
    """Write a batch and its watermarks in the caller's transaction; returns rows changed."""
    from store.schema import metadata
    from store.state import set_watermark
    from store.writes import upsert

    changed = 0
    for write in batch.writes:
        changed += int(write(conn) or 0)
    for table_name, rows in batch.rows.items():
        if rows:
            changed += upsert(conn, metadata.tables[table_name], rows, now=now)
    for key, value in batch.watermarks.items():
        set_watermark(conn, source, value, key, now=now)
    return changed
