"""The forecast on hand-made spend shapes (issue #16): level shifts, decommission, monthly
charges, one-off charges and incidents, model selection, honesty of the backtest, partial days."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from bench import spend_shapes
from insights import forecast as F
from insights.forecast import CANDIDATES, forecast_daily, rolling_evaluation
from pipepulse.errors import InputError


def series(values, start=date(2026, 1, 5)):
    return pd.Series(values, index=[start + timedelta(days=i) for i in range(len(values))], dtype=float)


def test_a_step_up_is_forecast_from_its_third_day():
    fc = forecast_daily(series([100.0] * 40 + [150.0] * 3), horizon=7)
    assert fc.regime_start == date(2026, 1, 5) + timedelta(days=40)
    assert fc.points["mean"].tolist() == [150.0] * len(fc.points)
    rng = np.random.default_rng(4)
    noisy = np.r_[100 + rng.normal(0, 2, 40), 150 + rng.normal(0, 2, 3)]
    # one day in it is a spike: the forecast stays at the old level; three days in, the new one
    one_day = forecast_daily(series(noisy[:41]), horizon=7).points["mean"]
    assert one_day.between(97, 103).all()
    third_day = forecast_daily(series(noisy), horizon=7)
    assert third_day.points["mean"].between(145, 155).all()
    assert third_day.regime_start == date(2026, 1, 5) + timedelta(days=40)


def test_after_a_decommission_the_forecast_stays_at_or_above_the_regimes_minimum():
    # spend falls to 5% for good; a weekly cycle before it: the old code's additive weekday
    # offsets (-60 at weekends) took the forecast below zero and clipped it to 0.00
    weekly = [100.0, 100, 100, 100, 100, 40, 40] * 6
    fc = forecast_daily(series(weekly + [5.0] * 3), horizon=10)
    assert fc.points["mean"].tolist() == [5.0] * len(fc.points)
    assert (fc.points["lower"] >= 0).all()
    rng = np.random.default_rng(1)
    noisy = np.r_[100 + rng.normal(0, 3, 40), 5 + rng.normal(0, 0.3, 4)]
    fc = forecast_daily(series(noisy), horizon=14)
    regime = noisy[40:]
    assert fc.regime_start == date(2026, 1, 5) + timedelta(days=40)
    assert (fc.points["mean"] >= regime.min()).all() and (fc.points["mean"] <= regime.max()).all()


def test_only_a_history_that_trends_down_is_forecast_below_the_regimes_minimum():
    assert not F._trending_down(np.full(40, 10.0), np.zeros(40, dtype=int)).any()
    falling = 200 * 0.99 ** np.arange(60)
    trend = F._trending_down(falling, np.zeros(60, dtype=int))
    assert not trend[:20].any() and trend[20:].all()  # three falling weeks from day 21
    fc = forecast_daily(series(falling), horizon=7)
    assert fc.points["mean"].iloc[-1] < falling.min()  # the history trends there


def _monthly(fee_days: set[date], *, days: int = 70, start: date = date(2026, 1, 10), noise=None):
    index = [start + timedelta(days=i) for i in range(days)]
    base = np.full(days, 50.0) if noise is None else 50.0 + noise
    return pd.Series([b + (500.0 if d in fee_days else 0.0) for b, d in zip(base, index, strict=True)], index=index)


def test_a_charge_seen_in_two_months_is_forecast_on_that_day_of_the_month_only():
    # 10 Jan .. 20 Mar with a 500 charge on 1 Feb and 1 Mar: forecast 21 Mar .. 19 Apr
    fc = forecast_daily(_monthly({date(2026, 2, 1), date(2026, 3, 1)}), horizon=30)
    p = fc.points.set_index("date")["mean"]
    assert fc.fee_days == (1,) and "monthly charge on day 1" in fc.method
    assert p[date(2026, 4, 1)] == 550.0
    assert (p.drop(date(2026, 4, 1)) == 50.0).all() and len(p) == 30
    rng = np.random.default_rng(2)
    noisy = _monthly({date(2026, 2, 1), date(2026, 3, 1)}, noise=rng.normal(0, 2, 70))
    p = forecast_daily(noisy, horizon=30).points.set_index("date")["mean"]
    assert 545 <= p[date(2026, 4, 1)] <= 557
    assert p.drop(date(2026, 4, 1)).between(48, 52).all()


def test_a_charge_seen_once_is_an_outlier_that_does_not_repeat():
    once = _monthly({date(2026, 2, 1)})
    fc = forecast_daily(once, horizon=30)
    assert fc.fee_days == () and fc.points["mean"].tolist() == [50.0] * 30
    # nor the week after it: from the day of the charge, the next days are ordinary days
    on_the_day = once[once.index <= date(2026, 2, 1)]
    assert forecast_daily(on_the_day, horizon=7).points["mean"].head(7).tolist() == [50.0] * 7


def test_a_two_day_incident_is_not_forecast_for_the_week_after():
    # spend doubles for two days; the forecast issued on the second day stays at the normal
    # level (measured: in 9 of 10 seeds; uncapped selection errors chose last-value in 10)
    rng = np.random.default_rng(0)
    values = 100 + rng.normal(0, 2, 57)
    values[55:57] += 100
    fc = forecast_daily(series(values), horizon=7)
    assert fc.model != "last-value" and fc.points["mean"].between(96, 104).all()


def test_selection_falls_back_to_last_value_on_a_random_walk():
    # where the clever models have nothing to find, last-value is the model chosen at most
    # origins; measured over 10 random walks (bench.spend_shapes): last-value at 62 of 160
    # origins (next: combination 24), MAE 1.067x last-value's
    chosen: list[str] = []
    ratios = []
    for seed in range(10):
        ev = rolling_evaluation(spend_shapes.make("random-walk", seed))
        chosen += ev.groupby("origin")["model"].first().tolist()
        ratios.append((ev["mean"] - ev["actual"]).abs().mean() / (ev["last_value"] - ev["actual"]).abs().mean())
    counts = pd.Series(chosen).value_counts()
    assert counts.index[0] == "last-value" and counts["last-value"] == 62 and len(chosen) == 160
    assert np.mean(ratios) == pytest.approx(1.067, abs=0.001)
    # and the final model of plain Gaussian random walks
    finals = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        finals.append(forecast_daily(series(200 + np.cumsum(rng.normal(0, 5, 120))), horizon=7).model)
    # measured: last-value 4 of 8, the most frequent (before the combination candidate: 5)
    assert finals.count("last-value") == 4 and max(set(finals), key=finals.count) == "last-value"


def test_each_series_gets_its_own_model():
    weekly = spend_shapes.make("weekly-cycle", 1)
    fee = spend_shapes.make("month-start-fee", 0)
    assert forecast_daily(weekly, horizon=7).model in CANDIDATES
    ev_w, ev_f = rolling_evaluation(weekly), rolling_evaluation(fee)
    # the weekly series is forecast by models that know the week, the fee by ones that know
    # the month (or their combination): neither ends on last-value
    assert set(ev_w["model"].iloc[-7:]) <= {"weekly-median", "seasonal-naive", "robust-ets", "combination"}
    assert "last-value" not in set(ev_f["model"].iloc[-14:])


@pytest.mark.parametrize("shape", ["decommission", "month-start-fee", "credits", "incident"])
def test_the_backtest_is_the_forecast_a_user_would_have_seen(shape):
    # the rolling evaluation's forecast from origin t (model, mean, interval) is exactly what
    # forecast_daily gives for the history cut at t: nothing after t was used to choose it
    s = spend_shapes.make(shape, 3)
    ev = rolling_evaluation(s)
    assert ev["origin"].nunique() == 16
    for origin, rows in ev.groupby("origin"):
        fc = forecast_daily(s[s.index <= pd.Timestamp(origin)], horizon=7)
        p = fc.points.head(len(rows))
        assert fc.model == rows["model"].iloc[0]
        np.testing.assert_allclose(p[["mean", "lower", "upper"]].to_numpy(), rows[["mean", "lower", "upper"]].to_numpy())


def test_rolling_evaluation_has_both_simple_forecasts():
    s = series([10.0, 20, 30, 40, 50, 5, 5] * 3 + [7.0])
    ev = rolling_evaluation(s)
    # 22 days: origins day 14 (index 13) and 21 (index 20); 7 + 1 scored days
    assert ev["origin"].tolist() == [date(2026, 1, 18)] * 7 + [date(2026, 1, 25)]
    assert ev["h"].tolist() == [1, 2, 3, 4, 5, 6, 7, 1]
    assert ev["last_value"].tolist() == [5.0] * 7 + [5.0]
    assert ev["seasonal_naive"].tolist() == [10.0, 20, 30, 40, 50, 5, 5, 10]
    assert ev["actual"].tolist() == [10.0, 20, 30, 40, 50, 5, 5, 7]


def test_the_current_day_is_left_out():
    days = 40
    s = series([100.0] * (days - 1) + [12.0])  # today's partial spend: 12 so far
    today = date(2026, 1, 5) + timedelta(days=days - 1)
    fc = forecast_daily(s, horizon=7, today=today)
    assert fc.left_out == (today,) and fc.train_end == today - timedelta(days=1)
    assert fc.points["date"].iloc[0] == today and fc.points["mean"].tolist()[:7] == [100.0] * 7
    # without `today` the partial day reads as a drop (a one-day outlier, not a regime)
    assert forecast_daily(s, horizon=7).train_end == today
    with pytest.raises(InputError, match=r"too short: 13 days \(before 2026-01-18; the current day is left out\)"):
        forecast_daily(series([1.0] * 14), today=date(2026, 1, 18))


def test_combination_weights_follow_each_members_realised_error():
    nan = np.nan
    scores = np.array([
        [2.0, 1.0, 4.0, 1.2, nan, 1.5],  # best 1.0; trim 1.5 keeps 1.0, 1.2, 1.5; weights 1, 1/1.2, 1/1.5
        [0.0, 3.0, 0.0, 1.0, 2.0, nan],  # two exact members share the weight
        [nan] * 6,  # nothing realised yet: no combination
    ])
    w = F.combination_weights(scores, power=1.0, trim=1.5)
    raw = np.array([0, 1, 0, 1 / 1.2, 0, 1 / 1.5])
    assert w[0] == pytest.approx(raw / raw.sum())
    assert w[1].tolist() == [0.5, 0, 0.5, 0, 0, 0]
    assert w[2].tolist() == [0.0] * 6
    # a higher power leans toward the best member; a wide trim lets every eligible member in
    w2 = F.combination_weights(scores[:1], power=2.0, trim=1.5)[0]
    assert w2[1] > w[0][1] and w2[5] < w[0][5]
    wide = F.combination_weights(scores[:1], power=1.0, trim=10.0)[0]
    assert (wide[[0, 1, 2, 3, 5]] > 0).all() and wide[4] == 0 and wide.sum() == pytest.approx(1.0)


def test_the_combination_is_the_weighted_mean_the_backtest_scored():
    # at every origin where the combination is chosen, its forecast is the members' forecasts
    # weighted by their realised errors at that origin (plus a recurring charge in full)
    y = spend_shapes.make("weekly-cycle", 3).to_numpy()
    run = F._pass(y, date(2026, 1, 5), 7, 7)
    combo = CANDIDATES.index("combination")
    base = run.score[:, :combo]
    w = F.combination_weights(base)
    picked = np.nonzero(run.choice == combo)[0]
    assert len(picked) > 5
    for t in picked:
        assert w[t].sum() == pytest.approx(1.0)
        assert run.P[t] == pytest.approx(run.F[t, :, :combo] @ w[t])


@pytest.mark.parametrize("shape", ["step-up", "decommission", "random-walk", "weekly-cycle"])
def test_a_model_is_chosen_only_where_its_realised_error_beats_both_simple_ones(shape):
    # the guarantee by construction, per origin: the chosen candidate's realised error is at
    # most the better simple forecast's (last-value or seasonal-naive)
    y = spend_shapes.make(shape, 2).to_numpy()
    run = F._pass(y, date(2026, 1, 5), 7, 7)
    sc = np.where(np.isnan(run.score), np.inf, run.score)
    scored = np.isfinite(sc).any(axis=1)
    chosen = sc[np.arange(len(y)), run.choice]
    simple = np.minimum(sc[:, 0], sc[:, 1])
    assert scored.sum() > 90
    assert (chosen[scored] <= simple[scored] + 1e-12).all()
    assert set(run.choice[~scored]) == {0}  # last-value until anything has been scored


def test_a_fall_is_followed_on_its_second_day_a_rise_is_not():
    # (seed 1: a series whose own backtest chooses regime-median, not last-value)
    rng = np.random.default_rng(1)
    base = 100 + rng.normal(0, 2, 40)
    fall = np.r_[base, 20 + rng.normal(0, 0.5, 2)]
    fc = forecast_daily(series(fall), horizon=7)
    # two days below: the regime models forecast their level (the regime itself starts on the third)
    assert fc.model == "regime-median" and fc.points["mean"].between(18, 22).all()
    assert fc.regime_start == date(2026, 1, 5)
    rise = np.r_[base, 300 + rng.normal(0, 2, 2)]
    up = forecast_daily(series(rise), horizon=7)
    assert up.model == "regime-median" and up.points["mean"].between(95, 105).all()
    # one day below is an outlier, not a fall
    one = forecast_daily(series(np.r_[base, 20.0]), horizon=7)
    assert one.points["mean"].between(95, 105).all()


def test_weekly_median_needs_three_values_of_the_weekday():
    # a median of two values is their mean: one spike in them (the CUR month's 1 October) moved
    # the weekday's forecast halfway to it; with three, one spike moves nothing
    y = np.r_[160.0, np.full(15, 16.0)]
    run = F._pass(y, date(2026, 1, 5), 7, 7)
    weekly = CANDIDATES.index("weekly-median")
    # origin day 13 forecasts day 14 (the spike's weekday, seen twice: 160 and 16)
    assert run.F[13, 0, weekly] == pytest.approx(16.0)


def test_the_combination_is_scored_from_the_same_origins_as_the_simple_forecasts():
    # a CUR usage type (ActiveConfigRules): zeros, a one-day charge on day 9, zeros. Scored only
    # from its first weights, the combination had skipped the charge's errors, was chosen at the
    # first origin and forecast the charge again a week later (1.0, through seasonal-naive)
    y = np.r_[np.zeros(8), 4.0, np.zeros(22)]
    ev = rolling_evaluation(series(y))
    assert len(ev) == 17 and (ev["mean"] == 0.0).all()
    # before its first weights it is last-value, and those errors weigh COMBO_EARLY_WEIGHT
    run = F._pass(y, date(2026, 1, 5), 7, 7)
    combo = CANDIDATES.index("combination")
    early = (run.weights.sum(axis=1) == 0) & (np.arange(len(y)) >= F.EARLY)
    assert np.nonzero(early)[0].tolist() == [6, 7, 8]
    assert (run.F[early, :, combo] == run.F[early, :, 0]).all()
    # day 9, the first with enough realised errors: all of them from those origins, so its score
    # is last-value's (the weight cancels), charge day included
    assert run.score[9, combo] == pytest.approx(run.score[9, 0]) and run.score[9, 0] > 0
    assert not np.isnan(run.score[9:, combo]).any()
