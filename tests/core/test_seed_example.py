"""The worked example of the seed slides (../shared/seeds/000_*.txt), to 4 decimals.

The slides write h_t = (1 - u) h_{t-1} + u a with u = sigmoid(Wu [x, h] + bu); our
(PyTorch's) update gate is z = 1 - u = sigmoid(-(Wu [x, h] + bu)), so the z weights
are the slides' weights negated. The reset gate multiplies h before its matrix
product: the reset-before form. The output is the hidden state itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from forecaster.core import GRUSpec, Trainer, gru_step, step_workspace

X = np.array([[0.1, 0.4], [0.7, 0.9]])
TARGETS = np.array([0.3, 0.5])


def seed_params() -> tuple[GRUSpec, np.ndarray]:
    spec = GRUSpec(input_size=2, hidden_size=1, num_layers=1, horizon=1, reset_after=False)
    params = np.zeros(spec.n_params)
    v = spec.views(params)
    wr, br = [0.7, 0.3, 0.4], 0.4
    wa, ba = [0.2, 0.3, 0.4], 0.3
    wu, bu = [0.4, 0.2, 0.1], 0.5
    v["weight_ih_l0"][:] = [wr[:2], [-w for w in wu[:2]], wa[:2]]
    v["weight_hh_l0"][:] = [[wr[2]], [-wu[2]], [wa[2]]]
    v["bias_ih_l0"][:] = [br, -bu, ba]
    v["head.weight"][:] = 1.0  # output = hidden state
    return spec, params


def test_step_reproduces_gates_outputs_and_errors() -> None:
    spec, params = seed_params()
    state = np.zeros((1, 1))
    work = step_workspace(spec)
    expected = [
        # r, a (= n), u (= 1 - z), y (= h), error against the target
        (0.6434, 0.4136, 0.6502, 0.2690, -0.0310),
        (0.7803, 0.6606, 0.7285, 0.5543, 0.0543),
    ]
    for t, (r, a, u, y, err) in enumerate(expected):
        gru_step(params, X[t : t + 1], state, np.array([0]), work, 2, 1, 1, False)
        r_, z_, n_ = work[3, 0], work[4, 0], work[5, 0]
        assert (round(r_, 4), round(n_, 4), round(1 - z_, 4)) == (r, a, u)
        assert round(state[0, 0], 4) == y
        assert round(state[0, 0] - TARGETS[t], 4) == pytest.approx(err, abs=1e-12)


def test_training_forward_agrees_and_loss_is_the_mean_squared_error() -> None:
    spec, params = seed_params()
    trainer = Trainer(spec)
    loss, _ = trainer.loss_and_grad(params, X[None], TARGETS[None, :, None])
    ws = trainer.workspace(1, 2)
    np.testing.assert_allclose(ws.yhat.ravel(), [0.26895929, 0.55428957], atol=5e-9)
    np.testing.assert_allclose(ws.rr[0, :, 0, 0], [0.64336515, 0.78032884], atol=5e-9)
    errors = ws.yhat.ravel() - TARGETS
    assert np.round(errors, 4).tolist() == [-0.0310, 0.0543]
    assert loss == pytest.approx(np.mean(errors**2), rel=1e-14)
