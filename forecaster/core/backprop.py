"""Training kernels: the elementwise halves of a GRU layer over a batch of windows.

Training runs all ``B`` windows of a batch in lockstep, one time step at a time. At
each step the matrix products (all windows' states times ``W_hh``) are single BLAS
calls; these kernels do the elementwise work between them, forward (gates,
candidate, update) and backward (gate gradients), and :func:`forward_steps` and
:func:`backward_steps` run a layer's whole time loop in one compiled call.
Arrays are ``(B, ...)`` slices of one time step; ``H`` is read from their shapes.

Conventions as in :mod:`forecaster.core.gru`. ``aux`` keeps, per position, what the
candidate's hidden input was: ``U_n h + b_hn`` (reset-after) or ``r * h`` (reset-before).
"""

from __future__ import annotations

import numpy as np

# Numba's np.dot calls the BLAS that SciPy ships, not NumPy's. Loading it with this module
# (not at a kernel's first call) lets a thread limit set later (threadpoolctl, as the
# replay and the service's training thread do) reach it too.
import scipy.linalg.cython_blas  # noqa: F401

from forecaster.core._jit import jit
from forecaster.core.activations import sigmoid, tanh
from forecaster.core.losses import loss_deriv, loss_value
from forecaster.core.params import F64Array


@jit
def rz_gates(
    gi: F64Array, gh: F64Array, bh: F64Array, hp: F64Array, r: F64Array, z: F64Array,
    q: F64Array,
) -> None:  # fmt: skip
    """Reset and update gates, and ``q = r * h``.

    ``gi (B, 3H)`` holds ``W_ih x + b_ih``; ``gh (B, 3H)`` holds ``W_hh h`` (no bias) in
    its first 2H columns; ``hp (B, H)`` is the previous state. Every array is
    C-contiguous, so the loops vectorise.
    """
    hsz = hp.shape[1]
    for b in range(hp.shape[0]):
        for j in range(hsz):
            rj = sigmoid(gi[b, j] + (gh[b, j] + bh[j]))
            r[b, j] = rj
            z[b, j] = sigmoid(gi[b, hsz + j] + (gh[b, hsz + j] + bh[hsz + j]))
            q[b, j] = rj * hp[b, j]


@jit
def candidate_update(
    gi: F64Array,
    gh: F64Array,
    bh: F64Array,
    hp: F64Array,
    r: F64Array,
    z: F64Array,
    n: F64Array,
    aux: F64Array,
    hout: F64Array,
    reset_after: bool,
) -> None:
    """Candidate ``n`` and new state ``hout = (1 - z) * n + z * hp``.

    ``gh[:, 2H:]`` is ``U_n h`` (reset-after) or ``U_n (r * h)`` (reset-before), without
    its bias ``bh[2H:]``. For reset-after, ``aux`` receives ``U_n h + b_hn``; for
    reset-before it already holds ``r * h`` and is left alone.
    """
    hsz = hp.shape[1]
    for b in range(hp.shape[0]):
        for j in range(hsz):
            a = gh[b, 2 * hsz + j] + bh[2 * hsz + j]
            if reset_after:
                aux[b, j] = a
                nj = tanh(gi[b, 2 * hsz + j] + r[b, j] * a)
            else:
                nj = tanh(gi[b, 2 * hsz + j] + a)
            n[b, j] = nj
            hout[b, j] = (1.0 - z[b, j]) * nj + z[b, j] * hp[b, j]


@jit
def gates_backward(
    dext: F64Array,
    dcarry: F64Array,
    hp: F64Array,
    r: F64Array,
    z: F64Array,
    n: F64Array,
    aux: F64Array,
    dgi: F64Array,
    dgh: F64Array,
    reset_after: bool,
) -> None:
    """Gate pre-activation gradients at one time step, for every window.

    ``dext (B, H)`` is the gradient arriving at this step's output from above (head or
    next layer) and ``dcarry (B, H)`` the one from the next time step; ``dcarry`` is
    replaced by the part that flows to ``hp`` directly through ``z * h``. Writes
    ``dgi`` and ``dgh`` ``(B, 3H)``. For reset-before, the reset gate's part of both is
    left for :func:`reset_backward`, which needs ``U_n^T`` applied to ``dgh[:, 2H:]``.
    """
    hsz = hp.shape[1]
    for b in range(hp.shape[0]):
        for j in range(hsz):
            dh = dext[b, j] + dcarry[b, j]
            zj, nj = z[b, j], n[b, j]
            dcarry[b, j] = dh * zj
            dan = dh * (1.0 - zj) * (1.0 - nj * nj)
            daz = dh * (hp[b, j] - nj) * zj * (1.0 - zj)
            dgi[b, hsz + j] = daz
            dgh[b, hsz + j] = daz
            dgi[b, 2 * hsz + j] = dan
            if reset_after:
                rj = r[b, j]
                dar = dan * aux[b, j] * rj * (1.0 - rj)
                dgi[b, j] = dar
                dgh[b, j] = dar
                dgh[b, 2 * hsz + j] = dan * rj
            else:
                dgh[b, 2 * hsz + j] = dan


