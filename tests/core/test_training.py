"""Training learns a noisy sine wave, and is deterministic given a seed."""

from __future__ import annotations

import numpy as np

from forecaster.core import Adam, GRUSpec, Trainer

HORIZON = 3


def sine_dataset(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(700)
    series = np.sin(2 * np.pi * t / 20) + rng.normal(scale=0.05, size=t.size)
    x = series[:, None]
    y = np.stack([np.roll(series, -k) for k in range(1, HORIZON + 1)], axis=1)
    return x[:-HORIZON], y[:-HORIZON]


def train(seed: int, steps: int = 200) -> tuple[np.ndarray, float, float]:
    x, y = sine_dataset(seed=0)
    split = 500
    spec = GRUSpec(input_size=1, hidden_size=8, horizon=HORIZON)
    trainer = Trainer(spec, Adam(lr=0.02), clip_norm=5.0)
    params, state = spec.init_params(seed), trainer.init_state()
    val_x, val_y = x[None, split:], y[None, split:]
    weights = np.ones_like(val_y)
    weights[:, :20] = 0.0  # score after a burn-in, as the hidden state starts at zero
    before, _ = trainer.loss_and_grad(params, val_x, val_y, weights)
    rng = np.random.default_rng(seed)
    nb, nt = 8, 30
    for _ in range(steps):
        starts = rng.integers(0, split - nt, size=nb)
        idx = starts[:, None] + np.arange(nt)
        trainer.step(params, state, x[idx], y[idx])
    after, _ = trainer.loss_and_grad(params, val_x, val_y, weights)
    return params, before, after


def test_two_hundred_adam_steps_cut_validation_mse_tenfold() -> None:
    _, before, after = train(seed=3)
    assert after * 10 <= before, (before, after)


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    a, _, after_a = train(seed=5)
    b, _, after_b = train(seed=5)
    c, _, _ = train(seed=6)
    np.testing.assert_array_equal(a, b)
    assert after_a == after_b
    assert not np.array_equal(a, c)
