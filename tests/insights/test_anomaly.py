"""The online detector on small hand-made series with exact expectations."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from insights.anomaly import (
    INTRADAY_RECORD_MARGIN,
    RECORD,
    DetectorConfig,
    events,
    fingerprint,
    outside_text,
    planned_mask,
    reason,
    scan,
    scan_frame,
    scan_matrix,
    severity_of,
)
from insights.rootcause import root_cause


def five_minute(days: int = 6, seed: int = 1, level: float = 10.0, noise: float = 0.5):
    n = days * 288
    ts = pd.date_range("2026-11-01", periods=n, freq="5min", tz="UTC")
    x = level + np.random.default_rng(seed).normal(0, noise, n)
    return ts, x


def daily_cost(days: int = 60, level: float = 0.10, seed: int = 3):
    ts = pd.date_range("2026-09-01", periods=days, freq="D", tz="UTC")
    x = level + np.random.default_rng(seed).normal(0, level * 0.02, days)
    return ts, x


def test_daily_batch_spike_with_jitter_is_seasonal_not_anomalous():
    ts, x = five_minute()
    hours = ts.hour + ts.minute / 60
    for day, jitter_min in enumerate([0, 5, -5, 10, 0, -10]):
        on = (ts.day == 1 + day) & (hours >= 3 + jitter_min / 60) & (hours < 3 + (jitter_min + 10) / 60)
        x[on] += 30.0  # a ten-minute batch job around 03:00, +-10 minutes
    r = scan(x, ts)
    assert np.flatnonzero(r.anomalous).tolist() == []
    # the same ten-minute bump at an hour it never happens is an anomaly
    y = x.copy()
    y[5 * 288 + 17 * 12 : 5 * 288 + 17 * 12 + 2] += 30.0
    r2 = scan(y, ts)
    assert np.flatnonzero(r2.is_anomaly).tolist() == [5 * 288 + 17 * 12]


def test_spike_is_flagged_at_its_point_once():
    ts, x = five_minute()
    x[1500] += 8.0
    r = scan(x, ts)
    assert np.flatnonzero(r.is_anomaly).tolist() == [1500]
    assert r.score[1500] > 0.5
    assert r.score[1400] < 0.5
    assert r.expected[1500] == pytest.approx(10.0, abs=0.5)


def test_level_shift_is_flagged_then_learnt_as_the_new_normal():
    ts, x = five_minute()
    x[1500:] += 5.0
    r = scan(x, ts)
    flagged = np.flatnonzero(r.anomalous)
    assert np.flatnonzero(r.is_anomaly).tolist() == [1500]  # one report
    assert flagged[0] == 1500
    # the point and the 2-hour mean follow the new level within hours; the seasonal path, for
    # which this time of day has never looked like this, until the envelope's window has passed
    assert set(r.cause[r.anomalous]) == {1, -24}
    assert flagged[-1] == 1667
    assert not r.anomalous[1668:].any()
    assert r.expected[1700] == pytest.approx(15.0, abs=0.5)


def test_forty_cents_on_a_ten_cent_line_is_not_an_anomaly():
    ts, x = daily_cost()
    x[50] = 0.50  # +$0.40: five times the line, but forty cents
    floored = scan(x, ts, DetectorConfig.for_step(86400, abs_floor=1.0, rel_floor=0.2))
    assert np.flatnonzero(floored.anomalous).tolist() == []
    # the floor is what keeps it quiet: without it the jump is (relatively) huge
    bare = scan(x, ts, DetectorConfig.for_step(86400))
    assert np.flatnonzero(bare.is_anomaly).tolist() == [50]
    # and a real jump on a real line alerts with the same floors
    big = x * 100  # a $10 line, +$40
    assert np.flatnonzero(scan(big, ts, DetectorConfig.for_step(86400, abs_floor=1.0, rel_floor=0.2)).is_anomaly).tolist() == [50]


def test_planned_window_is_not_an_anomaly():
    ts, x = five_minute()
    x[1500:1506] += 8.0
    frame = pd.DataFrame({"timestamp": ts, "value": x})
    out = scan_frame(frame, planned=[(ts[1495].to_pydatetime(), ts[1510].to_pydatetime())])
    assert out["anomalous"].sum() == 0
    assert out["is_anomaly"].sum() == 0
    assert out["score"].iloc[1500] < 0.5
    # the same incident outside the window alerts
    plain = scan_frame(frame)
    assert plain.index[plain["is_anomaly"] == 1].tolist() == [1500]
    assert planned_mask(ts[1494:1497], [(ts[1495], ts[1510])]).tolist() == [False, True, True]


def test_an_earlier_incident_is_not_learnt_the_second_is_still_flagged():
    ts, x = five_minute(days=7)
    first, second = 2 * 288 + 14 * 12, 4 * 288 + 14 * 12  # 14:00 on day 3 and day 5
    for start in (first, second):
        x[start : start + 12] += 6.0
    r = scan(x, ts)
    assert np.flatnonzero(r.is_anomaly).tolist() == [first, second]
    assert r.score[second] > 0.5 and r.score[first] > 0.5


def test_online_a_prefix_scans_exactly_the_same(shared_dir):
    path = shared_dir / "data" / "nab-aws" / "data" / "ec2_cpu_utilization_24ae8d.csv"
    frame = pd.read_csv(path)
    ts = pd.to_datetime(frame["timestamp"], utc=True)
    full = scan(frame["value"].to_numpy(), ts)
    for cut in (300, 1777, 3548, 4000):
        part = scan(frame["value"].to_numpy()[:cut], ts[:cut])
        np.testing.assert_array_equal(part.score, full.score[:cut])
        np.testing.assert_array_equal(part.is_anomaly, full.is_anomaly[:cut])
        np.testing.assert_array_equal(part.anomalous, full.anomalous[:cut])
    # changing the future never changes the past
    future = frame["value"].to_numpy().copy()
    future[3000:] = 1e6
    moved = scan(future, ts)
    np.testing.assert_array_equal(moved.score[:3000], full.score[:3000])
    assert full.is_anomaly.sum() > 0


def test_matrix_scan_equals_one_by_one():
    ts, a = five_minute(days=3, seed=5)
    _, b = five_minute(days=3, seed=6)
    b[700] += 9
    cfg = DetectorConfig.for_step(300)
    both = scan_matrix(np.vstack([a, b]), ts, cfg)
    for i, x in enumerate((a, b)):
        one = scan(x, ts, cfg)
        np.testing.assert_array_equal(both.score[i], one.score)
        np.testing.assert_array_equal(both.is_anomaly[i], one.is_anomaly)
    assert both.is_anomaly[1][700] and both.cause[1][700] == 1


def test_events_severity_and_fingerprint():
    ts, x = five_minute()
    x[1500:1503] += 30.0
    out = scan_frame(pd.DataFrame({"timestamp": ts, "value": x}))
    evs = events(out, gap=12)
    assert len(evs) == 1
    ev = evs[0]
    assert ev.window_start == ts[1500]
    assert ev.direction == "up"
    assert ev.severity == "critical"
    assert ev.observed == pytest.approx(x[1500:1503].max())
    assert [severity_of(r) for r in (1.1, 2.0, 4.0, 9.0, float("inf"))] == ["low", "medium", "high", "critical", "critical"]
    a = fingerprint("metric", "cpu", ts[1500].to_pydatetime())
    assert a == fingerprint("metric", "cpu", ts[1510].to_pydatetime())  # same day bucket
    assert a != fingerprint("metric", "cpu", (ts[1500] + pd.Timedelta(days=1)).to_pydatetime())
    assert a != fingerprint("cost", "cpu", ts[1500].to_pydatetime())


def test_direction_and_config_validation():
    ts, x = five_minute()
    x[1500] -= 8.0
    assert scan(x, ts, DetectorConfig.for_step(300, direction="up")).is_anomaly.sum() == 0
    assert np.flatnonzero(scan(x, ts, DetectorConfig.for_step(300, direction="down")).is_anomaly).tolist() == [1500]
    with pytest.raises(ValueError, match="direction"):
        DetectorConfig(direction="sideways")
    with pytest.raises(ValueError, match="finite"):
        scan([1.0, float("nan")], ts[:2])
    daily = DetectorConfig.for_step(86400)
    assert daily.period_seconds == 7 * 86400 and daily.scales == (1,)


def test_root_cause_ranks_the_service_that_moved_the_most_dollars_first():
    rows = []
    start = date(2026, 10, 1)
    for i in range(15):
        day = start + timedelta(days=i)
        last = i == 14
        rows += [
            {"day": day, "service": "Amazon S3", "region": "us-east-1", "billed_cost": 10.0},
            {"day": day, "service": "AWS Glue", "region": "us-east-1", "billed_cost": 45.0 if last else 5.0},
            {"day": day, "service": "AWS Lambda", "region": "eu-west-1", "billed_cost": 3.0 if last else 1.0},
        ]
    causes = root_cause(pd.DataFrame(rows), start + timedelta(days=14), dimensions=("service", "region"))
    assert [(c["dimension"], c["value"], c["impact"]) for c in causes] == [
        ("region", "us-east-1", 40.0),
        ("service", "AWS Glue", 40.0),
        ("region", "eu-west-1", 2.0),
        ("service", "AWS Lambda", 2.0),
    ]
    services = [c for c in causes if c["dimension"] == "service"]
    assert services[0]["value"] == "AWS Glue" and services[0]["expected"] == 5.0 and services[0]["observed"] == 45.0


def test_root_cause_leaves_out_a_dimension_with_one_value():
    start = date(2026, 10, 1)
    rows = [
        {"day": start + timedelta(days=i), "service": s, "region": "us-east-1", "billed_cost": c * (3 if i == 14 and s == "AWS Glue" else 1)}
        for i in range(15)
        for s, c in (("AWS Glue", 5.0), ("Amazon S3", 10.0))
    ]
    causes = root_cause(pd.DataFrame(rows), start + timedelta(days=14))
    assert [(c["dimension"], c["value"], c["impact"]) for c in causes] == [("service", "AWS Glue", 10.0)]


def test_a_weekly_gate_keeps_quiet_weekends_normal_and_a_real_drop_flagged():
    # six weeks of an hourly pipeline's records per run, weekends 30% quieter; on the last
    # Friday three hours load half of what they should (earlier in the week the learned
    # threshold still holds Monday's step up from the weekend, which is as large)
    ts = pd.date_range("2026-09-07", periods=42 * 24, freq="h", tz="UTC")  # a Monday
    dow, hour = ts.day_of_week.to_numpy(), ts.hour.to_numpy()
    rng = np.random.default_rng(0)
    x = np.where(dow >= 5, 0.7, 1.0) * 3000 * rng.lognormal(0, 0.06, len(ts))
    drop = np.flatnonzero((dow == 4) & (hour >= 10) & (hour < 13))[-3:]
    x[drop] *= 0.5
    later = ts >= ts[0] + pd.Timedelta(days=14)  # after the first weekend seen

    def flags(config):
        return [ts[i] for i in np.flatnonzero(scan(x, ts, config).is_anomaly) if later[i]]

    # with yesterday as the only season, a weekend's first hours look like a drop
    daily_only = flags(DetectorConfig.for_runs(3600))
    assert len([t for t in daily_only if t.day_of_week in (5, 6, 0)]) >= 2
    # with last weeks' same hours as well, they are normal; the real drop still is not
    assert flags(DetectorConfig.for_runs(3600, also_periods=(7 * 86_400.0,))) == [ts[drop[0]]]
    with pytest.raises(ValueError, match="also_periods"):
        DetectorConfig(also_periods=(0.0,))


# the window-mean and seasonal paths on their own (the record path off: a new highest point
# inside the shifted hour would be reported first)
HOURLY_MEAN = dict(seconds={"scale": 3600, "baseline": 3600, "history": 3 * 86400, "warmup": 86400}, quantile=0.99, sensitivity=2.0,
                   record_margin=None)


def test_a_window_mean_flags_a_shift_no_single_point_shows_and_says_so():
    ts, x = five_minute()
    x[1500:1524] += 1.0  # two hours one noise-width up: no point stands out, the hour's mean does
    cfg = DetectorConfig.for_step(300, **HOURLY_MEAN, season_sensitivity=None)
    out = scan_frame(pd.DataFrame({"timestamp": ts, "value": x}), cfg)
    assert out.index[out["is_anomaly"] == 1].tolist() == [1506]
    assert set(out.loc[out["anomalous"], "cause"]) == {12}
    (ev,) = events(out, gap=cfg.suppress, config=cfg)
    assert ev.window_start == ts[1506] and ev.direction == "up"
    assert ev.reason == "the mean of the last 1 h is above its band around the median of the 2 h before it"
    # what is reported is what was judged: the hour's mean, outside its band
    assert ev.observed == pytest.approx(11.4367, abs=1e-4) and ev.upper == pytest.approx(10.6407, abs=1e-4)
    assert outside_text(ev.observed, ev.lower, ev.upper) == "0.7959 above the upper edge 10.64"
    # a point that is not anomalous is shown against its own band
    calm = out.iloc[1400]
    assert calm["cause"] == 0 and calm["judged"] == calm["value"] and calm["lower"] < calm["expected"] < calm["upper"]


def test_the_seasonal_path_finds_a_missing_daily_peak():
    ts, x = five_minute(days=7, noise=0.3)
    hour = ts.hour.to_numpy()
    x[(hour >= 12) & (hour < 14)] += 5.0  # a daily two-hour peak ...
    x[(ts.day == 7) & (hour >= 12) & (hour < 14)] -= 5.0  # ... that does not come on day 7
    with_path = DetectorConfig.for_step(300, **HOURLY_MEAN, season_sensitivity=2.0)
    out = scan_frame(pd.DataFrame({"timestamp": ts, "value": x}), with_path)
    # day 7, 13:05: a job may run an hour early or late (the envelope's window), so the peak is
    # missed once its first hour has passed without it
    assert out.index[out["is_anomaly"] == 1].tolist() == [6 * 288 + 13 * 12 + 1]
    (ev,) = events(out, gap=with_path.suppress, config=with_path)
    assert ev.direction == "down" and ev.severity == "critical"
    assert ev.reason == "the mean of the last 1 h is below its band around the same time of day on earlier days"
    # the local baseline sees a flat day as normal: without the seasonal path nothing is flagged
    assert scan(x, ts, replace(with_path, season_sensitivity=None)).is_anomaly.sum() == 0


def test_a_value_beyond_every_earlier_one_is_flagged_by_the_record_path_after_its_warm_up():
    ts, x = five_minute()
    t = 5 * 288 + 100  # day 6
    hi, lo = x[:t].max(), x[:t].min()
    x[t] = hi + 2 * INTRADAY_RECORD_MARGIN * (hi - lo)  # above every earlier value, well inside its local band
    cfg = DetectorConfig.for_step(300)
    out = scan_frame(pd.DataFrame({"timestamp": ts, "value": x}), cfg)
    assert out.index[out["is_anomaly"] == 1].tolist() == [t]
    assert out.loc[t, "cause"] == RECORD
    # its band is the range seen before it, widened by the margin (3%) of that range
    m = INTRADAY_RECORD_MARGIN
    assert out.loc[t, "expected"] == pytest.approx(hi) and out.loc[t, "upper"] == pytest.approx(hi + m * (hi - lo))
    assert out.loc[t, "lower"] == pytest.approx(lo - m * (hi - lo))
    (ev,) = events(out, gap=cfg.suppress, config=cfg)
    assert ev.reason == "the value is above its band around the highest value seen before it"
    assert ev.ratio == pytest.approx(2.0) and ev.severity == "medium"  # twice the margin past the edge
    # without the record path the point is within its local band
    assert scan(x, ts, replace(cfg, record_margin=None)).is_anomaly.sum() == 0
    # the same record on day 3, inside the record path's four-day warm-up, is not flagged
    ts, y = five_minute()
    u = 2 * 288 + 100
    hi, lo = y[:u].max(), y[:u].min()
    y[u] = hi + 0.15 * (hi - lo)
    assert scan(y, ts, cfg).is_anomaly.sum() == 0
    # a value below every earlier one is a record too; a spike that another path flags is
    # explained by that path (its local band), not by the range
    ts, z = five_minute()
    z[t] = z[:t].min() - 0.15 * (z[:t].max() - z[:t].min())
    z[t + 150] += 8.0
    r = scan(z, ts, cfg)
    assert np.flatnonzero(r.is_anomaly).tolist() == [t, t + 150]
    assert r.cause[t] == RECORD and r.cause[t + 150] == 1
    assert reason(RECORD, "down", step_seconds=300) == "the value is below its band around the lowest value seen before it"


def test_reason_and_outside_text_in_words():
    assert reason(0, "up", step_seconds=300) == ""
    assert reason(1, "down", step_seconds=3600) == "the value is below its band around the median of the points before it"
    assert reason(12, "up", step_seconds=300, config=DetectorConfig.for_step(300, seconds={"baseline": 3 * 3600})) == (
        "the mean of the last 1 h is above its band around the median of the 3 h before it")
    assert reason(-36, "up", step_seconds=300) == "the mean of the last 3 h is above its band around the same time of day on earlier days"
    assert outside_text(50.0, 80.0, 120.0) == "30 below the lower edge 80"
    assert outside_text(100.0, 80.0, 120.0) == ""
    assert outside_text(float("nan"), 80.0, 120.0) == "" and outside_text(None, 80.0, 120.0) == ""


def test_a_weekly_gate_with_one_earlier_week_is_not_a_zero_width_band():
    """What `pipepulse detect` reads: 14 days of an hourly run metric, judged after a week's
    warm-up, so every judged hour has one earlier week. One week gives no spread across weeks;
    the gate then borrows the daily gate's spread, so the second Saturday's quiet hours a few
    percent below the first Saturday's are normal (they were flagged), and a real drop is not."""
    from jobs.detect import WEEK, _week_of

    ts = pd.date_range("2026-11-23", periods=14 * 24, freq="h", tz="UTC")  # a Monday
    dow, hour = ts.day_of_week.to_numpy(), ts.hour.to_numpy()
    rng = np.random.default_rng(3)
    x = np.where(dow >= 5, 0.8, 1.0) * 1600 * rng.lognormal(0, 0.03, len(ts))
    second = ts >= ts[0] + pd.Timedelta(days=7)
    quiet = np.flatnonzero(second & (dow == 5) & (hour >= 3) & (hour < 6))
    x[quiet] = 0.96 * x[~second & (dow == 5)].min()  # 4% below anything the first Saturday showed
    config = DetectorConfig.for_runs(3600, also_periods=(WEEK,), warmup=_week_of(3600))
    assert not scan(x, ts, config).is_anomaly[second].any()
    drop = np.flatnonzero(second & (dow == 3) & (hour >= 10) & (hour < 13))
    y = x.copy()
    y[drop] *= 0.5
    found = np.flatnonzero(scan(y, ts, config).is_anomaly)
    assert found.tolist() == [drop[0]]
