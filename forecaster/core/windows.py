"""Training windows gathered from per-series histories, as one kernel.

:func:`forecaster.windows.sample_windows` draws window starts with NumPy's generator and
then gathers the windows here: inputs copied, targets ``(y[t+k] - y[t]) / scale[t]``
where ``t + k`` is already in the history (weight 1, else target 0 and weight 0), and
no weight in the first ``burn_in`` positions. Written as NumPy fancy indexing this made
several (windows, T, K) temporaries per retrain; the arithmetic here is the same.
"""

from __future__ import annotations

from forecaster.core._jit import jit
from forecaster.core.params import F64Array, I64Array


@jit
def gather_windows(
    hist_x: F64Array,
    hist_y: F64Array,
    hist_scale: F64Array,
    rows: I64Array,
    start: I64Array,
    counts: I64Array,
    burn_in: int,
    x: F64Array,
    y: F64Array,
    w: F64Array,
) -> None:
    """Fill ``x (B, T, D)`` and targets and weights ``y``, ``w (B, T, K)``.

    Window ``b`` is of series row ``rows[b]`` and starts at its event ``start[b]``;
    ``counts[b]`` is how many events that series has seen. Histories are rings of
    ``hist_y.shape[1]`` events indexed by event number.
    """
    h = hist_y.shape[1]
    n_t = x.shape[1]
    k = y.shape[2]
    for b in range(rows.shape[0]):
        r = rows[b]
        cnt = counts[b]
        for ti in range(n_t):
            idx = start[b] + ti
            slot = idx % h
            x[b, ti, :] = hist_x[r, slot, :]
            now = hist_y[r, slot]
            sc = hist_scale[r, slot]
            for j in range(k):
                fut = idx + j + 1
                if fut < cnt:
                    y[b, ti, j] = (hist_y[r, fut % h] - now) / sc
                    w[b, ti, j] = 0.0 if ti < burn_in else 1.0
                else:
                    y[b, ti, j] = 0.0
                    w[b, ti, j] = 0.0
