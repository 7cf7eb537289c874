"""Anomaly judgement: hand-computed scores and bands, the minimum history, the settings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecaster import ForecasterConfig, OnlineForecaster
from forecaster.anomaly import AnomalyJudge, Judgement
from forecaster.core.anomaly import commit_tails, judge

# Four bins of z: [0, 1), [1, 2), [2, 4), [4, inf).
EDGES = np.array([0.0, 1.0, 2.0, 4.0, math.inf])
HALF, YHAT = 2.0, 10.0  # the forecast judged: 10 ± 2 (its interval)


def distribution(level: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
    """Tails and band width of 4, 3, 2, 1 past errors in the four bins, at ``level``."""
    pending = np.array([[4.0, 3.0, 2.0, 1.0]])
    hist, tails, zq = np.zeros((1, 4)), np.zeros((1, 4)), np.zeros(1)
    commit_tails(pending, hist, 0.5, level, EDGES, tails, zq)
    return tails, zq


def judged(
    value: float, count: int, min_scored: int = 3, beyond: float = 2.0
) -> tuple[Judgement, np.ndarray]:
    """One event of a one-step model with ``count`` events before it, judged at step 1."""
    tails, zq = distribution()
    pend_yhat, pend_half = np.full((1, 1, 1), YHAT), np.full((1, 1, 1), HALF)
    errors = np.array([[value - YHAT]])
    pending = np.zeros((1, 4))
    out = Judgement.buffers(1)
    one = np.zeros(1, np.int64)
    judge(one, one, np.array([count]), errors, pend_yhat, pend_half, one, EDGES, tails, zq,
          min_scored, beyond, pending, *out)  # fmt: skip
    return Judgement.of(out), pending[0]


def test_the_tails_and_the_band_width_by_hand() -> None:
    tails, zq = distribution()
    assert tails.tolist() == [[10.0, 6.0, 3.0, 1.0]]
    # T(z) = (1 - 0.75) * (1 + 10) - 1 = 1.75 lies in [2, 4), where T falls from 3 to 1:
    # z = 2 + 2 * (3 - 1.75) / (3 - 1) = 3.25 half-widths.
    assert zq.tolist() == [3.25]
    pending = np.array([[1.0, 0.0, 0.0, 0.0]])
    hist = np.array([[4.0, 3.0, 2.0, 1.0]])
    commit_tails(pending, hist, 0.5, 0.75, EDGES, tails, zq)  # halved, plus one
    assert hist.tolist() == [[3.0, 1.5, 1.0, 0.5]] and pending.tolist() == [[0.0] * 4]
    # total 6: T = 0.25 * 7 - 1 = 0.75 in [2, 4) (from 1.5 to 0.5): 2 + 2 * 0.75 = 3.5
    assert zq.tolist() == [3.5]


def test_a_value_inside_its_band_scores_low_and_is_not_flagged() -> None:
    got, pending = judged(12.0, count=5)  # error 2 = one half-width: z = 1
    # T(1) = 6 past errors at or above it: score 1 - (1 + 6) / (1 + 10)
    assert got.score.tolist() == [1.0 - 7.0 / 11.0]
    assert got.flag.tolist() == [False] and got.step.tolist() == [1]
    assert [got.yhat[0], got.lower[0], got.upper[0]] == [10.0, 10.0 - 6.5, 10.0 + 6.5]
    assert pending.tolist() == [0.0, 1.0, 0.0, 0.0]  # counted in [1, 2)


def test_a_value_on_the_edge_of_its_band_scores_the_level_and_is_not_flagged() -> None:
    got, _ = judged(16.5, count=5)  # z = 3.25: T = 1 + 2 * 0.75 / 2 = 1.75
    assert got.score.tolist() == [0.75]
    assert got.flag.tolist() == [False]  # on the edge is inside, as for the intervals


def test_a_value_outside_its_band_is_flagged_on_either_side() -> None:
    above, pending = judged(17.0, count=5)  # z = 3.5: T = 1 + 2 * 0.5 / 2 = 1.5
    assert above.score.tolist() == [1.0 - 2.5 / 11.0]
    assert above.flag.tolist() == [True] and above.step.tolist() == [1]
    assert pending.tolist() == [0.0, 0.0, 1.0, 0.0]
    below, pending = judged(-30.0, count=5)  # z = 20, in the open bin: all of its 1 counts
    assert below.score.tolist() == [1.0 - 2.0 / 11.0]
    assert below.flag.tolist() == [True] and below.lower.tolist() == [3.5]
    assert pending.tolist() == [0.0, 0.0, 0.0, 1.0]  # z = 20, counted at 2 * 3.25 = 6.5


def test_an_error_far_beyond_the_band_counts_at_most_beyond_times_its_width() -> None:
    # z = 20 lies in [4, inf); counted at most 1.0 * 3.25, it joins [2, 4) instead.
    got, pending = judged(-30.0, count=5, beyond=1.0)
    assert got.flag.tolist() == [True] and got.score.tolist() == [1.0 - 2.0 / 11.0]
    assert pending.tolist() == [0.0, 0.0, 1.0, 0.0]
    # Inside the band an error counts where it lies, whatever the cap.
    _, pending = judged(12.0, count=5, beyond=1.0)
    assert pending.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_a_series_needs_its_minimum_of_scored_forecasts_to_be_flagged() -> None:
    # At count c the series has c scored +1 forecasts, this one included.
    cold, cold_pending = judged(17.0, count=2, min_scored=3)
    warm, warm_pending = judged(17.0, count=3, min_scored=3)
    assert cold.score.tolist() == warm.score.tolist()  # scored alike
    assert cold.flag.tolist() == [False] and warm.flag.tolist() == [True]
    assert cold_pending.sum() == 0.0 and warm_pending.sum() == 1.0  # cold errors not counted


def test_an_event_with_no_forecast_is_not_judged() -> None:
    got, pending = judged(17.0, count=0)
    assert got.step.tolist() == [0] and math.isnan(got.score[0]) and not got.flag[0]
    assert pending.sum() == 0.0


def cold_start_model(min_scored: int) -> OnlineForecaster:
    # No retraining: the zero head forecasts the last value, cheaply.
    return OnlineForecaster(ForecasterConfig(
        horizon=2, hidden_size=4, history=32, window=16, burn_in=4, rebuild_steps=8,
        retrain_every=0, swap_delay=0, interval_block=16, anomaly_steps=(1, 2),
        anomaly_min_scored=min_scored, anomaly_level=0.99, anomaly_memory=1000.0))  # fmt: skip


def test_a_spike_in_a_warm_series_is_flagged_and_in_a_cold_one_only_scored() -> None:
    rng = np.random.default_rng(3)
    model = cold_start_model(min_scored=50)
    n = 1500
    model.learn(["warm"] * n, np.arange(n) * 60.0, np.cumsum(rng.normal(size=n)))
    last = float(model.forecast(["warm"])[0, 0])
    cold_values = np.r_[np.arange(9) % 2, 100.0]  # a spike at its tenth event
    values = np.c_[np.full(10, last + 80.0), cold_values].ravel()  # warm, cold, warm, ...
    spike = model.learn(["warm", "cold"] * 10, np.arange(n, n + 20) * 60.0, values)
    flags = spike.anomaly
    assert flags is not None
    assert flags.flag[0] and flags.step[0] in (1, 2) and flags.score[0] > 0.99
    assert flags.lower[0] < flags.yhat[0] < flags.upper[0] < last + 80.0
    assert flags.score[-1] > 0.99  # the cold spike scores as high...
    assert not flags.flag[1::2].any()  # ...but ten events are far from fifty
    # The model learnt the spike as any other value: its next forecast starts there.
    assert model.forecast(["warm"])[0, 0] != last


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"anomaly_steps": (0,)}, "(0,)"),
        ({"anomaly_steps": (1, 13)}, "(1, 13)"),
        ({"anomaly_steps": (2, 2)}, "(2, 2)"),
        ({"anomaly_level": 1.0}, "1.0"),
        ({"anomaly_level": -0.5}, "-0.5"),
        ({"anomaly_min_scored": 0}, "0"),
        ({"anomaly_memory": 500.0}, "500.0"),
    ],
)
def test_settings_errors_name_the_bad_value(over: dict[str, object], needle: str) -> None:
    name = next(iter(over))
    with pytest.raises(ValueError, match=name) as err:
        ForecasterConfig(**over)  # type: ignore[arg-type]
    assert needle in str(err.value)


def test_no_steps_judge_nothing() -> None:
    model = OnlineForecaster(ForecasterConfig(anomaly_steps=(), retrain_every=0))
    upd = model.learn(["a"] * 5, np.arange(5.0), np.arange(5.0))
    assert upd.anomaly is not None and upd.anomaly.step.tolist() == [0] * 5


def judged_at_two_steps(err1: float, err2: float) -> Judgement:
    """An event with 5 before it judged at steps 1 and 2, both forecasts 10 ± 2."""
    tails, zq = distribution()
    tails, zq = np.vstack([tails, tails]), np.r_[zq, zq]
    out = Judgement.buffers(1)
    one = np.zeros(1, np.int64)
    judge(one, one, np.array([5]), np.array([[err1, err2]]), np.full((1, 2, 2), YHAT),
          np.full((1, 2, 2), HALF), np.array([0, 1]), EDGES, tails, zq, 3, 2.0,
          np.zeros((2, 4)), *out)  # fmt: skip
    return Judgement.of(out)


def test_with_two_steps_an_event_is_flagged_only_outside_both_bands() -> None:
    # A spike: far from both forecasts (z = 3.5 and 4); reported at its weaker step, 1.
    spike = judged_at_two_steps(7.0, 8.0)
    assert spike.flag.tolist() == [True] and spike.step.tolist() == [1]
    assert spike.score.tolist() == [1.0 - 2.5 / 11.0]
    # The way back: far from the forecast issued after the spike (z = 3.5), normal for the
    # one issued before it (z = 0.5, T = 6 + 4 * 0.5 = 8): not flagged, reported at step 2.
    back = judged_at_two_steps(7.0, 1.0)
    assert back.flag.tolist() == [False] and back.step.tolist() == [2]
    assert back.score.tolist() == [1.0 - 9.0 / 11.0]


def test_the_band_rises_to_its_level_when_a_flat_stream_turns_spiky() -> None:
    # Errors of an ops counter: flat at first (tiny errors), then seven in eight still 0
    # and the rest spread over six decades. A 99% band must come to leave about 1% of
    # them outside. Counted at the band's edge, before, exceedances let the band climb
    # one bin (15%) a commit at most and were lost as it did: it still flagged 8% here.
    rng = np.random.default_rng(7)
    n, flat, block = 10_000, 2_000, 32
    spiky = np.where(rng.random(n) < 0.875, 0.0, 10.0 ** rng.uniform(-2.0, 4.0, n))
    z = np.where(np.arange(n) < flat, rng.uniform(0.0, 0.01, n), spiky)
    judge_ = AnomalyJudge([1], level=0.99, min_scored=1, memory=1000.0, block=block)
    one = np.zeros(1, np.int64)
    pend_yhat, pend_half = np.zeros((1, 1, 1)), np.ones((1, 1, 1))
    flags = np.zeros(n, bool)
    for i in range(n):
        out = Judgement.buffers(1)
        judge_.judge(one, one, np.array([i + 1]), np.array([[z[i]]]), pend_yhat, pend_half, out)
        flags[i] = out[0][0]
        if (i + 1) % block == 0:
            judge_.commit()
    share = flags[-flat:].mean()  # 6,000 events after the change
    assert 0.005 < share < 0.02
    assert math.isclose(judge_.zq[0], np.quantile(spiky, 0.99), rel_tol=0.25)
