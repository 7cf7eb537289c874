"""Oracle tests: our kernels against PyTorch with the same weights, in float64.

torch is a test-only dependency; the test command installs it, so these never skip.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forecaster.core import SGD, Adam, GRUSpec, RMSprop, Trainer

pytestmark = pytest.mark.torch
RTOL = 1e-9


def torch_model(spec: GRUSpec, params: np.ndarray) -> tuple[torch.nn.GRU, torch.nn.Linear]:
    gru = torch.nn.GRU(
        spec.input_size, spec.hidden_size, spec.num_layers, batch_first=True, dtype=torch.float64
    )
    head = torch.nn.Linear(spec.hidden_size, spec.horizon, dtype=torch.float64)
    views = spec.views(params)
    with torch.no_grad():
        for name, p in gru.named_parameters():
            p.copy_(torch.from_numpy(np.ascontiguousarray(views[name])))
        head.weight.copy_(torch.from_numpy(np.ascontiguousarray(views["head.weight"])))
        head.bias.copy_(torch.from_numpy(views["head.bias"]))
    return gru, head


def torch_loss(e: torch.Tensor, kind: str, delta: float) -> torch.Tensor:
    if kind == "mse":
        return e**2
    if kind == "mae":
        return e.abs()
    return torch.nn.functional.huber_loss(e, torch.zeros_like(e), reduction="none", delta=delta)


def assert_close(ours: np.ndarray, theirs: torch.Tensor, what: str) -> None:
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=RTOL, atol=1e-15, err_msg=what)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_forward_states_and_every_gradient_match_torch(num_layers: int, loss: str) -> None:
    spec = GRUSpec(input_size=3, hidden_size=5, num_layers=num_layers, horizon=4)
    rng = np.random.default_rng(7)
    params = spec.init_params(seed=3)
    nb, nt = 4, 9
    x = rng.normal(size=(nb, nt, 3))
    y = rng.normal(size=(nb, nt, 4))
    w = (rng.random(size=(nb, nt, 4)) > 0.3).astype(float)  # masked positions
    h0 = rng.normal(scale=0.5, size=(num_layers, nb, 5))

    trainer = Trainer(spec, loss=loss, huber_delta=0.7)
    our_loss, grad = trainer.loss_and_grad(params, x, y, w, h0)
    ws = trainer.workspace(nb, nt)

    gru, head = torch_model(spec, params)
    out, hn = gru(torch.from_numpy(x), torch.from_numpy(h0))
    yhat = head(out)
    wt = torch.from_numpy(w)
    ref_loss = (wt * torch_loss(yhat - torch.from_numpy(y), loss, 0.7)).sum() / wt.sum()
    ref_loss.backward()

    assert our_loss == pytest.approx(ref_loss.item(), rel=RTOL)
    assert_close(ws.yhat, yhat, "outputs")
    assert_close(ws.hs[-1, 1:].transpose(1, 0, 2), out, "top-layer states")
    assert_close(ws.hs[:, nt], hn, "final states of every layer")
    views = spec.views(grad)
    named = [*gru.named_parameters(), ("head.weight", head.weight), ("head.bias", head.bias)]
    for name, p in named:
        assert p.grad is not None
        assert_close(views[name], p.grad, f"gradient of {name}")


def optimiser_pairs() -> list[tuple[object, object]]:
    return [
        (Adam(), lambda ps: torch.optim.Adam(ps)),
        (
            Adam(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1),
            lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1),
        ),
        (SGD(lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
        (
            SGD(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
            lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
        ),
        (
            SGD(lr=0.05, momentum=0.9, nesterov=True),
            lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
        ),
        (RMSprop(), lambda ps: torch.optim.RMSprop(ps)),
        (
            RMSprop(lr=0.005, alpha=0.9, eps=1e-7, momentum=0.5, centered=True, weight_decay=0.02),
            lambda ps: torch.optim.RMSprop(
                ps, lr=0.005, alpha=0.9, eps=1e-7, momentum=0.5, centered=True, weight_decay=0.02
            ),
        ),
    ]


@pytest.mark.parametrize(("ours", "make_torch"), optimiser_pairs(), ids=lambda o: repr(o)[:60])
def test_optimiser_steps_match_torch(ours: Adam | SGD | RMSprop, make_torch: object) -> None:
    rng = np.random.default_rng(11)
    n = 50
    params = rng.normal(size=n)
    state = ours.init_state(n)
    tp = torch.tensor(params.copy(), requires_grad=True)
    topt = make_torch([tp])  # type: ignore[operator]
    for _ in range(3):  # the first step is special for SGD momentum; later ones use state
        g = rng.normal(size=n)
        ours.update(params, g, state)
        tp.grad = torch.from_numpy(g.copy())
        topt.step()
        np.testing.assert_allclose(params, tp.detach().numpy(), rtol=1e-12, atol=0)


def test_gradient_clipping_matches_torch() -> None:
    from forecaster.core import clip_grad_norm

    rng = np.random.default_rng(5)
    g = rng.normal(size=40) * 3
    t = torch.zeros(40, dtype=torch.float64, requires_grad=True)
    t.grad = torch.from_numpy(g.copy())
    ref_norm = torch.nn.utils.clip_grad_norm_([t], max_norm=1.5)
    norm = clip_grad_norm(g, 1.5)
    assert norm == pytest.approx(ref_norm.item(), rel=1e-12)
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12, atol=0)
