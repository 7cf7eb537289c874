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

import numpy as np
from numpy.typing import NDArray

from forecaster.core._jit import jit
from forecaster.core.params import F64Array, I64Array


@jit
def score_and_scale(
    rows: I64Array,
    pos: I64Array,
    y: F64Array,
    t: F64Array,
    count: I64Array,
    last_y: F64Array,
    last_ts: F64Array,
    var: F64Array,
    anchor: F64Array,
    calm: F64Array,
    mean_dt: F64Array,
    pend_yhat: F64Array,
    pend_half: F64Array,
    clip_sigma: float,
    alpha: float,
    recover: float,
    calm_events: int,
    errors: F64Array,
    hit: NDArray[np.bool_],
    block: F64Array,
    scored: I64Array,
    covered: I64Array,
    out: F64Array,
) -> None:
    """Score a wave's events and compute their scales.

    Per event ``i`` (series row ``rows[i]``, value ``y[i]``, time ``t[i]``, output row
    ``pos[i]``) and step ``j`` (``j + 1`` events ahead): ``errors[pos[i], j]`` is
    ``y - forecast`` of the forecast issued ``j + 1`` events earlier (NaN where none) and
    ``hit[pos[i], j]`` whether the value was inside its interval; the counters move on
    (``block[0]`` misses and ``block[1]`` scored in this interval block, and the totals
    ``scored`` and ``covered``). ``out[:, i]`` holds the clipped change scaled
    by the previous scale, the time since the previous event, the mean time between
    events before and after this one, the variance of the changes after it, and the
    scale after it, and the series' fault anchor and calm count after it (rows 0..7 of
    ``out (8, n)``). Nothing in the table is written.

    A fault (a run of changes far past the scale: a sensor gone wild) inflates the
    variance geometrically, by up to ``1 + alpha * (clip_sigma**2 - 1)`` an event, and
    the average alone would take about ``clip_sigma**2`` times as long to come back.
    So the variance from before the first clipped change is kept as the ``anchor``.
    Once ``calm_events`` changes in a row are normal by that anchor (within
    ``clip_sigma`` of its scale) and tiny by the current one (under a quarter of it,
    which is over four times the anchor's), the data is back and the scale is not: the
    variance moves back with weight ``recover`` an event while changes stay normal by
    the anchor, and the episode ends at the anchor. Under a lasting change of regime
    such a run has odds of about ``0.2**calm_events`` an event, so there the average is
    as before.
    """
    k = pend_yhat.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        c = count[r]
        yi = y[i]
        p = pos[i]
        for j in range(k):
            issued = c - (j + 1)
            if issued >= 0:
                e = yi - pend_yhat[r, issued % k, j]
                errors[p, j] = e
                a = 0.0 if math.isnan(e) else abs(e)
                inside = a <= pend_half[r, issued % k, j]
                hit[p, j] = inside
                block[1, j] += 1.0
                scored[j] += 1
                if inside:
                    covered[j] += 1
                else:
                    block[0, j] += 1.0
            else:
                errors[p, j] = math.nan
                hit[p, j] = False
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
        anchor1 = anchor[r]
        calm1 = calm[r]
        if c > 1:
            if anchor1 > 0.0:
                if change * change > clip_sigma * clip_sigma * anchor1:
                    calm1 = 0.0  # still far out by the scale from before
                elif calm1 < calm_events:  # not yet recovering: a run of tiny changes?
                    tiny = 16.0 * sq < var0 and var0 > 16.0 * anchor1
                    calm1 = calm1 + 1.0 if tiny else 0.0
                if calm1 >= calm_events:
                    var1 = var0 + recover * (sq - var0)
                if var1 <= anchor1:
                    anchor1 = 0.0
                    calm1 = 0.0
            elif clipped != change:  # the first clipped change: an episode may start
                anchor1 = var0
                calm1 = 0.0
        floor = 1e-9 * (1.0 + abs(yi))
        prev = sd0 if var0 > 0 else math.sqrt(var1)
        scale_prev = prev if (prev >= floor or math.isnan(prev)) else floor
        s1 = math.sqrt(var1)
        scale = s1 if (s1 >= floor or math.isnan(s1)) else floor
        mdt1 = dt if c <= 1 else mdt0 + alpha * (dt - mdt0)
        out[0, i] = clipped / scale_prev
        out[1, i] = dt
        out[2, i] = mdt0
        out[3, i] = mdt1
        out[4, i] = var1
        out[5, i] = scale
        out[6, i] = anchor1
        out[7, i] = calm1


