"""Event semantics shared by every model: alignment, late events, bad input, eviction."""

from __future__ import annotations

import numpy as np
import pytest

from forecaster import ForecasterConfig, LastValue, OnlineForecaster
from forecaster.evaluate import evaluate
from tests.forecaster.conftest import SMALL


def test_alignment_by_hand_last_value() -> None:
    # y = 1, 2, 4, 7, 11, 16: the forecast for t+h is issued after learning y[t] and
    # scored against y[t+h]. Last value: error at +1 is y[t+1]-y[t], at +3 y[t+3]-y[t].
    y = np.array([1.0, 2.0, 4.0, 7.0, 11.0, 16.0])
    upd = LastValue(horizon=3).learn(["a"] * 6, np.arange(6.0) * 60, y)
    np.testing.assert_array_equal(upd.errors[:, 0], [np.nan, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(upd.errors[:, 2], [np.nan, np.nan, np.nan, 6, 9, 12])
    s = evaluate(LastValue(horizon=3), ["a"] * 6, np.arange(6.0) * 60, y, warmup=0.0)
    assert s.mae.tolist() == [3.0, 6.0, 9.0]  # mean(1..5), mean(3,5,7,9), mean(6,9,12)
    assert s.rmse[2] == pytest.approx(np.sqrt((36 + 81 + 144) / 3))


def test_late_events_are_dropped_and_counted_duplicates_kept() -> None:
    model = LastValue(horizon=2)
    upd = model.learn(["a", "a", "a", "b", "a"], [10.0, 20.0, 20.0, 5.0, 15.0], [1, 2, 3, 4, 5])
    assert upd.accepted.tolist() == [True, True, True, True, False]
    assert upd.series == ["a", "a", "a", "b"]
    assert model.n_late == 1 and model.table.count[model.table.index["a"]] == 3
    late = model.learn(["b"], [4.0], [9.0])  # older than b's last event, in a later call
    assert late.accepted.tolist() == [False] and model.n_late == 2


@pytest.mark.parametrize(
    ("values", "ts", "message"),
    [
        ([1.0, np.nan], [0.0, 1.0], r"event 1 \(series 'b'\) has a non-finite value"),
        ([1.0, np.inf], [0.0, 1.0], "non-finite value"),
        ([1.0, 2.0], [0.0, np.nan], r"event 1 \(series 'b'\) has a non-finite ts"),
    ],
)
def test_non_finite_input_is_an_error_and_nothing_is_learned(
    values: list[float], ts: list[float], message: str
) -> None:
    model = OnlineForecaster(ForecasterConfig(**SMALL))
    before = model.snapshot()
    with pytest.raises(ValueError, match=message):
        model.learn(["a", "b"], ts, values)
    assert model.snapshot() == before


def test_covariates_are_checked_by_name() -> None:
    model = OnlineForecaster(ForecasterConfig(**SMALL, covariates=("load",)))
    with pytest.raises(ValueError, match=r"covariates \('load',\) are configured"):
        model.learn(["a"], [0.0], [1.0])
    with pytest.raises(ValueError, match="covariates must have 1 columns"):
        model.learn(["a"], [0.0], [1.0], np.zeros((1, 2)))
    with pytest.raises(ValueError, match="non-finite covariate"):
        model.learn(["a"], [0.0], [1.0], np.array([[np.nan]]))


def test_unseen_series_are_evicted_by_event_time() -> None:
    cfg = ForecasterConfig(**{**SMALL, "evict_after": 100.0, "interval_block": 4})
    model = OnlineForecaster(cfg)
    model.learn(["old", "new", "new", "new"], [0.0, 50.0, 100.0, 150.0], [1.0, 2.0, 3.0, 4.0])
    assert "old" not in model.table.index and model.n_evicted == 1
    with pytest.raises(KeyError, match="no forecast for series 'old'"):
        model.forecast(["old"])
    model.learn(["old"], [160.0], [5.0])  # comes back as a new series, in a recycled row
    assert model.table.count[model.table.index["old"]] == 1


def test_memory_is_linear_and_reported() -> None:
    model = OnlineForecaster(ForecasterConfig(**SMALL))
    per = model.bytes_per_series()
    model.learn([f"s{i}" for i in range(1000)], np.zeros(1000), np.ones(1000))
    assert len(model.table) == 1000
    assert model.table.capacity * per == model.table.nbytes()
    assert model.table.capacity < 2048


def test_intervals_reach_nominal_coverage_on_noise() -> None:
    rng = np.random.default_rng(1)
    n = 6000
    y = rng.normal(size=n)
    s = evaluate(LastValue(horizon=2, coverage=0.9), ["a"] * n, np.arange(n) * 60.0, y, warmup=0.3)
    assert np.all(np.abs(s.coverage - 0.9) < 0.03), s.coverage


def test_season_lags_are_the_seasonal_naive_changes() -> None:
    # Hourly events, a 3-hour season: the lag input for step k is y[t+k-3*ceil(k/3)] - y[t]
    # in units of the scale, for k = 1..4 (k=4 reaches back to the previous cycle).
    cfg = ForecasterConfig(**{**SMALL, "horizon": 4, "seasons": (3 * 3600.0,), "use_dt": False,
                              "calendar": (), "clip_sigma": 1e6})  # fmt: skip
    model = OnlineForecaster(cfg)
    y = np.array([1.0, 2.0, 4.0, 7.0, 11.0, 16.0, 22.0])
    model.learn(["a"] * 7, np.arange(7) * 3600.0, y)
    row = model.table.index["a"]
    x_last = model.table.hist_x[row, 6 % cfg.history]  # inputs of the event y = 22
    scale = model.table.hist_scale[row, 6 % cfg.history]
    lags = x_last[1:5] * scale
    # y[t+1-3]=y[4]=11, y[t+2-3]=y[5]=16, y[t+3-3]=y[6]=22, y[t+4-6]=y[4]=11
    np.testing.assert_allclose(lags, np.array([11.0, 16.0, 22.0, 11.0]) - 22.0)


def test_a_diverged_forecaster_scores_an_infinite_rmse_without_a_warning() -> None:
    import warnings

    from forecaster.evaluate import score

    values = np.array([1.0, 2.0, 3.0, 4.0])
    errors = np.array([[0.5], [1e200], [-1.0], [np.nan]])  # one error past sqrt(float max)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning would fail here
        s = score(["s"] * 4, values, errors, np.zeros((4, 1), dtype=bool), 0)
    assert np.isinf(s.rmse[0]) and s.n[0] == 3
    assert s.mae[0] == pytest.approx((0.5 + 1e200 + 1.0) / 3)
