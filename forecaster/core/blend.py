"""Losses of every candidate mix on the validation windows, as one kernel.

:func:`forecaster.blend.blend_losses` scores each mix of candidate forecasts at each
step ahead: every candidate alone at each factor of ``grid``, then candidate 0 (the GRU)
with each other candidate at each pair of factors of ``pair_grid``, in the order of
:func:`forecaster.blend.blend_combos`. In NumPy that is an ``(N, C)`` temporary per
step (about 40 MB with sensors.toml before its reversal candidate: 505 mixes) and took
1.6 s a retrain; here it is one pass over the rows that adds every mix's loss in a
loop vectorised across mixes (3.5 times as fast as a loop per mix).
"""

from __future__ import annotations

import numpy as np

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

    Per row, the products of the factors and candidates are made first, so each mix's
    loss is added in one long loop over contiguous scratch arrays, which vectorises
    across mixes (3.5 times as fast as a loop per mix). Each mix still sums its rows'
    losses in row order with the same operations, so the results are the same bits.
    """
    n, k, m = cand.shape
    g, p = grid.size, pair_grid.size
    n_single, n_pair = g * m, (m - 1) * p
    acc = np.zeros(out.shape[1])
    single = np.empty(n_single)  # grid[a] * cand[c] at a * m + c
    prod = np.empty(n_pair)  # pair_grid[b] * cand[c] at (c - 1) * p + b, for c >= 1
    for j in range(k):
        acc[:] = 0.0
        total = 0.0
        for i in range(n):
            wi = weight[i, j]
            if wi == 0.0:
                continue
            total += wi
            y = target[i, j]
            for a in range(g):
                for c in range(m):
                    single[a * m + c] = grid[a] * cand[i, j, c]
            for c in range(1, m):
                for b in range(p):
                    prod[(c - 1) * p + b] = pair_grid[b] * cand[i, j, c]
            if squared:
                for t in range(n_single):
                    e = single[t] - y
                    acc[t] += wi * (e * e)
            else:
                for t in range(n_single):
                    acc[t] += wi * abs(single[t] - y)
            c0 = cand[i, j, 0]
            for a in range(p):  # the GRU at pair_grid[a] with each other candidate
                base = pair_grid[a] * c0 - y
                q = n_single + a * n_pair
                if squared:
                    for t in range(n_pair):
                        e = base + prod[t]
                        acc[q + t] += wi * (e * e)
                else:
                    for t in range(n_pair):
                        acc[q + t] += wi * abs(base + prod[t])
        for q in range(acc.size):
            out[j, q] = acc[q] / max(total, 1e-300)


@jit
def mix_losses_loop(
    cand: F64Array, target: F64Array, weight: F64Array, grid: F64Array, pair_grid: F64Array,
    squared: bool, out: F64Array,
) -> None:  # fmt: skip
    """:func:`mix_losses` as one loop per mix: its reference, and the kernel before it."""
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
