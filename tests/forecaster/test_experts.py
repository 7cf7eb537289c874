"""Online aggregation of experts: the kernel against a plain reference, the regret property
on streams where one expert is best by construction, pooling, and the public accessors."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import numpy as np
import pytest

from forecaster import EWMA, ForecasterConfig, LastValue, OnlineForecaster, SeasonalNaive
from forecaster.evaluate import evaluate
from forecaster.experts import POOL_EVERY
from forecaster.stream import StreamModel
from tests.conftest import needs_compiled_speed
from tests.forecaster.test_contract import assert_same, feed, stacked

CAP = 3.0  # small, so the reference test crosses the loss cap often
RCAP = 0.4  # small, so it crosses the regret cap often too
HOUR = 3600.0
DAY = 86400.0
# Small and fast: the GRU expert matters little here; the aggregation is what is tested.
FAST = ForecasterConfig(
    horizon=12, hidden_size=4, history=256, window=48, burn_in=8, batch_windows=8,
    train_steps=5, retrain_every=2000, swap_delay=50, rebuild_steps=16, calendar=(),
    aggregation="mlpoly", seasons=(DAY,), background=False,
)  # fmt: skip


def reference_mlpoly(x: np.ndarray, y: np.ndarray, scale: np.ndarray, decay: float) -> np.ndarray:
    """ML-Poly for one series and step 1, written plainly: forecasts ``p[t]`` for ``y[t+1]``.

    ``x[t, e]`` is expert e's forecast issued at t; before any positive regret the weights
    are the first expert alone (the pooled prior of a model that has pooled nothing).
    """
    n, e = x.shape
    regret, rates, bound = np.zeros(e), np.zeros(e), 0.0
    p = np.empty(n)
    for t in range(n):
        if t >= 1:
            miss = abs(p[t - 1] - y[t])
            unit = scale[t]
            cap = CAP * unit
            g = np.sign(p[t - 1] - y[t]) if miss < cap else 0.0
            lin = np.clip(g * (p[t - 1] - x[t - 1]), -cap, cap)
            loss = np.minimum(np.abs(x[t - 1] - y[t]), cap)
            r = np.clip((lin + min(miss, cap) - loss) / (2 * unit), -RCAP, RCAP)
            new_bound = max(bound, float(np.max(r**2)))
            regret = decay * regret + r
            rates = decay * rates + r**2 + new_bound - bound
            bound = new_bound
        w = np.where((regret > 0) & (rates > 0), regret / np.where(rates > 0, rates, 1), 0.0)
        w = w / w.sum() if w.sum() > 0 else np.eye(e)[0]
        p[t] = w @ x[t]
    return p


def test_kernel_matches_the_plain_reference() -> None:
    from forecaster.core.aggregate import aggregate_wave, pending_size

    # Three experts: the model's forecasts (any numbers), the last value and one EWMA,
    # which the kernel issues itself and keeps in its ring.
    rng = np.random.default_rng(3)
    n, k, rate = 300, 1, 0.3
    y = np.cumsum(rng.normal(size=n))
    model = y + rng.normal(scale=0.5, size=n)
    scale = np.abs(rng.normal(size=n)) + 0.5
    ewma = np.empty(n)
    for t in range(n):
        ewma[t] = y[0] if t == 0 else ewma[t - 1] + rate * (y[t] - ewma[t - 1])
    x = np.column_stack([model, y, ewma])
    e = x.shape[1]
    pooled = np.zeros((k, e))
    pooled[0, 0] = 1.0
    pend_yhat, pending = np.zeros((1, k, k)), np.zeros((1, k, pending_size(k, 0, 1)))
    regret, rates, bound = np.zeros((1, e, k)), np.zeros((1, e, k)), np.zeros((1, k))
    levels = np.zeros((1, 1))
    got = np.empty(n)
    for t in range(n):
        out = np.empty((1, k))
        aggregate_wave(np.array([0]), np.array([t]), y[t : t + 1], scale[t : t + 1],
                       np.ones(1), np.zeros(1), np.full(1, 1e6), np.zeros(1), np.zeros((1, 8)),
                       model[t : t + 1, None], np.zeros(0), np.array([rate]), np.zeros(0),
                       levels, pooled, pend_yhat, pending, regret, rates, bound,
                       0.99, CAP, 1e300, RCAP, out)  # fmt: skip
        pend_yhat[0, 0, 0] = out[0, 0]  # what the stream model stores as issued
        got[t] = out[0, 0]
    np.testing.assert_allclose(got, reference_mlpoly(x, y, scale, 0.99), rtol=1e-12, atol=1e-12)


def mae_after(model: StreamModel, ts: np.ndarray, y: np.ndarray, skip: int) -> np.ndarray:
    """Per-step MAE of the forecasts whose targets come after the first ``skip`` events."""
    s = evaluate(model, ["s"] * y.size, ts, y, warmup=skip / y.size)
    return s.mae


def synthetic(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = np.arange(n) * HOUR
    if kind == "random walk":
        return ts, 100 + np.cumsum(rng.normal(size=n))
    if kind == "daily cycle":
        return ts, 10 * np.sin(2 * np.pi * ts / DAY) + 0.2 * rng.normal(size=n)
    return ts, 5 + rng.normal(size=n)  # noise around a level


# (stream, the expert that is best by construction, events before scoring)
CASES = [
    ("random walk", lambda: LastValue(12), 1000),
    ("daily cycle", lambda: SeasonalNaive(24, 12), 1000),
    ("noise around a level", lambda: EWMA(0.02, 12), 1000),
]


@needs_compiled_speed
@pytest.mark.parametrize(("kind", "expert", "after"), CASES, ids=[c[0] for c in CASES])
def test_aggregate_comes_within_2pct_of_the_best_expert(kind, expert, after) -> None:  # type: ignore[no-untyped-def]
    ts, y = synthetic(kind, 4000, seed=1)
    ours = mae_after(OnlineForecaster(FAST), ts, y, after)
    best = mae_after(expert(), ts, y, after)
    for step in (1, 12):
        assert ours[step - 1] <= 1.02 * best[step - 1], (kind, step, ours, best)


@needs_compiled_speed
def test_weights_are_convex_and_favour_the_best_expert() -> None:
    ts, y = synthetic("daily cycle", 3000, seed=2)
    model = OnlineForecaster(FAST)
    model.learn(["s"] * y.size, ts, y)
    w = model.expert_weights("s")
    assert w.shape == (12, len(model.expert_names))
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert (w >= 0).all()
    daily = model.expert_names.index(f"season:{DAY:g}")
    assert (w[:, daily] > 0.5).all(), w[:, daily]


@needs_compiled_speed
def test_a_new_series_starts_from_the_pooled_weights() -> None:
    ts, y = synthetic("daily cycle", 2 * POOL_EVERY, seed=4)
    model = OnlineForecaster(FAST)
    before = model.expert_weights()
    assert before[:, 0].tolist() == [1.0] * 12  # the model alone until something is pooled
    model.learn(["a"] * y.size, ts, y)
    pooled = model.expert_weights()
    assert not np.array_equal(pooled, before)
    np.testing.assert_allclose(pooled.sum(axis=1), 1.0)
    model.learn(["b"], ts[-1:] + HOUR, y[:1])
    np.testing.assert_array_equal(model.expert_weights("b"), pooled)
    upd = model.learn(["c"], ts[-1:] + HOUR, [3.0])  # a first event: every expert says 3
    np.testing.assert_allclose(upd.yhat, 3.0)


def test_pooling_points_do_not_depend_on_batching_and_survive_snapshots() -> None:
    rng = np.random.default_rng(5)
    n = POOL_EVERY + 300
    ids = [f"s{i}" for i in rng.integers(0, 4, size=n)]
    ts = np.arange(n) * 900.0
    ev = {"series": ids, "ts": ts, "values": np.sin(ts / 7000) + 0.1 * rng.normal(size=n),
          "covariates": None}  # fmt: skip
    cfg = replace(FAST, retrain_every=600, first_retrain=0, history=128)
    a, b = OnlineForecaster(cfg), OnlineForecaster(cfg)
    assert_same(stacked(feed(a, ev, [n])), stacked(feed(b, ev, [1, 333, 17, 1000])))
    np.testing.assert_array_equal(a.expert_weights(), b.expert_weights())
    c = OnlineForecaster(cfg)
    head = {k: (v[: POOL_EVERY - 5] if v is not None else None) for k, v in ev.items()}
    tail = {k: (v[POOL_EVERY - 5 :] if v is not None else None) for k, v in ev.items()}
    feed(c, head, [100])
    twin = OnlineForecaster.restore(c.snapshot())
    assert_same(stacked(feed(c, tail, [64])), stacked(feed(twin, tail, [64])))
    np.testing.assert_array_equal(c.expert_weights(), twin.expert_weights())


def as_format_2(snapshot: bytes) -> bytes:
    """A snapshot as format 2 wrote it: aggregation's ring under its old name."""
    with np.load(io.BytesIO(snapshot)) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["meta"].tobytes().decode())
    meta["format"] = 2
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    if "table.agg_pending" in arrays:
        arrays["table.pend_exp"] = arrays.pop("table.agg_pending")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_a_format_2_snapshot_with_aggregation_is_refused_by_name() -> None:
    ts = np.arange(40) * HOUR
    for aggregation in ("mlpoly", "none"):
        model = OnlineForecaster(replace(FAST, aggregation=aggregation))
        model.learn(["s"] * ts.size, ts, np.sin(ts / DAY))
        old = as_format_2(model.snapshot())
        if aggregation == "none":  # the same layout as format 3: still read
            twin = OnlineForecaster.restore(old)
            np.testing.assert_array_equal(twin.forecast(["s"]), model.forecast(["s"]))
        else:
            with pytest.raises(ValueError, match="format 2 holds expert aggregation state"):
                OnlineForecaster.restore(old)