@jit
def season_events(season: float, mean_dt: float) -> int:
    """A season (seconds) in a series' own events: ``rint(season / mean_dt)``, at least 1.

    0 before the series has a spacing, and -1 (never a season) past int64's range.
    """
    if not mean_dt > 0:
        return 0
    mf = np.rint(season / mean_dt)
    if mf < 1.0:
        mf = 1.0
    return int(mf) if mf < 9.0e18 else -1  # NumPy's cast of inf: never > 0


@jit
def lags_and_levels(
    rows: I64Array,
    count: I64Array,
    value: F64Array,
    scale: F64Array,
    mean_dt: F64Array,
    hist_y: F64Array,
    seasons: F64Array,
    rates: F64Array,
    levels: F64Array,
    clip_sigma: float,
    x: F64Array,
    col: int,
    k: int,
) -> None:
    """Seasonal-naive changes and level deviations of a wave's events, into ``x``.

    For each season (seconds) the K columns from ``col`` on get
    ``(y[t+k-m*ceil(k/m)] - y[t]) / scale``, where m is the season in the series' own
    events (``rint(season / mean_dt)``, 0 where the history is too short); then, for
    each level, ``(y[t] - level[t]) / scale`` with the level moved on by ``rates`` (its
    weight per event) and written back to ``levels``. All clipped to ``clip_sigma``.
    ``count`` is each event's count before it, and its value is not in ``hist_y`` yet;
    ``k`` is the horizon.
    """
    h = hist_y.shape[1]
    lo = -clip_sigma
    for i in range(rows.shape[0]):
        r = rows[i]
        c = count[i]
        v = value[i]
        s = scale[i]
        oldest = c - min(c, h - 1)
        for si in range(seasons.shape[0]):
            m = season_events(seasons[si], mean_dt[i])
            for step in range(1, k + 1):
                back = m * ((step + m - 1) // m) if m > 0 else 0
                src = c + step - back
                lag = 0.0
                if m > 0 and src >= oldest and src <= c:
                    past = v if src == c else hist_y[r, src % h]
                    lag = (past - v) / s
                if not (math.isnan(lag) or lag > lo):
                    lag = lo
                if not (math.isnan(lag) or lag < clip_sigma):
                    lag = clip_sigma
                x[i, col + si * k + step - 1] = lag
        base = col + seasons.shape[0] * k
        for li in range(rates.shape[0]):
            prev = levels[r, li]
            level = prev + rates[li] * (v - prev)
            # A level left far away (by a fault: clip_sigma**2 scales) starts again here
            # rather than crawl back at its rate for thousands of events.
            if c == 0 or not abs(v - prev) <= clip_sigma * clip_sigma * s:
                level = v
            levels[r, li] = level
            dev = (v - level) / s
            if not (math.isnan(dev) or dev > lo):
                dev = lo
            if not (math.isnan(dev) or dev < clip_sigma):
                dev = clip_sigma
            x[i, base + li] = dev


@jit
def finish_wave(
    rows: I64Array,
    pos: I64Array,
    count: I64Array,
    t: F64Array,
    y: F64Array,
    var1: F64Array,
    anchor1: F64Array,
    calm1: F64Array,
    mdt1: F64Array,
    scale: F64Array,
    yhat: F64Array,
    q: F64Array,
    table_count: I64Array,
    last_ts: F64Array,
    last_y: F64Array,
    var: F64Array,
    anchor: F64Array,
    calm: F64Array,
    mean_dt: F64Array,
    pend_yhat: F64Array,
    pend_half: F64Array,
    out_yhat: F64Array,
    out_half: F64Array,
    out_step_ts: F64Array,
) -> None:
    """Store a wave's forecasts and new state; fill its rows ``pos`` of the outputs.

    The interval half-width of step ``j`` is ``q[j] * scale``, and the expected time of
    the event ``j + 1`` ahead is ``t + (j + 1) * mdt1``.
    """
    k = yhat.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        p = pos[i]
        slot = count[i] % k
        for j in range(k):
            w = q[j] * scale[i]
            pend_yhat[r, slot, j] = yhat[i, j]
            pend_half[r, slot, j] = w
            out_yhat[p, j] = yhat[i, j]
            out_half[p, j] = w
            out_step_ts[p, j] = t[i] + (j + 1) * mdt1[i]
        table_count[r] = count[i] + 1
        last_ts[r] = t[i]
        last_y[r] = y[i]
        var[r] = var1[i]
        anchor[r] = anchor1[i]
        calm[r] = calm1[i]
        mean_dt[r] = mdt1[i]
