"""The per-event step agrees with the training forward, touches only its rows, allocates nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from forecaster.core import GRUSpec, Trainer, gru_readout, gru_step, step_workspace
from tests.conftest import needs_jit


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("num_layers", [1, 3])
def test_step_by_step_equals_the_window_forward(reset_after: bool, num_layers: int) -> None:
    spec = GRUSpec(
        input_size=3, hidden_size=6, num_layers=num_layers, horizon=5, reset_after=reset_after
    )
    params = spec.init_params(seed=1)
    rng = np.random.default_rng(2)
    nb, nt = 3, 7
    x = rng.normal(size=(nb, nt, 3))
    trainer = Trainer(spec)
    trainer.loss_and_grad(params, x, np.zeros((nb, nt, 5)))
    ws = trainer.workspace(nb, nt)

    # Three series stored in rows 4, 0, 2 of a larger state matrix; rows 1, 3 stay put.
    state = rng.normal(size=(5, spec.state_size))
    state[[4, 0, 2]] = 0.0
    untouched = state[[1, 3]].copy()
    rows = np.array([4, 0, 2])
    work = step_workspace(spec)
    out = np.empty((nb, 5))
    for t in range(nt):
        gru_step(params, x[:, t], state, rows, work, 3, 6, num_layers, reset_after)
        gru_readout(params, state, rows, out, 3, 6, num_layers)
        np.testing.assert_allclose(out, ws.yhat[:, t], rtol=1e-13, atol=1e-15)
    expected_state = ws.hs[:, nt].transpose(1, 0, 2).reshape(nb, -1)
    np.testing.assert_allclose(state[rows], expected_state, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(state[[1, 3]], untouched)


def test_hidden_state_stays_in_the_unit_interval_for_extreme_inputs() -> None:
    spec = GRUSpec(input_size=1, hidden_size=4, num_layers=2)
    params = spec.init_params(seed=0) * 50
    state = np.zeros((4, spec.state_size))
    x = np.array([[1e300], [-1e300], [0.0], [1e-300]])
    gru_step(params, x, state, np.arange(4), step_workspace(spec), 1, 4, 2, True)
    assert np.all(np.isfinite(state)) and np.all(np.abs(state) <= 1.0)


def test_nan_input_propagates_instead_of_being_hidden() -> None:
    spec = GRUSpec(input_size=1, hidden_size=4)
    state = np.zeros((1, 4))
    gru_step(spec.init_params(0), np.array([[np.nan]]), state, np.array([0]),
             step_workspace(spec), 1, 4, 1, True)  # fmt: skip
    assert np.all(np.isnan(state))


@needs_jit
def test_compiled_step_allocates_nothing() -> None:
    # NRT statistics count allocations made by compiled code. Calling from Python also
    # counts one wrapper per array argument, so the kernels are driven from a compiled
    # loop: 1 and 1000 iterations must allocate the same.
    code = textwrap.dedent(
        """
        import numba, numpy as np
        from numba.core.runtime import rtsys
        from forecaster.core import GRUSpec, gru_step, gru_readout, step_workspace
        spec = GRUSpec(input_size=4, hidden_size=32, num_layers=2, horizon=12)
        p, st = spec.init_params(0), np.zeros((100, spec.state_size))
        x, rows, w = np.ones((10, 4)), np.arange(10), step_workspace(spec)
        out = np.empty((10, 12))

        @numba.njit
        def drive(n, p, x, st, rows, w, out):
            for _ in range(n):
                gru_step(p, x, st, rows, w, 4, 32, 2, True)
                gru_readout(p, st, rows, out, 4, 32, 2)

        def allocations(n):
            before = rtsys.get_allocation_stats().alloc
            drive(n, p, x, st, rows, w, out)
            return rtsys.get_allocation_stats().alloc - before

        allocations(1)
        print(allocations(1000) - allocations(1))
        """
    )
    env = {**os.environ, "NUMBA_NRT_STATS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "0"