@pytest.mark.parametrize("fmt", [3, 4])
def test_an_older_snapshot_restores_with_its_regrets_moved_to_this_layout(fmt: int) -> None:
    # Formats 3 and 4 kept regrets and rate sums step-major, (K, E) a series; format 3
    # also kept each rate sum with its bound added. Format 5 is expert-major, less the bound.
    ts = np.arange(300) * HOUR
    y = 5.0 + np.random.default_rng(3).normal(size=ts.size)  # noise around a level
    model = OnlineForecaster(FAST)
    model.learn(["s"] * 200, ts[:200], y[:200])
    # Several experts share each step's weight, so the rate sums decide the mix.
    assert np.all((model.expert_weights("s") > 0).sum(axis=1) >= 2)
    with np.load(io.BytesIO(model.snapshot())) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["meta"].tobytes().decode())
    meta["format"] = fmt
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    for name in ("table.agg_regret", "table.agg_rate"):
        arrays[name] = np.ascontiguousarray(arrays[name].transpose(0, 2, 1))
    if fmt == 3:
        arrays["table.agg_rate"] = arrays["table.agg_rate"] + arrays["table.agg_bound"][..., None]
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    twin = OnlineForecaster.restore(buf.getvalue())
    np.testing.assert_allclose(twin.expert_weights("s"), model.expert_weights("s"), rtol=1e-12)
    a = model.learn(["s"] * 100, ts[200:], y[200:]).yhat
    b = twin.learn(["s"] * 100, ts[200:], y[200:]).yhat
    np.testing.assert_allclose(b, a, rtol=1e-9)


