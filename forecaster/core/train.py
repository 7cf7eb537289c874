"""One training step over a batch of windows: forward, loss, BPTT, clipping, update.

:class:`Trainer` owns the scratch arrays for a window shape and reuses them across
steps, so a training loop allocates nothing after its first step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from forecaster.core.backprop import backward_steps, forward_steps, output_grad
from forecaster.core.losses import Loss
from forecaster.core.optim import Adam, Optimizer, clip_grad_norm
from forecaster.core.params import F64Array, GRUSpec


@dataclass
class Workspace:
    """Forward cache and backward scratch for ``batch`` windows of ``steps`` events.

    Time-major (``(T, B, ...)``) so each time step's rows are one contiguous block.
    """

    spec: GRUSpec
    batch: int
    steps: int
    hs: F64Array = field(init=False)
    rr: F64Array = field(init=False)
    zz: F64Array = field(init=False)
    nn: F64Array = field(init=False)
    aux: F64Array = field(init=False)
    gi: F64Array = field(init=False)
    out: F64Array = field(init=False)
    dy: F64Array = field(init=False)
    dgi: F64Array = field(init=False)
    dgh: F64Array = field(init=False)
    dext: F64Array = field(init=False)
    grad: F64Array = field(init=False)

    def __post_init__(self) -> None:
        s, b, t = self.spec, self.batch, self.steps
        layers, h = s.num_layers, s.hidden_size
        self.hs = np.zeros((layers, t + 1, b, h))  # states, hs[:, 0] = h0
        self.rr, self.zz, self.nn, self.aux = (np.zeros((layers, t, b, h)) for _ in range(4))
        self.gi = np.zeros((t, b, 3 * h))  # one layer's input projection
        self.out = np.zeros((t, b, s.horizon))
        self.dy = np.zeros((t, b, s.horizon))
        self.dgi, self.dgh = np.zeros((t, b, 3 * h)), np.zeros((t, b, 3 * h))
        self.dext = np.zeros((t, b, h))
        self.grad = np.zeros(s.n_params)

    @property
    def yhat(self) -> F64Array:
        """Outputs of the last forward pass, ``(B, T, K)`` (a view)."""
        return self.out.transpose(1, 0, 2)


def forward(spec: GRUSpec, params: F64Array, x: F64Array, h0: F64Array, ws: Workspace) -> None:
    """Run windows ``x (B, T, D)`` from ``h0 (L, B, H)``, filling the cache and outputs."""
    nb, nt, h = ws.batch, ws.steps, spec.hidden_size
    n = nt * nb
    pv = spec.views(params)
    xin = x.transpose(1, 0, 2).reshape(n, -1)
    for layer in range(spec.num_layers):
        w_ih, w_hh = pv[f"weight_ih_l{layer}"], pv[f"weight_hh_l{layer}"]
        b_hh = pv[f"bias_hh_l{layer}"]
        hs, rr, zz, nn, aux = (a[layer] for a in (ws.hs, ws.rr, ws.zz, ws.nn, ws.aux))
        np.matmul(xin, w_ih.T, out=ws.gi.reshape(n, 3 * h))
        ws.gi += pv[f"bias_ih_l{layer}"]
        hs[0] = h0[layer]
        forward_steps(ws.gi, w_hh, b_hh, hs, rr, zz, nn, aux, spec.reset_after)
        xin = hs[1:].reshape(n, h)
    np.matmul(xin, pv["head.weight"].T, out=ws.out.reshape(n, spec.horizon))
    ws.out += pv["head.bias"]


def backward(spec: GRUSpec, params: F64Array, x: F64Array, ws: Workspace) -> None:
    """Gradient of the loss into ``ws.grad``, from the forward cache and ``ws.dy``.

    The recurrence steps back through time with one matrix product per step; weight
    gradients are then one product each over all ``T * B`` positions.
    """
    nb, nt, h = ws.batch, ws.steps, spec.hidden_size
    n = nt * nb
    pv, gv = spec.views(params), spec.views(ws.grad)
    dy = ws.dy.reshape(n, spec.horizon)
    gv["head.weight"][...] = dy.T @ ws.hs[-1, 1:].reshape(n, h)
    gv["head.bias"][...] = dy.sum(axis=0)
    np.matmul(dy, pv["head.weight"], out=ws.dext.reshape(n, h))
    dgi, dgh = ws.dgi.reshape(n, 3 * h), ws.dgh.reshape(n, 3 * h)
    for layer in range(spec.num_layers - 1, -1, -1):
        hs, rr, zz, nn, aux = (a[layer] for a in (ws.hs, ws.rr, ws.zz, ws.nn, ws.aux))
        backward_steps(ws.dext, hs, rr, zz, nn, aux, pv[f"weight_hh_l{layer}"], ws.dgi, ws.dgh,
                       spec.reset_after)  # fmt: skip
        xin = x.transpose(1, 0, 2).reshape(n, -1) if layer == 0 else ws.hs[layer - 1, 1:]
        gv[f"weight_ih_l{layer}"][...] = dgi.T @ xin.reshape(n, -1)
        hp = hs[:nt].reshape(n, h)
        if spec.reset_after:
            gv[f"weight_hh_l{layer}"][...] = dgh.T @ hp
        else:  # the candidate's hidden input is r * h, kept in aux
            gv[f"weight_hh_l{layer}"][: 2 * h] = dgh[:, : 2 * h].T @ hp
            gv[f"weight_hh_l{layer}"][2 * h :] = dgh[:, 2 * h :].T @ aux.reshape(n, h)
        gv[f"bias_ih_l{layer}"][...] = dgi.sum(axis=0)
        gv[f"bias_hh_l{layer}"][...] = dgh.sum(axis=0)
        if layer > 0:
            np.matmul(dgi, pv[f"weight_ih_l{layer}"], out=ws.dext.reshape(n, h))


class Trainer:
    """Gradient steps for a :class:`GRUSpec` on batches of windows.

    Parameters
    ----------
    spec
        The network's sizes.
    optimizer
        :class:`Adam` (default), :class:`SGD` or :class:`RMSprop`.
    loss
        ``"mse"`` (default), ``"mae"`` or ``"huber"``.
    huber_delta
        Threshold between the quadratic and linear parts of the Huber loss.
    clip_norm
        Largest L2 norm of the gradient before the update; ``None`` to not clip.

    Examples
    --------
    >>> import numpy as np
    >>> spec = GRUSpec(input_size=1, hidden_size=8, horizon=1)
    >>> trainer = Trainer(spec, Adam(lr=0.01))
    >>> params, state = spec.init_params(seed=1), trainer.init_state()
    >>> t = np.arange(33.0)
    >>> x, y = np.sin(t[:-1] / 3)[None, :, None], np.sin(t[1:] / 3)[None, :, None]
    >>> first = trainer.step(params, state, x, y)
    >>> for _ in range(99):
    ...     last = trainer.step(params, state, x, y)
    >>> print(f"{first:.3f} -> {last:.4f}")
    0.647 -> 0.0002
    """

    def __init__(
        self,
        spec: GRUSpec,
        optimizer: Optimizer | None = None,
        loss: str | Loss = Loss.MSE,
        huber_delta: float = 1.0,
        clip_norm: float | None = None,
    ) -> None:
        if not huber_delta > 0.0:
            msg = f"huber_delta must be > 0, got {huber_delta!r}"
            raise ValueError(msg)
        if clip_norm is not None and not clip_norm > 0.0:
            msg = f"clip_norm must be > 0 or None, got {clip_norm!r}"
            raise ValueError(msg)
        self.spec = spec
        self.optimizer: Optimizer = optimizer if optimizer is not None else Adam()
        self.loss = Loss.parse(loss)
        self.huber_delta = float(huber_delta)
        self.clip_norm = clip_norm
        self._ws: Workspace | None = None

    def init_state(self) -> F64Array:
        """A fresh optimiser state for this spec's parameter count."""
        return self.optimizer.init_state(self.spec.n_params)

    def workspace(self, batch: int, steps: int) -> Workspace:
        """The scratch arrays for this window shape (kept while the shape repeats)."""
        ws = self._ws
        if ws is None or ws.batch != batch or ws.steps != steps:
            ws = self._ws = Workspace(self.spec, batch, steps)
        return ws

    def loss_and_grad(
        self,
        params: F64Array,
        x: F64Array,
        y: F64Array,
        weights: F64Array | None = None,
        h0: F64Array | None = None,
    ) -> tuple[float, F64Array]:
        """Loss over windows ``x (B, T, D)`` with targets ``y (B, T, K)``, and its gradient.

        ``weights`` ``(B, T, K)`` defaults to all ones; ``h0`` ``(L, B, H)`` to zeros.
        The gradient is the workspace's array: copy it to keep it past the next call.
        """
        s = self.spec
        if x.ndim != 3 or x.shape[2] != s.input_size:
            msg = f"x must have shape (B, T, {s.input_size}), got {x.shape}"
            raise ValueError(msg)
        nb, nt = x.shape[0], x.shape[1]
        if y.shape != (nb, nt, s.horizon):
            msg = f"y must have shape {(nb, nt, s.horizon)}, got {y.shape}"
            raise ValueError(msg)
        w = np.ones_like(y) if weights is None else weights
        if w.shape != y.shape:
            msg = f"weights must have shape {y.shape}, got {w.shape}"
            raise ValueError(msg)
        if h0 is None:
            h0 = np.zeros((s.num_layers, nb, s.hidden_size))
        elif h0.shape != (s.num_layers, nb, s.hidden_size):
            msg = f"h0 must have shape {(s.num_layers, nb, s.hidden_size)}, got {h0.shape}"
            raise ValueError(msg)
        x, y, w, h0 = (np.ascontiguousarray(a, dtype=np.float64) for a in (x, y, w, h0))
        ws = self.workspace(nb, nt)
        forward(s, params, x, h0, ws)
        loss = output_grad(ws.out, y, w, ws.dy, int(self.loss), self.huber_delta)
        if w.any():
            backward(s, params, x, ws)
        else:
            ws.grad[:] = 0.0
        return loss, ws.grad

    def step(
        self,
        params: F64Array,
        opt_state: F64Array,
        x: F64Array,
        y: F64Array,
        weights: F64Array | None = None,
        h0: F64Array | None = None,
    ) -> float:
        """One optimiser step on ``params`` in place; returns the loss before the step."""
        loss, grad = self.loss_and_grad(params, x, y, weights, h0)
        if self.clip_norm is not None:
            clip_grad_norm(grad, self.clip_norm)
        self.optimizer.update(params, grad, opt_state)
        return loss