@jit
def reset_backward(
    dq: F64Array, hp: F64Array, r: F64Array, dcarry: F64Array, dgi: F64Array, dgh: F64Array
) -> None:
    """Reset-before only: route ``dq``, the gradient of ``q = r * h``, to ``r`` and ``h``."""
    hsz = hp.shape[1]
    for b in range(hp.shape[0]):
        for j in range(hsz):
            rj = r[b, j]
            dcarry[b, j] += dq[b, j] * rj
            dar = dq[b, j] * hp[b, j] * rj * (1.0 - rj)
            dgi[b, j] = dar
            dgh[b, j] = dar


@jit
def output_grad(
    yhat: F64Array,
    y: F64Array,
    w: F64Array,
    dy: F64Array,
    loss_kind: int,
    delta: float,
) -> float:
    """Weighted mean loss of ``yhat (T, B, K)`` against ``y (B, T, K)``; gradient into ``dy``.

    ``dy`` is ``(T, B, K)``. Returns 0.0 with a zero ``dy`` when every weight is zero.
    """
    nb, nt, horizon = y.shape[0], y.shape[1], y.shape[2]
    wsum = 0.0
    total = 0.0
    for b in range(nb):
        for t in range(nt):
            for k in range(horizon):
                e = yhat[t, b, k] - y[b, t, k]
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
def forward_steps(
    gi: F64Array,
    w_hh: F64Array,
    bh: F64Array,
    hs: F64Array,
    r: F64Array,
    z: F64Array,
    n: F64Array,
    aux: F64Array,
    reset_after: bool,
) -> None:
    """One layer's recurrence over all ``T`` steps: ``hs[t + 1]`` from ``hs[t]``.

    The whole time loop is one call and its products go to BLAS from compiled code
    (``np.dot``), so a step costs its arithmetic and not a Python round trip per
    product and kernel (those trips were about a fifth of a training step of 16
    windows of 32 units: 2.19 -> 1.70 ms).
    ``gi (T, B, 3H)`` holds ``W_ih x + b_ih``; ``w_hh (3H, H)``; ``hs (T + 1, B, H)``
    starts from ``hs[0]``; ``r``, ``z``, ``n``, ``aux`` are ``(T, B, H)`` caches.
    """
    nb, hsz = hs.shape[1], hs.shape[2]
    gh = np.zeros((nb, 3 * hsz))
    if reset_after:
        u_all = np.ascontiguousarray(w_hh.T)
        for t in range(gi.shape[0]):
            np.dot(hs[t], u_all, gh)
            rz_gates(gi[t], gh, bh, hs[t], r[t], z[t], aux[t])
            candidate_update(gi[t], gh, bh, hs[t], r[t], z[t], n[t], aux[t], hs[t + 1], True)
        return
    # Reset-before: U_n multiplies r * h, known only after the gates; BLAS writes
    # contiguous blocks, copied into gh's columns.
    u_rz = np.ascontiguousarray(w_hh[: 2 * hsz].T)
    u_n = np.ascontiguousarray(w_hh[2 * hsz :].T)
    g_rz, g_n = np.empty((nb, 2 * hsz)), np.empty((nb, hsz))
    for t in range(gi.shape[0]):
        np.dot(hs[t], u_rz, g_rz)
        gh[:, : 2 * hsz] = g_rz
        rz_gates(gi[t], gh, bh, hs[t], r[t], z[t], aux[t])
        np.dot(aux[t], u_n, g_n)
        gh[:, 2 * hsz :] = g_n
        candidate_update(gi[t], gh, bh, hs[t], r[t], z[t], n[t], aux[t], hs[t + 1], False)


@jit
def backward_steps(
    dext: F64Array,
    hs: F64Array,
    r: F64Array,
    z: F64Array,
    n: F64Array,
    aux: F64Array,
    w_hh: F64Array,
    dgi: F64Array,
    dgh: F64Array,
    reset_after: bool,
) -> None:
    """One layer's gate gradients ``dgi``, ``dgh`` ``(T, B, 3H)``, back through time.

    The whole backward time loop in one call, its products in BLAS as in
    :func:`forward_steps`. ``dext (T, B, H)`` is the gradient arriving from above at
    each step's output; the gradient carried from step to step starts at zero.
    """
    nb, hsz = hs.shape[1], hs.shape[2]
    dcarry, tmp = np.zeros((nb, hsz)), np.empty((nb, hsz))
    if reset_after:
        u_all = np.ascontiguousarray(w_hh)
        for t in range(dext.shape[0] - 1, -1, -1):
            gates_backward(dext[t], dcarry, hs[t], r[t], z[t], n[t], aux[t], dgi[t], dgh[t], True)
            np.dot(dgh[t], u_all, tmp)
            dcarry += tmp
        return
    # Reset-before: the reset gate's share needs U_n^T applied first; BLAS reads
    # contiguous blocks, copied out of dgh's columns.
    u_rz, u_n = np.ascontiguousarray(w_hh[: 2 * hsz]), np.ascontiguousarray(w_hh[2 * hsz :])
    g_rz, g_n = np.empty((nb, 2 * hsz)), np.empty((nb, hsz))
    for t in range(dext.shape[0] - 1, -1, -1):
        gates_backward(dext[t], dcarry, hs[t], r[t], z[t], n[t], aux[t], dgi[t], dgh[t], False)
        g_n[:] = dgh[t, :, 2 * hsz :]
        np.dot(g_n, u_n, tmp)
        reset_backward(tmp, hs[t], r[t], dcarry, dgi[t], dgh[t])
        g_rz[:] = dgh[t, :, : 2 * hsz]
        np.dot(g_rz, u_rz, tmp)
        dcarry += tmp
