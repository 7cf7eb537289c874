"""Training kernels: forward over a batch of windows, loss, and backprop through time.

A batch is ``B`` windows of ``T`` events. Each window starts from a given hidden state
``h0`` that is treated as a constant (truncated BPTT: gradients stop at the window's
start). The head forecasts steps 1..K after every event, so targets ``Y`` and weights
``W`` are ``(B, T, K)``; a zero weight masks a position (burn-in, or a future not yet
seen). The loss is ``sum(W * loss(yhat - Y)) / sum(W)``.

Cache layout (written by :func:`forward_windows`): ``hs (L, T+1, B, H)`` states with
``hs[:, 0] = h0``; gates ``rr, zz, nn (L, T, B, H)``; ``aux (L, T, B, H)`` holding
``U_n h + b_hn`` (reset-after) or ``r * h`` (reset-before).

Backprop is split by the shape of its work. The recurrence (gate gradients and the
gradient carried to the previous state) is sequential in time and runs here, in
:func:`output_grad` and :func:`recurrent_backward`. Everything else is a plain matrix
product over all ``T * B`` positions at once (weight gradients, the head, the gradient
into the layer below) and is left to NumPy's matmul in :mod:`forecaster.core.train`.
"""

from __future__ import annotations

from forecaster.core._jit import jit
from forecaster.core.gru import cell_forward, layer_views
from forecaster.core.linalg import matvec_acc
from forecaster.core.losses import loss_deriv, loss_value
from forecaster.core.params import F64Array, head_offset


@jit
def forward_windows(
    params: F64Array,
    x: F64Array,
    h0: F64Array,
    hs: F64Array,
    rr: F64Array,
    zz: F64Array,
    nn: F64Array,
    aux: F64Array,
    yhat: F64Array,
    work: F64Array,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    reset_after: bool,
) -> None:
    """Run windows ``x (B, T, D)`` from ``h0 (L, B, H)``; fill the cache and ``yhat``."""
    nb, nt = x.shape[0], x.shape[1]
    hsz = hidden_size
    gi = work[0]
    gh = work[1]
    for layer in range(num_layers):
        wi, wh, bi, bh = layer_views(params, input_size, hsz, layer)
        for b in range(nb):
            hs[layer, 0, b, :] = h0[layer, b, :]
        for t in range(nt):
            for b in range(nb):
                xin = x[b, t] if layer == 0 else hs[layer - 1, t + 1, b]
                q = aux[layer, t, b]
                cell_forward(
                    wi,
                    wh,
                    bi,
                    bh,
                    xin,
                    hs[layer, t, b],
                    hs[layer, t + 1, b],
                    gi,
                    gh,
                    q,
                    rr[layer, t, b],
                    zz[layer, t, b],
                    nn[layer, t, b],
                    reset_after,
                )
                if reset_after:
                    for j in range(hsz):
                        q[j] = gh[2 * hsz + j]
    horizon = yhat.shape[2]
    o = head_offset(input_size, hsz, num_layers)
    wo = params[o : o + hsz * horizon].reshape(hsz, horizon)
    bo = params[o + hsz * horizon : o + (hsz + 1) * horizon]
    for b in range(nb):
        for t in range(nt):
            htop = hs[num_layers - 1, t + 1, b]
            for k in range(horizon):
                yhat[b, t, k] = bo[k]
            for j in range(hsz):
                hj = htop[j]
                for k in range(horizon):
                    yhat[b, t, k] += hj * wo[j, k]


@jit
def output_grad(
    yhat: F64Array,
    y: F64Array,
    w: F64Array,
    dy: F64Array,
    loss_kind: int,
    delta: float,
) -> float:
    """Weighted mean loss of ``yhat`` against ``y``; its gradient into ``dy (T, B, K)``.

    Returns 0.0 and a zero ``dy`` when every weight is zero.
    """
    nb, nt, horizon = y.shape[0], y.shape[1], y.shape[2]
    wsum = 0.0
    total = 0.0
    for b in range(nb):
        for t in range(nt):
            for k in range(horizon):
                e = yhat[b, t, k] - y[b, t, k]
                wsum += w[b, t, k]
                total += w[b, t, k] * loss_value(e, loss_kind, delta)
                dy[t, b, k] = w[b, t, k] * loss_deriv(e, loss_kind, delta)
    if wsum == 0.0:
        dy[:] = 0.0
        return 0.0
    for t in range(nt):
        for b in range(nb):
            for k in range(horizon):
                dy[t, b, k] /= wsum
    return total / wsum


@jit
def recurrent_backward(
    wh_n: F64Array,
    hs: F64Array,
    rr: F64Array,
    zz: F64Array,
    nn: F64Array,
    aux: F64Array,
    dext: F64Array,
    dgi: F64Array,
    dgh: F64Array,
    dcarry: F64Array,
    dq: F64Array,
    reset_after: bool,
) -> None:
    """Backprop one layer's recurrence through time, from its cache (one layer's slices).

    ``hs`` is ``(T+1, B, H)``; ``rr``, ``zz``, ``nn``, ``aux`` and ``dext`` (the gradient
    arriving at each output from above) are ``(T, B, H)``. Writes the gradients of the
    input-side and hidden-side gate pre-activations into ``dgi`` and ``dgh`` ``(T, B, 3H)``.
    ``wh_n`` is ``W_hh`` in PyTorch's ``(3H, H)`` orientation; ``dcarry (B, H)`` and
    ``dq (H,)`` are scratch.
    """
    nt, nb, hsz = dext.shape[0], dext.shape[1], dext.shape[2]
    g = 3 * hsz
    ncols = g if reset_after else 2 * hsz
    dcarry[:] = 0.0
    for t in range(nt - 1, -1, -1):
        for b in range(nb):
            hp = hs[t, b]
            r = rr[t, b]
            z = zz[t, b]
            n = nn[t, b]
            a = aux[t, b]
            dc = dcarry[b]
            gi = dgi[t, b]
            gh = dgh[t, b]
            for j in range(hsz):
                dh = dext[t, b, j] + dc[j]
                dc[j] = dh * z[j]
                dan = dh * (1.0 - z[j]) * (1.0 - n[j] * n[j])
                daz = dh * (hp[j] - n[j]) * z[j] * (1.0 - z[j])
                gi[hsz + j] = daz
                gh[hsz + j] = daz
                gi[2 * hsz + j] = dan
                if reset_after:
                    dar = dan * a[j] * r[j] * (1.0 - r[j])
                    gi[j] = dar
                    gh[j] = dar
                    gh[2 * hsz + j] = dan * r[j]
                else:
                    gh[2 * hsz + j] = dan
            if not reset_after:
                # n's hidden input is q = r * h: route its gradient to r and h.
                dq[:] = 0.0
                matvec_acc(dq, wh_n[2 * hsz :], gh[2 * hsz :], 0, hsz)
                for k in range(hsz):
                    dc[k] += dq[k] * r[k]
                    dar = dq[k] * hp[k] * r[k] * (1.0 - r[k])
                    gi[k] = dar
                    gh[k] = dar
            matvec_acc(dc, wh_n[:ncols], gh[:ncols], 0, hsz)
