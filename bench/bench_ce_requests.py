"""Cost Explorer requests per collector pass, first and steady state, against the minimum.

    python -m bench.bench_ce_requests [--days 90] [--services 12] [--regions 4] [--usage-types 5]
                                      [--pipelines 6] [--page-size 500] [--restate-days 3]

A local AWS (moto + the Cost Explorer stand-in) is loaded with ``--days`` of daily line items
over services x regions x usage types x pipelines; the ``ce`` collector runs through the runner
into a fresh SQLite database:

1. first pass (backfill ``--days`` days, and at least the month so far),
2. a second pass six hours later with nothing new (steady state, same day),
3. a pass the next day (steady state, new day).

The minimum for a pass is, per query shape (SERVICE+REGION, SERVICE+USAGE_TYPE, SERVICE+TAG),
ceil(groups over the window / page size) requests (a day without groups still takes a slot;
``collectors.costexplorer.minimum_requests``), plus one GetCostForecast on the first pass of a
UTC day. Requests are counted twice, by the collector and by the stand-in, and must agree.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, date, datetime, timedelta

import pandas as pd

PRICE = 0.01  # USD per Cost Explorer request


def line_items(end: date, days: int, services: int, regions: int, usage_types: int, pipelines: int) -> pd.DataFrame:
    rows = []
    region_names = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2", "eu-central-1", "sa-east-1"][:regions]
    for d in range(days + 2):
        day = end - timedelta(days=d)
        for s in range(services):
            for r, region in enumerate(region_names):
                for u in range(usage_types):
                    for p in range(pipelines + 1):  # + untagged
                        if (s + r + u + p + d) % 3 == 0:  # not every combination every day
                            continue
                        rows.append({
                            "date": day, "service": f"Service {s:02d}", "region": region, "usage_type": f"{region}-Usage{u}",
                            "tags": {"pipeline": f"pipeline-{p}"} if p < pipelines else {},
                            "unblended_cost": round(0.01 * (1 + s) * (1 + u) * (1 + (d % 7)), 4),
                        })
    return pd.DataFrame(rows)


def units(items: pd.DataFrame, start: date, end: date) -> dict[str, int]:
    """Groups per query shape over [start, end), counting an empty day as one."""
    window = items[(items["date"] >= start) & (items["date"] < end)].copy()
    window["tag"] = window["tags"].map(lambda t: t.get("pipeline", ""))
    days = (end - start).days
    out = {}
    for shape, second in (("region", "region"), ("usage", "usage_type"), ("pipeline", "tag")):
        per_day = window.groupby("date")[["service", second]].apply(lambda f: len(f.drop_duplicates()))
        out[shape] = int(per_day.sum()) + (days - len(per_day))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--services", type=int, default=12)
    ap.add_argument("--regions", type=int, default=4)
    ap.add_argument("--usage-types", type=int, default=5)
    ap.add_argument("--pipelines", type=int, default=6)
    ap.add_argument("--page-size", type=int, default=500)
    ap.add_argument("--restate-days", type=int, default=3)
    args = ap.parse_args()

    import os

    from collectors.costexplorer import minimum_requests
    from collectors.runner import collect
    from devkit.localaws import LocalAWS
    from devkit.localaws.costexplorer import CostExplorerStandIn
    from pipepulse.settings import load_settings
    from store.db import connect, upgrade

    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    today = now.date()
    server = LocalAWS().start()
    try:
        standin = server.app(CostExplorerStandIn)
        standin.configure(today=today, page_size=args.page_size)
        items = line_items(today + timedelta(days=1), args.days + 30, args.services, args.regions, args.usage_types, args.pipelines)
        standin.load_line_items(items)
        with tempfile.TemporaryDirectory() as tmp:
            config = f"{tmp}/pipepulse.toml"
            with open(config, "w") as fh:
                fh.write(f'[collectors]\nsources = ["ce"]\n[collectors.ce]\nbackfill_days = {args.days}\nrestate_days = {args.restate_days}\n')
            env = {"PIPEPULSE_DATABASE_URL": f"sqlite:///{tmp}/bench.db", "AWS_ENDPOINT_URL": server.endpoint}
            for k, v in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}.items():
                os.environ.setdefault(k, v)
            settings = load_settings(env, config_path=config)
            engine = connect(settings.database_url)
            upgrade(engine)
            passes = [
                ("first pass", now, min(today + timedelta(days=1) - timedelta(days=args.days), today.replace(day=1)), True),
                ("again, 6 h later", now + timedelta(hours=6), today + timedelta(days=1) - timedelta(days=args.restate_days), False),
                ("next day", now + timedelta(days=1), today + timedelta(days=1) - timedelta(days=args.restate_days), True),
            ]
            print(f"{items['date'].nunique()} days of line items, {len(items):,} items; page size {args.page_size}")
            print(f"{'pass':<18}{'window':>24}{'requests':>10}{'minimum':>9}{'ratio':>7}{'USD':>7}{'rows':>8}")
            for label, at, start, forecast in passes:
                end = at.date() + timedelta(days=1)
                standin.requests.clear()
                [result] = collect(settings, engine, now=at)
                assert result.ok, result.error
                minimum = minimum_requests(units(items, start, end), page_size=args.page_size) + (1 if forecast else 0)
                made = result.api_calls
                assert made == sum(standin.requests.values()), (made, dict(standin.requests))
                window = f"{start}..{end - timedelta(days=1)}"
                print(f"{label:<18}{window:>24}{made:>10}{minimum:>9}{made / minimum:>7.2f}{made * PRICE:>7.2f}{result.rows_written:>8}")
            engine.dispose()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
