"""The LOCO search's options: more starts find an optimum the first climb cannot reach, the
neighbour-averaged objective prefers a flat optimum to a higher, isolated one, and the
drop-one objective prefers a configuration that does not owe its score to one category."""

from dataclasses import dataclass

import numpy as np
import pytest

from bench import nab_loco as L

# only the sensitivity is searched; on its ladder (0.6 ... 1.2, 1.35, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0 ...)
# the coarse grid (1.0, 1.5, 2.5, 4.0) sees 2.5 best and 1.5 second; two ladder steps below 1.5
# is an isolated peak (1.2: 20, its neighbours 0), out of reach of a climb from 2.5, whose
# neighbours (2.0, 3.0) are nearly as good as it
LANDSCAPE = {1.2: 20.0, 1.5: 2.0, 2.0: 8.0, 2.5: 10.0, 3.0: 8.0, 4.0: 1.0}
START = L.Knobs(scale=L.HOUR, baseline=L.HOUR, history=14 * L.DAY, suppress=6 * L.HOUR, quantile=1.0,
                sensitivity=1.0, margin=3.0, season=1.0, record=0.03)


@dataclass
class _Series:
    category: str


class _FakeEvaluator:
    series = [_Series("a"), _Series("b")]

    def scores(self, k: L.Knobs) -> np.ndarray:
        return np.full((2, 4), LANDSCAPE.get(k.sensitivity, 0.0))


@pytest.fixture
def landscape(monkeypatch):
    held = {n: getattr(START, n) for n in L.LADDER if n != "sensitivity"}
    monkeypatch.setattr(L, "FIXED", held)
    monkeypatch.setattr(L, "objective", lambda table, cats: float(table[0, 0]))
    return _FakeEvaluator()


@pytest.mark.parametrize(("starts", "smooth", "sensitivity", "value"), [
    (1, False, 2.5, 10.0),  # one climb from the coarse best stays on its hill
    (2, False, 1.2, 20.0),  # the second start reaches the isolated peak
    (2, True, 2.5, 26 / 3),  # averaged with its neighbours the peak is worth 20/3 < (10 + 8 + 8)/3
])
def test_stage_two_starts_and_smoothing(landscape, monkeypatch, starts, smooth, sensitivity, value):
    monkeypatch.setattr(L, "STARTS", starts)
    monkeypatch.setattr(L, "SMOOTH", smooth)
    trail: list[L.Knobs] = []
    k, v = L.search(landscape, [0, 1], log=lambda m: None, trail=trail)
    assert k.sensitivity == sensitivity
    # the choice after each start: the first is what one start returns
    assert len(trail) == starts and trail[-1] == k and trail[0].sensitivity == 2.5
    assert v == pytest.approx(value)
    assert {n: getattr(k, n) for n in L.FIXED} == L.FIXED  # the held knobs stay held


def test_neighbours_one_ladder_step_of_each_searched_knob(monkeypatch):
    monkeypatch.setattr(L, "FIXED", {n: getattr(START, n) for n in L.LADDER if n not in ("sensitivity", "quantile")})
    got = L.neighbours(START)
    assert got[0] == START
    # sensitivity 1.0 has both neighbours on its ladder (0.9, 1.1); quantile 1 is the ladder's end (0.999 only)
    assert sorted((k.sensitivity, k.quantile) for k in got[1:]) == [(0.9, 1.0), (1.0, 0.999), (1.1, 1.0)]


class _ThreeCategories:
    series = [_Series("a"), _Series("b"), _Series("c")]
    # sensitivity 1.5 scores on category a only (mean 10), 2.5 on every category (mean 8)
    per_file = {1.5: [30.0, 0.0, 0.0], 2.5: [8.0, 8.0, 8.0]}

    def scores(self, k: L.Knobs) -> np.ndarray:
        out = np.zeros((3, 4))
        out[:, 0] = self.per_file.get(k.sensitivity, [0.0, 0.0, 0.0])
        return out


@pytest.mark.parametrize(("drop_one", "sensitivity", "value"), [(False, 1.5, 10.0), (True, 2.5, 8.0)])
def test_drop_one_objective(monkeypatch, drop_one, sensitivity, value):
    monkeypatch.setattr(L, "FIXED", {n: getattr(START, n) for n in L.LADDER if n != "sensitivity"})
    monkeypatch.setattr(L, "objective", lambda table, cats: float(table[:, 0].mean()))
    monkeypatch.setattr(L, "DROP_ONE", drop_one)
    k, v = L.search(_ThreeCategories(), [0, 1, 2], log=lambda m: None)
    assert (k.sensitivity, v) == (sensitivity, pytest.approx(value))
