"""The compiled event path (a cut in one kernel call) against the wave-by-wave path.

The wave-by-wave path is the readable reference: ``StreamModel._learn_wave`` and
``OnlineForecaster._advance``, each step a call from Python. The compiled path must give
the same bits for every configuration, batching and series count; and the two kernels
that replaced NumPy code (features, blend) must agree with that NumPy code.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from forecaster import ForecasterConfig, OnlineForecaster
from forecaster.blend import anchor_columns, anchors
from forecaster.core.cut import blend_forecast, calendar_codes, event_features
from forecaster.stream import StreamModel
from tests.forecaster.conftest import MODELS, SMALL, events_for
from tests.forecaster.test_contract import assert_same, feed, stacked

GRUS = sorted(name for name in MODELS if name.startswith("gru"))


def reference(make: Callable[[], StreamModel]) -> StreamModel:
    model = make()
    assert isinstance(model, OnlineForecaster)
    model.compiled = False
    return model


@pytest.mark.parametrize("name", GRUS)
def test_compiled_cuts_equal_the_wave_by_wave_path(name: str) -> None:
    make = MODELS[name]
    compiled, waves = make(), reference(make)
    ev = events_for(compiled, n=600, seed=3)
    a = stacked(feed(compiled, ev, [97, 5, 250]))
    b = stacked(feed(waves, ev, [1, 13, 64]))
    assert_same(a, b)
    assert compiled.snapshot() == waves.snapshot()
    assert isinstance(compiled, OnlineForecaster)
    assert compiled.retrains_started > 0  # the cuts crossed retrain boundaries


def test_one_series_every_event_its_own_wave() -> None:
    cfg = ForecasterConfig(**{**SMALL, "aggregation": "mlpoly", "levels": (4.0,),
                              "background": False})  # type: ignore[arg-type]  # fmt: skip
    rng = np.random.default_rng(7)
    n = 500
    ts = 1.6e9 + np.cumsum(rng.exponential(60.0, n))
    y = np.cumsum(rng.normal(size=n))
    compiled, waves = OnlineForecaster(cfg), OnlineForecaster(cfg)
    waves.compiled = False
    a = compiled.learn(["s"] * n, ts, y)
    b = waves.learn(["s"] * n, ts, y)
    np.testing.assert_array_equal(a.yhat, b.yhat)
    np.testing.assert_array_equal(a.errors, b.errors)
    assert compiled.snapshot() == waves.snapshot()
    assert np.isfinite(a.yhat).all()


def numpy_features(cfg: ForecasterConfig, ts: np.ndarray, change: np.ndarray, dt: np.ndarray,
                   mean_dt: np.ndarray) -> np.ndarray:  # fmt: skip
    """The columns before the lags, as the model computed them with NumPy before the kernel."""
    cols = [np.clip(change, -cfg.clip_sigma, cfg.clip_sigma)]
    if cfg.use_dt:
        pos = mean_dt > 0
        ratio = np.where(pos, dt / np.where(pos, mean_dt, 1.0), 1.0)
        cols.append(np.clip(np.log1p(ratio), 0.0, 5.0))
    day = np.mod(ts, 86400.0) / 86400.0
    for name in cfg.calendar:
        frac = day if name == "hour" else np.mod(np.floor(ts / 86400.0) + 3 + day, 7.0) / 7.0
        cols += [np.sin(2 * math.pi * frac), np.cos(2 * math.pi * frac)]
    return np.stack(cols, axis=1)


def test_features_kernel_equals_the_numpy_definition() -> None:
    cfg = ForecasterConfig(calendar=("hour", "weekday"), use_dt=True, seasons=(), levels=())
    rng = np.random.default_rng(1)
    n = 2000
    ts = 1.7e9 + rng.uniform(0, 3e7, n)
    change = rng.normal(0, 6, n)
    dt = rng.exponential(60.0, n)
    mean_dt = np.where(rng.random(n) < 0.1, 0.0, rng.exponential(60.0, n))
    x = np.empty((n, cfg.input_size))
    rows = np.arange(n)
    event_features(rows, np.ones(n, np.int64), ts, change, dt, mean_dt, np.zeros(n), np.ones(n),
                   np.zeros((n, 0)), np.zeros((n, 0)), np.zeros((n, 0)), np.zeros((n, 4)),
                   np.zeros(0), np.zeros(0), np.zeros((n, 0)), calendar_codes(cfg.calendar),
                   True, cfg.clip_sigma, 0.1, cfg.horizon, x)  # fmt: skip
    want = numpy_features(cfg, ts, change, dt, mean_dt)
    np.testing.assert_array_equal(np.delete(x, 1, axis=1), np.delete(want, 1, axis=1))
    # log1p: libm's and NumPy's vector code may differ in the last bit.
    np.testing.assert_allclose(x[:, 1], want[:, 1], rtol=4e-16, atol=0)
    assert (x[:, 0] == cfg.clip_sigma).any()  # the clip was reached


def test_blend_kernel_equals_the_anchor_mix() -> None:
    cfg = ForecasterConfig(horizon=4, seasons=(600.0, 3600.0), levels=(8.0,), reversal=True,
                           calendar=("hour",))  # fmt: skip
    rng = np.random.default_rng(2)
    n = 50
    out = rng.normal(size=(n, cfg.horizon))
    x = rng.normal(size=(n, cfg.input_size))
    blend = rng.normal(size=(cfg.horizon, 1 + 1 + 2 + 1))
    value, scale = rng.normal(size=n), rng.uniform(0.5, 2, n)
    got = np.empty((n, cfg.horizon))
    blend_forecast(out, x, blend, value, scale, anchor_columns(cfg), 1, 2, True, got)
    want = value[:, None] + scale[:, None] * np.einsum("nkm,km->nk", anchors(out, x, cfg), blend)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
