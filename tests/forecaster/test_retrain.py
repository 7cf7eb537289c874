"""Retraining: it learns, runs in the background without changing results, rejects divergence."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from forecaster import ForecasterConfig, LastValue, OnlineForecaster
from forecaster.evaluate import evaluate
from forecaster.retrain import RetrainJob, RetrainResult
from tests.forecaster.conftest import SMALL


def sine(n: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    t = np.arange(n, dtype=float)
    return ["s"] * n, t * 3600, np.sin(2 * np.pi * t / 24)


def test_retraining_beats_the_cold_start_on_a_learnable_series() -> None:
    cfg = ForecasterConfig(horizon=3, hidden_size=8, history=96, window=48, burn_in=8,
                           batch_windows=16, train_steps=40, retrain_every=200, swap_delay=20,
                           rebuild_steps=24, background=False)  # fmt: skip
    ids, ts, y = sine(1600)
    model = OnlineForecaster(cfg)
    s = evaluate(model, ids, ts, y, warmup=0.5)
    naive = evaluate(LastValue(horizon=3), ids, ts, y, warmup=0.5)
    assert model.retrains_accepted >= 5
    assert np.all(s.mae < 0.5 * naive.mae), (s.mae, naive.mae)


def test_background_and_inline_retraining_give_identical_outputs() -> None:
    ids, ts, y = sine(700)
    out = []
    for background in (True, False):
        model = OnlineForecaster(ForecasterConfig(**{**SMALL, "background": background}))
        out.append(model.learn(ids, ts, y))
        assert model.retrains_started == 5
    np.testing.assert_array_equal(out[0].yhat, out[1].yhat)
    np.testing.assert_array_equal(out[0].model_version, out[1].model_version)


def test_a_diverging_retrain_is_rejected_and_the_old_weights_stay() -> None:
    # A learning rate of 1e6 blows the weights up: validation loss gets worse (or NaN).
    cfg = ForecasterConfig(**{**SMALL, "learning_rate": 1e6, "clip_norm": 1e6, "background": False})
    model = OnlineForecaster(cfg)
    ids, ts, y = sine(130)
    model.learn(ids[:119], ts[:119], y[:119])
    params = model.params.copy()
    upd = model.learn(ids[119:], ts[119:], y[119:])  # retrain at 120, swap at 150
    model.learn(ids[:40], ts[:40] + 1e6, y[:40])
    assert model.retrains_started == 1 and model.retrains_rejected == 1
    assert model.model_version == 0
    np.testing.assert_array_equal(model.params, params)
    assert np.all(np.isfinite(upd.yhat))
    assert model.retrain_log[0]["accepted"] == 0.0


def test_a_retrain_that_raises_is_counted_and_the_stream_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fault injection: the first retrain's training raises in its thread. Before failures
    # ended the job, a stream waiting for that job (the service) waited forever.
    train, calls = RetrainJob._train, []

    def first_one_fails(job: RetrainJob) -> RetrainResult:
        calls.append(1)
        if len(calls) == 1:
            msg = "injected: out of memory in the retrain"
            raise MemoryError(msg)
        return train(job)

    monkeypatch.setattr(RetrainJob, "_train", first_one_fails)
    model = OnlineForecaster(ForecasterConfig(**SMALL))  # background retraining
    ids, ts, y = sine(700)
    model.learn(ids[:149], ts[:149], y[:149])  # the first retrain starts at 120, swaps at 150
    params = model.params.copy()
    upd = model.learn(ids[149:], ts[149:], y[149:])
    assert model.retrains_failed == 1 and model.retrains_rejected + model.retrains_accepted == 4
    assert "MemoryError: injected: out of memory" in model.last_retrain_error
    assert model.retrain_log[0]["failed"] == 1.0 and model.retrain_log[0]["accepted"] == 0.0
    assert not np.array_equal(model.params, params)  # later retrains still apply
    assert np.all(np.isfinite(upd.yhat))
    # The count and the error survive a snapshot.
    restored = OnlineForecaster.restore(model.snapshot())
    assert restored.retrains_failed == 1
    assert restored.last_retrain_error == model.last_retrain_error


def test_blend_picks_per_step_the_best_candidate_and_factor() -> None:
    from forecaster.blend import blend_losses, pick_blend
    from forecaster.core import Loss

    rng = np.random.default_rng(0)
    cand = rng.normal(size=(4, 10, 4, 2))
    target = np.stack(
        [
            cand[..., 0, 0],
            0.5 * cand[..., 1, 1],
            rng.normal(size=(4, 10)) * 1e-3,
            0.6 * cand[..., 3, 0] + 0.3 * cand[..., 3, 1],
        ],
        axis=-1,
    )
    got = pick_blend(blend_losses(cand, target, np.ones_like(target), Loss.MAE), 2, 0.0)
    # step 1 is candidate 0 as it is; step 2 half of candidate 1; step 3 is "no change";
    # step 4 mixes the GRU (candidate 0) with candidate 1
    np.testing.assert_allclose(got, [[1.0, 0.0], [0.0, 0.5], [0.0, 0.0], [0.6, 0.3]])


def test_blend_losses_skip_unweighted_targets_and_match_a_direct_sum() -> None:
    from forecaster.blend import blend_combos, blend_losses
    from forecaster.core import Loss

    rng = np.random.default_rng(1)
    cand = rng.normal(size=(3, 5, 2, 3))
    target = rng.normal(size=(3, 5, 2))
    weight = rng.uniform(size=(3, 5, 2)) * (rng.uniform(size=(3, 5, 2)) > 0.3)
    target[weight == 0] = np.nan  # never read: a weightless target may be anything
    got = blend_losses(cand, target, weight, Loss.MSE)
    combos = blend_combos(3)
    for j in range(2):
        keep = weight[..., j] > 0
        err = cand[..., j, :][keep] @ combos.T - target[..., j][keep][:, None]
        want = weight[..., j][keep] @ err**2 / weight[..., j][keep].sum()
        np.testing.assert_allclose(got[j], want, rtol=1e-12)


def test_validation_windows_are_the_recent_past() -> None:
    from forecaster.windows import sample_windows

    cfg = ForecasterConfig(**{**SMALL, "history": 48, "window": 12, "validation_fraction": 0.25})
    model = OnlineForecaster(cfg)
    ids, ts, _ = sine(48)
    model.learn(ids, ts, np.arange(48.0))
    rng = np.random.default_rng(0)
    val = sample_windows(model.table, cfg, rng, 200, recent=True)
    train = sample_windows(model.table, cfg, rng, 200, recent=False)
    assert val is not None and train is not None
    # 48 events, windows of 12: starts 0..36. The last quarter (12 events) is held out:
    # training windows start before 48 - 12 - 12 = 24, validation windows from there on.
    assert set(train.start.tolist()) == set(range(24))
    assert set(val.start.tolist()) == set(range(24, 37))


def test_a_blend_record_of_an_older_shape_restarts_and_retraining_goes_on() -> None:
    # Snapshots written before pairs were blended hold a (K, G, M) record.
    model = OnlineForecaster(ForecasterConfig(**{**SMALL, "background": False}))
    new_shape = model.blend_losses.shape
    model.blend_losses = np.ones((SMALL["horizon"], 21, model.blend.shape[1]))
    ids, ts, y = sine(300)
    model.learn(ids, ts, y)
    assert model.retrains_started >= 2 and model.retrains_failed == 0
    assert model.blend_losses.shape == new_shape


def test_a_near_tie_goes_to_the_lighter_mix_and_nan_losses_never_win() -> None:
    from forecaster.blend import blend_combos, pick_blend

    tol = 0.01

    combos = blend_combos(2)
    losses = np.full((3, combos.shape[0]), 2.0)
    heavy = int(np.flatnonzero(np.isclose(combos, [0.8, 0.5]).all(axis=1))[0])
    light = int(np.flatnonzero(np.isclose(combos, [0.3, 0.0]).all(axis=1))[0])
    losses[0, heavy], losses[0, light] = 1.0, 1.0 + tol / 2  # a near tie
    losses[1, heavy], losses[1, light] = 1.0, 1.0 + 2 * tol  # a clear win
    losses[2] = np.nan
    losses[2, light] = 3.0
    got = pick_blend(losses, 2, tol)
    np.testing.assert_allclose(got, [[0.3, 0.0], [0.8, 0.5], [0.3, 0.0]])


def test_the_reversal_candidate_is_the_last_change_undone() -> None:

    from forecaster.blend import anchors, n_anchors

    cfg = ForecasterConfig(**{**SMALL, "levels": (4.0,), "reversal": True})  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, cfg.input_size))  # input 0: the scaled, clipped last change
    out = rng.normal(size=(5, cfg.horizon))
    got = anchors(out, x, cfg)
    assert n_anchors(cfg) == 3 and got.shape == (5, cfg.horizon, 3)
    np.testing.assert_array_equal(got[..., -1], np.repeat(-x[:, :1], cfg.horizon, axis=1))
    # the other candidates are as without it
    np.testing.assert_array_equal(anchors(out, x, replace(cfg, reversal=False)), got[..., :-1])


def early_stopping_job(patience: int, steps: int) -> tuple[ForecasterConfig, RetrainJob]:
    """A retrain job over 400 events of a sine, evaluated every 2 steps."""
    cfg = ForecasterConfig(**{**SMALL, "background": False, "retrain_every": 0,
                              "early_stop_every": 2, "early_stop_patience": patience,
                              "learning_rate": 0.03, "train_steps": steps})  # fmt: skip
    model = OnlineForecaster(cfg)
    ids, ts, y = sine(400)
    model.learn(ids, ts, y)
    job = RetrainJob(cfg, model.spec, model.params, model.opt_state, model.blend,
                     model.blend_losses, model.table, (0, 0))  # fmt: skip
    return cfg, job


def test_early_stopping_keeps_the_weights_of_the_best_evaluation() -> None:
    cfg, job = early_stopping_job(patience=1, steps=40)
    seen: list[float] = []
    measure = job.gru_val_loss

    def recorded(trainer: object, params: np.ndarray) -> float:
        seen.append(measure(trainer, params))  # type: ignore[arg-type]
        return seen[-1]

    job.gru_val_loss = recorded  # type: ignore[method-assign]
    trainer = job.trainer()
    _, steps = job.fit(trainer)
    assert steps < cfg.train_steps and steps % 2 == 0  # stopped at an evaluation
    assert len(seen) == steps // 2 + 1
    assert seen[-1] >= min(seen[:-1])  # the last evaluation did not improve...
    assert measure(trainer, job.params) == min(seen)  # ...and the best weights stayed


@pytest.mark.parametrize(("min_delta", "stop"), [(0.0, 12), (0.05, 6)])
def test_gains_below_min_delta_do_not_keep_training_but_the_best_weights_stay(
    min_delta: float, stop: int
) -> None:
    """Scripted evaluations (every 2 steps, patience 2): 1.0, 0.9, then gains under 5%."""
    cfg, job = early_stopping_job(patience=2, steps=40)
    job.cfg = replace(cfg, early_stop_min_delta=min_delta)
    script = iter([1.0, 0.9, 0.895, 0.893, 0.892, 0.95, 0.96, 0.97])
    weights: list[np.ndarray] = []

    def scripted(trainer: object, params: np.ndarray) -> float:
        weights.append(params.copy())
        return next(script)

    job.gru_val_loss = scripted  # type: ignore[method-assign]
    _, steps = job.fit(job.trainer())
    assert steps == stop
    # Kept: the weights of the least loss seen, a gain under min_delta or not.
    best = 3 if stop == 6 else 4  # 0.893 at step 6, or 0.892 at step 8
    np.testing.assert_array_equal(job.params, weights[best])
    assert not np.array_equal(weights[best], weights[1])


def test_early_stop_min_delta_outside_0_1_is_an_error_that_names_it() -> None:
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="early_stop_min_delta"):
            ForecasterConfig(early_stop_min_delta=bad)


def test_validation_passes_are_made_once_and_score_as_batch_by_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from forecaster.blend import anchors
    from forecaster.core import forward
    from forecaster.core.backprop import output_grad

    cfg, job = early_stopping_job(patience=2, steps=12)
    trainer, spec, v, b = job.trainer(), job.spec, job.val, cfg.batch_windows
    assert v.x.shape[0] > b  # several training batches of validation windows

    def fresh(params: np.ndarray, lo: int = 0, hi: int | None = None) -> np.ndarray:
        x = np.ascontiguousarray(v.x[lo:hi])
        ws = trainer.workspace(x.shape[0], x.shape[1])
        forward(spec, params, x, np.zeros((1, x.shape[0], spec.hidden_size)), ws)
        return ws.yhat.copy()

    def loss_by_batch(params: np.ndarray) -> float:  # a pass per batch, as training runs
        total, weight = 0.0, 0.0
        for lo in range(0, v.x.shape[0], b):
            sel = slice(lo, lo + b)
            yhat = np.ascontiguousarray(fresh(params, lo, lo + b).transpose(1, 0, 2))
            wsum = float(v.w[sel].sum())
            total += wsum * output_grad(yhat, v.y[sel], v.w[sel], np.zeros_like(yhat),
                                        int(trainer.loss), trainer.huber_delta)  # fmt: skip
            weight += wsum
        return total / weight

    old = job.params.copy()
    # the same sums; the products' last bits may depend on the batch in some BLAS
    assert job.gru_val_loss(trainer, old) == pytest.approx(loss_by_batch(old), rel=1e-12)
    job.fit(trainer)
    assert not np.array_equal(job.params, old)
    passes = 0

    def counted(*args: object) -> None:
        nonlocal passes
        passes += 1
        forward(*args)  # type: ignore[arg-type]

    monkeypatch.setattr("forecaster.retrain.forward", counted)
    # judge() scores the starting and the kept weights without a pass of its own
    for params in (old, job.params):
        np.testing.assert_array_equal(job._candidates(params), anchors(fresh(params), v.x, cfg))
    assert passes == 0
    other = job.params + 1e-3  # weights no pass was made with: one pass
    np.testing.assert_array_equal(job._candidates(other), anchors(fresh(other), v.x, cfg))
    assert passes == 1


def test_a_finished_job_keeps_no_validation_passes_while_it_waits_for_its_swap() -> None:
    _, job = early_stopping_job(patience=2, steps=12)
    job.start(background=False)
    assert job.result().steps > 0
    assert job._ws is None and job._last_pass is None and job._passes == [None, None]


def test_without_early_stopping_every_step_is_taken_and_logged() -> None:
    model = OnlineForecaster(ForecasterConfig(**{**SMALL, "background": False}))
    ids, ts, y = sine(300)
    model.learn(ids, ts, y)
    assert model.retrain_log and all(e["steps"] == SMALL["train_steps"] for e in model.retrain_log)


def test_training_batches_gathered_lazily_equal_those_gathered_at_once() -> None:
    from forecaster.windows import TrainBatches, draw_windows, sample_windows

    cfg = ForecasterConfig(**SMALL)
    model = OnlineForecaster(cfg)
    _, ts, y = sine(200)
    model.learn([f"s{i % 3}" for i in range(200)], ts, y)
    draw = draw_windows(model.table, cfg, np.random.default_rng(3), 4 * cfg.batch_windows)
    assert draw is not None
    eager = TrainBatches(model.table, draw, cfg, lazy=False)
    lazy = TrainBatches(model.table, draw, cfg, lazy=True)
    assert TrainBatches(model.table, draw, cfg).lazy  # 3 histories of 48 < 24 windows of 24
    whole = sample_windows(model.table, cfg, np.random.default_rng(3), 4 * cfg.batch_windows)
    assert whole is not None
    for step in range(4):
        a, b = eager.batch(step), lazy.batch(step)
        sel = slice(step * cfg.batch_windows, (step + 1) * cfg.batch_windows)
        for name in ("x", "y", "w"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
            np.testing.assert_array_equal(getattr(a, name), getattr(whole, name)[sel])


@pytest.mark.parametrize("squared", [False, True])
def test_the_vectorised_mix_kernel_gives_the_reference_loops_bits(squared: bool) -> None:
    from forecaster.blend import BLEND_GRID, PAIR_GRID, blend_combos
    from forecaster.core.blend import mix_losses, mix_losses_loop

    rng = np.random.default_rng(2)
    n, k, m = 300, 4, 5
    cand = rng.normal(size=(n, k, m)) * rng.lognormal(size=(n, k, 1))
    target = rng.normal(size=(n, k))
    weight = rng.uniform(size=(n, k)) * (rng.uniform(size=(n, k)) > 0.25)
    target[weight == 0] = np.nan
    weight[:, 3] = 0.0  # a step with no weight at all
    out = [np.full((k, blend_combos(m).shape[0]), np.nan) for _ in range(2)]
    mix_losses(cand, target, weight, BLEND_GRID, PAIR_GRID, squared, out[0])
    mix_losses_loop(cand, target, weight, BLEND_GRID, PAIR_GRID, squared, out[1])
    np.testing.assert_array_equal(out[0], out[1])
    assert np.all(out[0][3] == 0.0)
