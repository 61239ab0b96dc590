"""The ``collect`` job: one pass of each enabled collector source, each under its lock.

A source is collected only while its lock ``job:<source>`` is held (the same lock
``pipepulse schedule`` takes), so a crontab pass and the scheduler never collect one source
twice at once; a source someone else is collecting is skipped and reported with its owner
(pid, host, since when, last heartbeat). A skip is not a success when that owner looks dead (its
pid gone or its heartbeat stopped, and its lock not yet free): the result is ``failed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from collectors.accounts import Credentials
from collectors.runner import SOURCES, PassResult, collect, enabled_sources
from jobs.scheduler import job_lock, lock_ttl
from pipepulse.settings import Settings
from store.db import is_database_error, store_error
from store.state import holder

__all__ = ["CollectResult", "run"]


@dataclass
class CollectResult:
    """The passes that ran, and the sources skipped because another pass held their lock."""

    passes: list[PassResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    holders: dict[str, str] = field(default_factory=dict)  # skipped source -> who holds its lock
    dead_holders: list[str] = field(default_factory=list)  # skipped sources whose lock's owner looks dead

    @property
    def status(self) -> str:
        return "failed" if any(not p.ok for p in self.passes) or self.dead_holders else "ran"

    @property
    def error(self) -> str:
        return "\n".join([*(p.error for p in self.passes if p.error),
                          *(f"{s}: skipped, its lock is held by {self.holders[s]}" for s in self.dead_holders)])


def run(
    settings: Settings,
    engine: Engine,
    *,
    now: datetime,
    sources: Sequence[str] | None = None,
    session_factory: Callable[[], Any] | None = None,
) -> CollectResult:
    """Collect ``sources`` (default: every enabled one), in run order, each under its lock."""
    names = [n for n in SOURCES if n in sources] if sources else [c.name for c in enabled_sources(settings)]
    result = CollectResult()
    credentials = Credentials(settings, session_factory)  # each account's role assumed once per pass
    for name in names:
        try:
            with job_lock(engine, name, now=now, ttl=lock_ttl(settings)) as got:
                if not got:
                    result.skipped.append(name)
                    who = holder(engine, f"job:{name}", now=now)
                    result.holders[name] = who.describe(now) if who is not None else "a pass that just ended"
                    if who is not None and not who.alive:
                        result.dead_holders.append(name)
                    continue
                result.passes.extend(collect(settings, engine, sources=[name], now=now, session_factory=session_factory,
                                             credentials=credentials))
        except Exception as exc:
            if not is_database_error(exc):
                raise
            # the database went away: this source failed, the others are still tried
            result.passes.append(PassResult(source=name, status="failed", error=str(store_error(engine, exc))))
    return result
