"""The per-event bookkeeping of a wave, as one kernel: scoring and running scales.

:class:`forecaster.stream.StreamModel` learns events in waves (no series twice). Before
a wave's events are learned, the forecasts issued for them 1..K events earlier are
scored, and each series' running scale of its changes and of the time between its
events moves on. Written as NumPy calls this is about seventy small calls per wave,
which dominates when a wave holds one event (a single series). This kernel does the
same arithmetic (``+ - * /``, ``sqrt``, comparisons: IEEE, so the same bits) in one call.
"""

from __future__ import annotations

import math

from forecaster.core._jit import jit
from forecaster.core.params import F64Array, I64Array


@jit
def score_and_scale(
    rows: I64Array,
    y: F64Array,
    t: F64Array,
    count: I64Array,
    last_y: F64Array,
    last_ts: F64Array,
    var: F64Array,
    mean_dt: F64Array,
    pend_yhat: F64Array,
    pend_half: F64Array,
    clip_sigma: float,
    alpha: float,
    errors: F64Array,
    hit: F64Array,
    out: F64Array,
) -> None:
    """Score a wave's events and compute their scales; writes ``errors``, ``hit``, ``out``.

    Per event ``i`` (series row ``rows[i]``, value ``y[i]``, time ``t[i]``) and step
    ``j`` (``j + 1`` events ahead): ``errors[i, j]`` is ``y - forecast`` of the forecast
    issued ``j + 1`` events earlier (NaN where none) and ``hit[i, j]`` is 1.0 when the
    value was inside its interval, else 0.0. ``out[i]`` holds the clipped change scaled
    by the previous scale, the time since the previous event, the mean time between
    events before and after this one, the variance of the changes after it, and the
    scale after it (columns 0..5). Nothing in the table is written.
    """
    k = pend_yhat.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        c = count[r]
        yi = y[i]
        for j in range(k):
            issued = c - (j + 1)
            if issued >= 0:
                e = yi - pend_yhat[r, issued % k, j]
                errors[i, j] = e
                a = 0.0 if math.isnan(e) else abs(e)
                hit[i, j] = 1.0 if a <= pend_half[r, issued % k, j] else 0.0
            else:
                errors[i, j] = math.nan
                hit[i, j] = 0.0
        first = c == 0
        change = 0.0 if first else yi - last_y[r]
        dt = 0.0 if first else t[i] - last_ts[r]
        var0 = var[r]
        mdt0 = mean_dt[r]
        sd0 = math.sqrt(var0)
        clipped = change
        if var0 > 0:
            bound = clip_sigma * sd0
            lo = -bound
            # np.clip: max with the lower bound, then min with the upper (NaN kept).
            if not (math.isnan(clipped) or clipped > lo):
                clipped = lo
            if not (math.isnan(clipped) or clipped < bound):
                clipped = bound
        sq = clipped * clipped
        var1 = sq if c <= 1 else var0 + alpha * (sq - var0)
        floor = 1e-9 * (1.0 + abs(yi))
        prev = sd0 if var0 > 0 else math.sqrt(var1)
        scale_prev = prev if (prev >= floor or math.isnan(prev)) else floor
        s1 = math.sqrt(var1)
        scale = s1 if (s1 >= floor or math.isnan(s1)) else floor
        mdt1 = dt if c <= 1 else mdt0 + alpha * (dt - mdt0)
        out[i, 0] = clipped / scale_prev
        out[i, 1] = dt
        out[i, 2] = mdt0
        out[i, 3] = mdt1
        out[i, 4] = var1
        out[i, 5] = scale
