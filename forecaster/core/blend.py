"""Losses of every candidate mix on the validation windows, as one kernel.

:func:`forecaster.retrain.blend_losses` scores each mix of candidate forecasts at each
step ahead: every candidate alone at each factor of ``grid``, then candidate 0 (the GRU)
with each other candidate at each pair of factors of ``pair_grid``, in the order of
:func:`forecaster.retrain.blend_combos`. In NumPy that is an ``(N, C)`` temporary per
step (about 40 MB with sensors.toml before its reversal candidate: 505 mixes) and took
1.6 s a retrain; here it is one pass of one multiply-add per mix, about 66 ms.
"""

from __future__ import annotations

from forecaster.core._jit import jit
from forecaster.core.params import F64Array


@jit
def mix_losses(
    cand: F64Array, target: F64Array, weight: F64Array, grid: F64Array, pair_grid: F64Array,
    squared: bool, out: F64Array,
) -> None:  # fmt: skip
    """Fill ``out (K, C)`` with the weighted mean loss of each step and mix.

    ``cand`` is ``(N, K, M)``, ``target`` and ``weight`` ``(N, K)``. The loss is the
    squared error when ``squared``, else the absolute error. Rows of zero weight are
    skipped (their targets may be anything).
    """
    n, k, m = cand.shape
    g, p = grid.size, pair_grid.size
    out[:] = 0.0
    for j in range(k):
        total = 0.0
        for i in range(n):
            wi = weight[i, j]
            if wi == 0.0:
                continue
            total += wi
            y = target[i, j]
            q = 0
            for a in range(g):
                for c in range(m):
                    err = grid[a] * cand[i, j, c] - y
                    out[j, q] += wi * (err * err if squared else abs(err))
                    q += 1
            for a in range(p):
                base = pair_grid[a] * cand[i, j, 0] - y
                for c in range(1, m):
                    for b in range(p):
                        err = base + pair_grid[b] * cand[i, j, c]
                        out[j, q] += wi * (err * err if squared else abs(err))
                        q += 1
        for q in range(out.shape[1]):
            out[j, q] /= max(total, 1e-300)
