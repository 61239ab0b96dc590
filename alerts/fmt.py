"""Number and time formats shared by item titles and the rendered digest."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["money", "when"]


def money(value: float | None, currency: str = "USD") -> str:
    """``$2,734``, ``$45.80``, ``-$3.10``; ``1,250 EUR`` for other currencies; ``n/a`` for None.

    Cents only below 100: a month-end forecast of $2,734.18 reads better without them.
    """
    if value is None:
        return "n/a"
    sign = "-" if value < 0 else ""
    v = abs(value)
    text = f"{v:,.0f}" if v >= 100 else f"{v:,.2f}"
    return f"{sign}${text}" if currency == "USD" else f"{sign}{text} {currency}"


def when(ts: datetime | None) -> str:
    """``Fri 20 Nov 04:45 UTC``."""
    return ts.astimezone(UTC).strftime("%a %d %b %H:%M UTC") if ts else "unknown time"
