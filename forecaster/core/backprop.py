"""Training kernels: forward over a batch of windows, loss, and backprop through time.

A batch is ``B`` windows of ``T`` events. Each window starts from a given hidden state
``h0`` that is treated as a constant (truncated BPTT: gradients stop at the window's
start). The head forecasts steps 1..K after every event, so targets ``Y`` and weights
``W`` are ``(B, T, K)``; a zero weight masks a position (burn-in, or a future not yet
seen). The loss is ``sum(W * loss(yhat - Y)) / sum(W)``.

Cache layout (written by :func:`forward_windows`, read by :func:`loss_and_grad`):
``hs (L, T+1, B, H)`` states with ``hs[:, 0] = h0``; gates ``rr, zz, nn (L, T, B, H)``;
``aux (L, T, B, H)`` holding ``U_n h + b_hn`` (reset-after) or ``r * h`` (reset-before).
"""

from __future__ import annotations

from forecaster.core._jit import jit
from forecaster.core.gru import cell_forward, layer_views
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
def loss_and_grad(
    params: F64Array,
    x: F64Array,
    y: F64Array,
    w: F64Array,
    grad: F64Array,
    hs: F64Array,
    rr: F64Array,
    zz: F64Array,
    nn: F64Array,
    aux: F64Array,
    yhat: F64Array,
    dext: F64Array,
    dbelow: F64Array,
    dcarry: F64Array,
    work: F64Array,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    reset_after: bool,
    loss_kind: int,
    delta: float,
) -> float:
    """Loss of the cached forward pass and its gradient, written into ``grad``.

    Call :func:`forward_windows` first with the same ``params`` and ``x``. ``dext`` and
    ``dbelow`` are ``(T, B, H)`` scratch, ``dcarry`` ``(B, H)``, ``work`` ``(6, 3H)``.
    Returns the weighted mean loss (0.0, with a zero gradient, when all weights are 0).
    """
    nb, nt, horizon = y.shape[0], y.shape[1], y.shape[2]
    hsz = hidden_size
    g = 3 * hsz
    grad[:] = 0.0
    wsum = 0.0
    total = 0.0
    for b in range(nb):
        for t in range(nt):
            for k in range(horizon):
                wsum += w[b, t, k]
                total += w[b, t, k] * loss_value(yhat[b, t, k] - y[b, t, k], loss_kind, delta)
    if wsum == 0.0:
        return 0.0
    # The head: gradients of W_o, b_o, and of the top layer's states.
    o = head_offset(input_size, hsz, num_layers)
    wo = params[o : o + hsz * horizon].reshape(hsz, horizon)
    dwo = grad[o : o + hsz * horizon].reshape(hsz, horizon)
    dbo = grad[o + hsz * horizon : o + (hsz + 1) * horizon]
    dy = work[2, :horizon]
    for t in range(nt):
        for b in range(nb):
            for k in range(horizon):
                dy[k] = w[b, t, k] * loss_deriv(yhat[b, t, k] - y[b, t, k], loss_kind, delta) / wsum
                dbo[k] += dy[k]
            htop = hs[num_layers - 1, t + 1, b]
            for j in range(hsz):
                s = 0.0
                for k in range(horizon):
                    dwo[j, k] += htop[j] * dy[k]
                    s += wo[j, k] * dy[k]
                dext[t, b, j] = s
    dgi = work[0]
    dgh = work[1]
    for layer in range(num_layers - 1, -1, -1):
        wi, wh, _, _ = layer_views(params, input_size, hsz, layer)
        dwi, dwh, dbi, dbh = layer_views(grad, input_size, hsz, layer)
        dcarry[:] = 0.0
        for t in range(nt - 1, -1, -1):
            for b in range(nb):
                hp = hs[layer, t, b]
                r = rr[layer, t, b]
                z = zz[layer, t, b]
                n = nn[layer, t, b]
                a = aux[layer, t, b]
                dc = dcarry[b]
                for j in range(hsz):
                    dh = dext[t, b, j] + dc[j]
                    dc[j] = dh * z[j]
                    dan = dh * (1.0 - z[j]) * (1.0 - n[j] * n[j])
                    daz = dh * (hp[j] - n[j]) * z[j] * (1.0 - z[j])
                    dgi[hsz + j] = daz
                    dgh[hsz + j] = daz
                    dgi[2 * hsz + j] = dan
                    if reset_after:
                        dar = dan * a[j] * r[j] * (1.0 - r[j])
                        dgi[j] = dar
                        dgh[j] = dar
                        dgh[2 * hsz + j] = dan * r[j]
                    else:
                        dgh[2 * hsz + j] = dan
                if not reset_after:
                    # n's hidden input is q = r * h: route its gradient to r and h.
                    for k in range(hsz):
                        dq = 0.0
                        for j in range(2 * hsz, g):
                            dq += wh[k, j] * dgh[j]
                        dc[k] += dq * r[k]
                        dar = dq * hp[k] * r[k] * (1.0 - r[k])
                        dgi[k] = dar
                        dgh[k] = dar
                xin = x[b, t] if layer == 0 else hs[layer - 1, t + 1, b]
                for k in range(xin.shape[0]):
                    xk = xin[k]
                    for j in range(g):
                        dwi[k, j] += xk * dgi[j]
                for j in range(g):
                    dbi[j] += dgi[j]
                    dbh[j] += dgh[j]
                nsrc = hp if reset_after else a
                for k in range(hsz):
                    hk = hp[k]
                    for j in range(2 * hsz):
                        dwh[k, j] += hk * dgh[j]
                    sk = nsrc[k]
                    for j in range(2 * hsz, g):
                        dwh[k, j] += sk * dgh[j]
                ncols = g if reset_after else 2 * hsz
                for k in range(hsz):
                    s = 0.0
                    for j in range(ncols):
                        s += wh[k, j] * dgh[j]
                    dc[k] += s
                if layer > 0:
                    for k in range(hsz):
                        s = 0.0
                        for j in range(g):
                            s += wi[k, j] * dgi[j]
                        dbelow[t, b, k] = s
        if layer > 0:
            dext, dbelow = dbelow, dext
    return total / wsum
