"""Small dense products written as axpy loops, so LLVM vectorises them without fastmath.

Accumulations are unrolled four inputs at a time but evaluated left to right, so
``acc + a0*w0 + a1*w1 + a2*w2 + a3*w3`` rounds exactly like four single updates:
every caller gets the same bits whatever the unrolling or the batch it runs in.
(Fused multiply-add was measured: 25% faster here, but only through fastmath
"contract", which leaves rounding to the compiler per call site; not worth it.)
"""

from __future__ import annotations

from forecaster.core._jit import inline
from forecaster.core.params import F64Array


@inline
def matvec_acc(acc: F64Array, w: F64Array, v: F64Array, col0: int, col1: int) -> None:
    """``acc[j] += sum_k v[k] * w[k, j]`` for ``j`` in ``[col0, col1)``, in order of ``k``."""
    n = v.shape[0]
    k = 0
    while k + 4 <= n:
        a0, a1, a2, a3 = v[k], v[k + 1], v[k + 2], v[k + 3]
        w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
        for j in range(col0, col1):
            acc[j] = acc[j] + a0 * w0[j] + a1 * w1[j] + a2 * w2[j] + a3 * w3[j]
        k += 4
    while k < n:
        a0, w0 = v[k], w[k]
        for j in range(col0, col1):
            acc[j] += a0 * w0[j]
        k += 1


@inline
def outer_acc(dw: F64Array, a: F64Array, g: F64Array, col0: int, col1: int) -> None:
    """``dw[k, j] += sum_i a[i, k] * g[i, j]`` for ``j`` in ``[col0, col1)``.

    ``a`` is ``(N, K)`` and ``g`` ``(N, G)``: a weight gradient summed over N samples,
    four samples per pass over ``dw`` so its rows are loaded and stored a quarter as often.
    """
    n = a.shape[0]
    for k in range(a.shape[1]):
        row = dw[k]
        i = 0
        while i + 4 <= n:
            a0, a1, a2, a3 = a[i, k], a[i + 1, k], a[i + 2, k], a[i + 3, k]
            g0, g1, g2, g3 = g[i], g[i + 1], g[i + 2], g[i + 3]
            for j in range(col0, col1):
                row[j] = row[j] + a0 * g0[j] + a1 * g1[j] + a2 * g2[j] + a3 * g3[j]
            i += 4
        while i < n:
            a0, g0 = a[i, k], g[i]
            for j in range(col0, col1):
                row[j] += a0 * g0[j]
            i += 1
