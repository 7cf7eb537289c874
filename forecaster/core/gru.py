"""GRU forward kernels: the per-event step for many series, and the linear head.

Conventions (PyTorch's): gates in the order r, z, n and the update
``h' = (1 - z) * n + z * h``. Cho et al.'s papers and the seed slides write
``h' = (1 - u) * h + u * a``; they are the same cell with ``u = 1 - z``.

A series' hidden state is one row of a state matrix ``(n_series, L * H)``, layer 0
first. :func:`gru_step` advances a batch of rows in place and allocates nothing.
"""

from __future__ import annotations

import numpy as np

from forecaster.core._jit import inline, jit
from forecaster.core.activations import sigmoid, tanh
from forecaster.core.linalg import matvec_acc
from forecaster.core.params import F64Array, GRUSpec, I64Array, head_offset, layer_offset


@inline
def layer_views(
    params: F64Array, input_size: int, hidden_size: int, layer: int
) -> tuple[F64Array, F64Array, F64Array, F64Array]:
    """``(W_ih^T (Din, 3H), W_hh^T (H, 3H), b_ih (3H,), b_hh (3H,))`` of one layer."""
    g = 3 * hidden_size
    din = input_size if layer == 0 else hidden_size
    o = layer_offset(input_size, hidden_size, layer)
    wi = params[o : o + din * g].reshape(din, g)
    o += din * g
    wh = params[o : o + hidden_size * g].reshape(hidden_size, g)
    o += hidden_size * g
    return wi, wh, params[o : o + g], params[o + g : o + 2 * g]


@inline
def cell_forward(
    wi: F64Array,
    wh: F64Array,
    bi: F64Array,
    bh: F64Array,
    x: F64Array,
    hp: F64Array,
    hout: F64Array,
    gi: F64Array,
    gh: F64Array,
    q: F64Array,
    r: F64Array,
    z: F64Array,
    n: F64Array,
    reset_after: bool,
) -> None:
    """One GRU cell: ``hout`` from input ``x`` and previous state ``hp``.

    ``hout`` may be ``hp`` itself (in-place update). ``gi``/``gh`` (3H,) and ``q`` (H,)
    are scratch; the gates ``r``, ``z``, ``n`` (H,) are written for backprop. For
    reset-after, ``gh[2H:]`` keeps ``U_n h + b_hn``; for reset-before, ``q`` keeps
    ``r * h``.
    """
    hsz = hp.shape[0]
    g = 3 * hsz
    for j in range(g):
        gi[j] = bi[j]
    matvec_acc(gi, wi, x, 0, g)
    ncols = g if reset_after else 2 * hsz
    for j in range(ncols):
        gh[j] = bh[j]
    matvec_acc(gh, wh, hp, 0, ncols)
    for j in range(hsz):
        r[j] = sigmoid(gi[j] + gh[j])
        z[j] = sigmoid(gi[hsz + j] + gh[hsz + j])
    if not reset_after:
        for j in range(hsz):
            q[j] = r[j] * hp[j]
        for j in range(2 * hsz, g):
            gh[j] = bh[j]
        matvec_acc(gh, wh, q, 2 * hsz, g)
        for j in range(hsz):
            n[j] = tanh(gi[2 * hsz + j] + gh[2 * hsz + j])
    else:
        for j in range(hsz):
            n[j] = tanh(gi[2 * hsz + j] + r[j] * gh[2 * hsz + j])
    for j in range(hsz):
        hout[j] = (1.0 - z[j]) * n[j] + z[j] * hp[j]


@jit
def gru_step(
    params: F64Array,
    x: F64Array,
    state: F64Array,
    rows: I64Array,
    work: F64Array,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    reset_after: bool,
) -> None:
    """Advance the hidden state of ``len(rows)`` series by one event each, in place.

    Parameters
    ----------
    params
        Flat parameters, ``(GRUSpec.n_params,)``.
    x
        Inputs, ``(B, input_size)``: row b is the event of series ``rows[b]``.
    state
        Hidden states, ``(n_series, num_layers * hidden_size)``; rows are updated.
    rows
        ``(B,)`` int64 row indices into ``state``; each at most once per call.
    work
        Scratch, ``(6, 3 * hidden_size)``; see :func:`step_workspace`.

    Examples
    --------
    >>> import numpy as np
    >>> from forecaster.core import GRUSpec, gru_step, step_workspace
    >>> spec = GRUSpec(input_size=1, hidden_size=4)
    >>> params, state = spec.init_params(seed=0), np.zeros((3, spec.state_size))
    >>> gru_step(params, np.array([[1.0], [2.0]]), state, np.array([0, 2]),
    ...          step_workspace(spec), 1, 4, 1, True)
    >>> np.round(state[:, 0], 4)
    array([0.0161, 0.    , 0.0325])
    """
    hsz = hidden_size
    gi = work[0]
    gh = work[1]
    q = work[2, :hsz]
    r = work[3, :hsz]
    z = work[4, :hsz]
    n = work[5, :hsz]
    # Layer by layer over the batch: each row is independent, and the weight views
    # are built once per layer rather than once per row.
    for layer in range(num_layers):
        wi, wh, bi, bh = layer_views(params, input_size, hsz, layer)
        lo = layer * hsz
        for b in range(rows.shape[0]):
            row = state[rows[b]]
            xin = x[b] if layer == 0 else row[lo - hsz : lo]
            h = row[lo : lo + hsz]
            cell_forward(wi, wh, bi, bh, xin, h, h, gi, gh, q, r, z, n, reset_after)


@jit
def gru_readout(
    params: F64Array,
    state: F64Array,
    rows: I64Array,
    out: F64Array,
    input_size: int,
    hidden_size: int,
    num_layers: int,
) -> None:
    """Linear head on the top layer's state: ``out[b] = b_o + W_o h_top[rows[b]]``.

    ``out`` is ``(B, horizon)``; the horizon is read from its second dimension.
    """
    horizon = out.shape[1]
    o = head_offset(input_size, hidden_size, num_layers)
    wo = params[o : o + hidden_size * horizon].reshape(hidden_size, horizon)
    bo = params[o + hidden_size * horizon : o + (hidden_size + 1) * horizon]
    top = (num_layers - 1) * hidden_size
    for b in range(rows.shape[0]):
        out[b] = bo
        matvec_acc(out[b], wo, state[rows[b], top : top + hidden_size], 0, horizon)


def step_workspace(spec: GRUSpec) -> F64Array:
    """Scratch array for :func:`gru_step`: allocate once, reuse for every call."""
    return np.zeros((6, 3 * spec.hidden_size))
