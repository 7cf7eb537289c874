"""Training learns a noisy sine wave, is deterministic given a seed, and its compiled
time loops keep the bits of the kernels they run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from forecaster.core import Adam, GRUSpec, Trainer
from forecaster.core.backprop import (
    backward_steps,
    candidate_update,
    forward_steps,
    gates_backward,
    reset_backward,
    rz_gates,
)

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


@pytest.mark.parametrize("reset_after", [True, False])
def test_compiled_time_loops_give_the_bits_of_one_kernel_call_per_step(reset_after: bool) -> None:
    """forward_steps and backward_steps against the per-step kernels with NumPy products."""
    nb, nt, h = 4, 9, 5
    rng = np.random.default_rng(7)
    w_hh = rng.normal(scale=0.4, size=(3 * h, h))
    bh = rng.normal(scale=0.1, size=3 * h)
    gi = rng.normal(size=(nt, nb, 3 * h))
    r, z, n, aux = (np.zeros((nt, nb, h)) for _ in range(4))
    hs = np.zeros((nt + 1, nb, h))
    hs[0] = rng.normal(scale=0.5, size=(nb, h))
    caches = [r, z, n, aux]
    ref_caches, ref_hs = [c.copy() for c in caches], hs.copy()

    forward_steps(gi, w_hh, bh, hs, r, z, n, aux, reset_after)
    r, z, n, aux = ref_caches
    gh = np.zeros((nb, 3 * h))
    for t in range(nt):
        if reset_after:
            gh[:] = ref_hs[t] @ w_hh.T
        else:
            gh[:, : 2 * h] = ref_hs[t] @ w_hh[: 2 * h].T
        rz_gates(gi[t], gh, bh, ref_hs[t], r[t], z[t], aux[t])
        if not reset_after:
            gh[:, 2 * h :] = aux[t] @ w_hh[2 * h :].T
        candidate_update(gi[t], gh, bh, ref_hs[t], r[t], z[t], n[t], aux[t], ref_hs[t + 1],
                         reset_after)  # fmt: skip
    np.testing.assert_array_equal(hs, ref_hs)
    for got, want in zip(caches, ref_caches, strict=True):
        np.testing.assert_array_equal(got, want)

    dext = rng.normal(size=(nt, nb, h))
    dgi, dgh = np.zeros((nt, nb, 3 * h)), np.zeros((nt, nb, 3 * h))
    backward_steps(dext, hs, r, z, n, aux, w_hh, dgi, dgh, reset_after)
    ref_dgi, ref_dgh, dcarry = np.zeros_like(dgi), np.zeros_like(dgh), np.zeros((nb, h))
    ncols = 3 * h if reset_after else 2 * h
    for t in range(nt - 1, -1, -1):
        gates_backward(dext[t], dcarry, hs[t], r[t], z[t], n[t], aux[t], ref_dgi[t], ref_dgh[t],
                       reset_after)  # fmt: skip
        if not reset_after:
            dq = ref_dgh[t, :, 2 * h :] @ w_hh[2 * h :]
            reset_backward(dq, hs[t], r[t], dcarry, ref_dgi[t], ref_dgh[t])
        dcarry += ref_dgh[t, :, :ncols] @ w_hh[:ncols]
    np.testing.assert_array_equal(dgi, ref_dgi)
    np.testing.assert_array_equal(dgh, ref_dgh)
    assert np.abs(dgh).max() > 0.0


def test_a_thread_limit_reaches_the_blas_of_the_compiled_loops() -> None:
    """SciPy's BLAS (Numba's np.dot) is loaded with the package, so a limit set later holds."""
    script = textwrap.dedent(
        """
        import numpy as np, threadpoolctl
        from forecaster.core import GRUSpec, Trainer
        with threadpoolctl.threadpool_limits(1):
            spec = GRUSpec(input_size=2, hidden_size=4, horizon=3)
            trainer = Trainer(spec)
            x, y = np.ones((2, 5, 2)), np.ones((2, 5, 3))
            trainer.step(spec.init_params(0), trainer.init_state(), x, y)
            for lib in threadpoolctl.threadpool_info():
                print(lib["filepath"], lib["num_threads"])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    libs = dict(line.rsplit(" ", 1) for line in out.splitlines())
    assert any("scipy.libs" in path or "scipy/" in path for path in libs), libs
    assert set(libs.values()) == {"1"}, libs
