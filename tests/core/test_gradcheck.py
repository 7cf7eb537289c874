"""Central finite differences against the analytic gradient, in both GRU forms."""

from __future__ import annotations

import numpy as np
import pytest

from forecaster.core import GRUSpec, Trainer


@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_gradient_matches_central_differences(reset_after: bool, num_layers: int) -> None:
    spec = GRUSpec(
        input_size=2, hidden_size=3, num_layers=num_layers, horizon=2, reset_after=reset_after
    )
    rng = np.random.default_rng(42)
    params = spec.init_params(seed=0) * 2.0  # larger weights exercise the nonlinearities
    x = rng.normal(size=(2, 6, 2))
    y = rng.normal(size=(2, 6, 2))
    h0 = rng.normal(scale=0.3, size=(num_layers, 2, 3))
    trainer = Trainer(spec)
    _, grad = trainer.loss_and_grad(params, x, y, h0=h0)
    grad = grad.copy()

    eps = 1e-6
    numeric = np.empty_like(params)
    for i in range(params.size):
        saved = params[i]
        params[i] = saved + eps
        up, _ = trainer.loss_and_grad(params, x, y, h0=h0)
        params[i] = saved - eps
        down, _ = trainer.loss_and_grad(params, x, y, h0=h0)
        params[i] = saved
        numeric[i] = (up - down) / (2 * eps)
    scale = np.maximum(np.abs(numeric), np.abs(grad)).max()
    assert np.abs(numeric - grad).max() <= 1e-6 * scale
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
