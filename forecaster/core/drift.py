"""Page-Hinkley on a model's realised errors, as kernels: one event at a time, in order.

The statistic follows Page (1954) and Hinkley (1971) for an increase of the mean, with
each increment relative to the running mean, so the thresholds are in units of "the
norm" whatever the stream's typical error. Per observation ``x >= 0``, with ``n``
observations and their mean ``mean`` before it::

    n = n + 1
    if n > warmup and mean > 0:
        g = max(0, g + x / mean - 1 - delta)     # run: events since g was last 0
    mean = mean + (x - mean) / n

``g`` is Page-Hinkley's ``m_t - min m_s`` (the same recursion written as a CUSUM): it
grows by about ``r - delta`` an event once the errors are ``1 + r`` times their norm,
and drifts back to 0 while they are not. A detector fires when ``g`` exceeds its
threshold. The state is four floats, ``[n, mean, g, run]``, updated in place.
"""

from __future__ import annotations

import math

from forecaster.core._jit import inline, jit
from forecaster.core.params import F64Array, I64Array

STATE_SIZE = 4  # n, mean, g, run


@inline
def ph_update(state: F64Array, x: float, delta: float, warmup: int) -> None:
    """Move the state ``[n, mean, g, run]`` on by one observation ``x`` (not NaN)."""
    n = state[0] + 1.0
    mean = state[1]
    if n > warmup and mean > 0.0:
        g = state[2] + x / mean - 1.0 - delta
        if g > 0.0:
            state[2] = g
            state[3] += 1.0
        else:
            state[2] = 0.0
            state[3] = 0.0
    state[0] = n
    state[1] = mean + (x - mean) / n


@jit
def collect_errors(pos: I64Array, errors: F64Array, scale: F64Array, buf: F64Array) -> None:
    """``buf[pos[i]] = |errors[pos[i], 0]| / scale[i]``: scaled +1 errors by position."""
    for i in range(pos.shape[0]):
        p = pos[i]
        buf[p] = abs(errors[p, 0]) / scale[i]


@jit
def page_hinkley(xs: F64Array, cap: float, delta: float, warmup: int, state: F64Array) -> None:
    """Observe ``min(xs, cap)`` in order (NaN entries are skipped); ``state`` moves on."""
    for i in range(xs.shape[0]):
        x = xs[i]
        if not math.isnan(x):
            ph_update(state, x if x < cap else cap, delta, warmup)