def test_a_snapshot_of_an_unknown_format_is_refused_naming_it() -> None:
    model = OnlineForecaster(FAST)
    model.learn(["s"] * 20, np.arange(20) * HOUR, np.ones(20))
    with np.load(io.BytesIO(model.snapshot())) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["meta"].tobytes().decode())
    meta["format"] = 99
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with pytest.raises(ValueError, match="snapshot format 99 is not one this version reads"):
        OnlineForecaster.restore(buf.getvalue())


def test_accessors_name_their_errors() -> None:
    plain = OnlineForecaster(replace(FAST, aggregation="none"))
    assert plain.expert_names == []
    with pytest.raises(ValueError, match='aggregation = "mlpoly"'):
        plain.expert_weights()
    with pytest.raises(KeyError, match="'nobody'"):
        OnlineForecaster(FAST).expert_weights("nobody")


def test_expert_names_follow_the_config() -> None:
    cfg = replace(FAST, seasons=(HOUR,), expert_seasons=(DAY, HOUR), expert_rates=(0.5,),
                  expert_medians=(0.1, 0.3))  # fmt: skip
    assert OnlineForecaster(cfg).expert_names == [
        "model", "last", "season:3600", "season:86400", "ewma:0.5", "median:0.1", "median:0.3",
    ]  # fmt: skip
