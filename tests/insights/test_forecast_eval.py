"""bench.forecast_eval's set summary: series where a simple forecast is exact (0/0) are counted
apart, and shown both left out and as ties."""

from __future__ import annotations

import pytest

from bench.forecast_eval import summarise


def row(mae, lv, sn, scale=1.0):
    return {"points": 17, "scale": scale, "mae": mae, "mae_lv": lv, "mae_sn": sn, "inside": 14,
            "width": 1.0, "with_interval": 17, "models": {}, "model_now": "last-value", "bt_points": 10,
            "bt_mae": mae, "bt_mae_lv": lv, "bt_mae_sn": sn, "bt_inside": 8}


def test_exact_series_are_counted_apart_and_shown_as_ties_too():
    scored = {
        "better": row(0.5, 1.0, 2.0),  # 0.5 against last-value
        "worse": row(3.0, 2.0, 4.0),  # 1.5
        "tied": row(1.0, 1.0, 3.0),  # 1.0
        "constant": row(0.0, 0.0, 0.0, scale=5.0),  # exact, and so is ours
        "zeros-after-a-spike": row(0.06, 0.0, 0.2, scale=0.0),  # exact, ours is not
    }
    r = summarise("s", scored)
    assert (r["series"], r["exact"], r["exact_above"]) == (5, 2, 1)
    # over the three series where a simple forecast made errors
    assert (r["below"], r["tie"], r["above"]) == (1, 1, 1)
    assert r["med_best"] == pytest.approx(1.0)
    assert r["points"] == 3 * 17
    # over all five: the exact series a tie, the missed one above
    assert (r["all_below"], r["all_tie"], r["all_above"]) == (1, 2, 2)
    assert r["all_med_best"] == pytest.approx(1.0)
    assert (r["bt_exact"], r["bt_below"], r["bt_tie"], r["bt_above"]) == (2, 1, 1, 1)
