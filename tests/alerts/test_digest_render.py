"""What the digest says about the month's spend and how many items are new, in the subject, the
HTML part and the text part alike (rendered straight from a hand-made context, no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from alerts.collect import Context, Item, Spend
from alerts.render import render_digest

T = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def _context(month_to_date: float, forecast: float, budget: float = 2600.0) -> Context:
    spend = Spend(month="2026-12", month_to_date=month_to_date, forecast_mean=forecast, forecast_lower=None,
                  forecast_upper=None, budget=budget, budget_cross_day=None, daily=[], link="http://x/costs")
    return Context(period="daily", start=T - timedelta(days=1), end=T, dashboard_url="http://x", currency="USD",
                   summary=pd.DataFrame(), spend=spend)


def _heading(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("Spend in December 2026:"))


@pytest.mark.parametrize(
    ("month_to_date", "forecast", "subject", "heading"),
    [
        # the demo's month: $619 spent of $2,600, only the forecast month end ($2,808) is over
        (619.0, 2808.0, "pipepulse daily: all clear, spend forecast 8% over budget",
         "Spend in December 2026: forecast to end the month 8% over budget"),
        # past the budget already, and heading further over
        (2808.0, 3250.0, "pipepulse daily: all clear, spend already 8% over budget",
         "Spend in December 2026: already 8% over budget; forecast to end the month 25% over"),
        (619.0, 2470.0, "pipepulse daily: all clear, spend on track",
         "Spend in December 2026: on track (forecast month end 5% under budget)"),
    ],
)
def test_spend_says_whether_the_budget_is_passed_or_only_forecast_to_be(month_to_date, forecast, subject, heading):
    out = render_digest([], _context(month_to_date, forecast))
    assert out.subject == subject
    assert _heading(out.text) == heading
    assert f"{heading.removeprefix('Spend in December 2026: ')}</b>" in out.html
    assert f"<h1 style='font-size:20px;margin:4px 0 6px'>{subject.split(': ', 1)[1]}</h1>" in out.html


def _anomaly(key: str, window_end: datetime) -> Item:
    return Item(rule="anomalies", kind="anomalies", key=key, version="1|high", severity="high", title=f"anomaly {key}",
                link=f"http://x/anomalies?fp={key}", at=window_end,
                fields={"window_start": window_end - timedelta(hours=1), "window_end": window_end})


def test_only_new_items_are_counted_as_new():
    news = [_anomaly(f"new{i}", T - timedelta(hours=2 + i)) for i in range(2)]
    older = [_anomaly(f"old{i}", T - timedelta(days=3 + i)) for i in range(3)]
    out = render_digest(news + older, _context(619.0, 2400.0))
    intro = f"{len(news)} new items, most urgent first."
    assert out.text.splitlines()[2] == intro
    assert f"{intro} <a " in out.html
    assert f"Still open anomalies ({len(older)})" in out.html and f"STILL OPEN ANOMALIES ({len(older)})" in out.text
    assert out.subject == f"pipepulse daily: {len(news)} anomalies, {len(older)} older anomalies open, spend on track"

    only_older = render_digest(older, _context(619.0, 2400.0))
    assert only_older.text.splitlines()[2] == "Nothing new needs your attention."
