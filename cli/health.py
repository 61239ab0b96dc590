"""``pipepulse healthcheck``: the container's health probe (Docker HEALTHCHECK, compose, ECS).

Without ``--url`` it checks what every pipepulse process needs: the database answers and its
schema matches this code. With ``--url`` it also GETs that address (the dashboard's
``/_stcore/health``) and wants a 2xx answer. Exit 0 healthy, 1 not, with one line saying why.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from pipepulse.errors import PipepulseError, StoreError
from pipepulse.settings import Settings

__all__ = ["HealthError", "check_health"]


class HealthError(StoreError):
    """The probe failed; the message says which part and why."""


def check_health(settings: Settings, *, url: str | None = None, timeout: float = 5.0) -> list[str]:
    """Run the checks; returns one line per passed check, raises HealthError on the first failure."""
    from store.db import check_schema, connect, describe_url

    passed: list[str] = []
    try:
        engine = connect(settings.database_url, create_dirs=False, pool_size=1)
        try:
            check_schema(engine)
        finally:
            engine.dispose()
    except PipepulseError as exc:
        raise HealthError(f"unhealthy: {exc}") from exc
    passed.append(f"database {describe_url(settings.database_url)}: reachable, schema current")
    if url:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - operator-given URL
                status = resp.status
        except urllib.error.HTTPError as exc:
            raise HealthError(f"unhealthy: {url} answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HealthError(f"unhealthy: {url} did not answer: {reason}") from exc
        if not 200 <= status < 300:
            raise HealthError(f"unhealthy: {url} answered HTTP {status}")
        passed.append(f"{url}: HTTP {status}")
    return passed
