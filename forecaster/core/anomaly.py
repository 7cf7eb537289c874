"""Anomaly kernels: where an event's error sits in the model's own error distribution.

An event is judged at a step ``j + 1`` by the forecast issued ``j + 1`` events before it:
``z = |error| / half``, its error in units of that forecast's interval half-width. Per
judged step the model keeps a histogram of past ``z`` over fixed bins (``edges``: 0,
a geometric grid, infinity), and its tail sums ``tail[b]`` (the mass in bins ``>= b``,
``tail[0]`` the total ``N``). The tail mass above ``z``, ``T(z)``, is read with linear
interpolation inside ``z``'s bin (the last bin, open-ended, counts whole), and the
score is one minus the conformal p-value: ``1 - (1 + T(z)) / (1 + N)``.

Counts are added to a pending histogram, which joins the tail sums only when
:func:`commit_tails` runs (at fixed event counts), so a score never depends on the
order of the events between two commits: the same whatever the batching.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from forecaster.core._jit import inline, jit
from forecaster.core.params import F64Array, I64Array


@inline
def find_bin(edges: F64Array, z: float) -> int:
    """The bin ``b`` with ``edges[b] <= z < edges[b + 1]`` (``edges[0]`` is 0, the last inf)."""
    lo = 0
    hi = edges.shape[0] - 2
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if edges[mid] <= z:
            lo = mid
        else:
            hi = mid - 1
    return lo


@inline
def tail_above(tail: F64Array, edges: F64Array, z: float) -> float:
    """``T(z)``: the mass of the histogram with tail sums ``tail`` at or above ``z``."""
    b = find_bin(edges, z)
    last = edges.shape[0] - 2
    if b == last:
        return float(tail[b])
    lo = edges[b]
    hi = edges[b + 1]
    return float(tail[b + 1] + (tail[b] - tail[b + 1]) * ((hi - z) / (hi - lo)))


@jit
def judge(
    rows: I64Array,
    pos: I64Array,
    count: I64Array,
    errors: F64Array,
    pend_yhat: F64Array,
    pend_half: F64Array,
    steps: I64Array,
    edges: F64Array,
    tails: F64Array,
    zq: F64Array,
    min_scored: int,
    beyond: float,
    pending: F64Array,
    flag: NDArray[np.bool_],
    score: F64Array,
    step: I64Array,
    band: F64Array,
) -> None:
    """Judge a wave's events at the steps ``steps`` (0-based) and count their ``z``.

    Per event ``i`` (series row ``rows[i]``, ``count[i]`` events before it, output row
    ``pos[i]``; ``errors`` already scored), at each judged step ``s`` whose forecast
    exists: the score from ``tails[s]``; and once the series has at least
    ``min_scored`` scored forecasts at that step (this one included), ``z`` counted in
    ``pending[s]`` (beyond ``zq[s]``, at most at ``beyond * zq[s]``) and a flag
    when the value is outside the anomaly band ``yhat ± zq[s] * half``. The event
    is flagged when every judged step flags it, and reports its step of least score
    (the smallest step on ties): ``flag``, ``score`` and ``step`` (1-based; 0 and a NaN
    score where no forecast was judged) at ``pos[i]``, and in ``band[:, p]`` that step's
    forecast, lower and upper anomaly bounds (NaN where none).
    """
    k = pend_yhat.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        c = count[i]
        p = pos[i]
        least = math.inf
        every = True
        least_step = 0
        f0 = math.nan
        f1 = math.nan
        f2 = math.nan
        for s in range(steps.shape[0]):
            j = steps[s]
            issued = c - (j + 1)
            e = errors[p, j] if issued >= 0 else math.nan
            if math.isnan(e):
                continue
            slot = issued % k
            h = pend_half[r, slot, j]
            a = abs(e)
            z = a / h if h > 0 else (0.0 if a == 0 else math.inf)
            sc = 1.0 - (1.0 + tail_above(tails[s], edges, z)) / (1.0 + tails[s, 0])
            warm = c - j >= min_scored
            if warm:  # a cold series' errors (its scale barely known) stay out of the counts
                # Beyond the band, counted at most ``beyond`` times its width: a few
                # anomalies can widen a far-tail band by that factor a commit, not to their
                # own size (which would hide the next), and the band still climbs by it a
                # commit under a lasting rate of them. (Counted at the band's edge, they
                # were lost whenever the band rose past it: on a flat, spiky stream the
                # band sank to a tenth of its true width and flagged 1 event in 8 at 99.5%.)
                b = find_bin(edges, z)
                if z > zq[s]:
                    b = min(b, find_bin(edges, beyond * zq[s]))
                pending[s, b] += 1.0
            width = zq[s] * h
            every = every and warm and a > width
            if sc < least:
                least = sc
                least_step = j + 1
                f0 = pend_yhat[r, slot, j]
                f1 = f0 - width
                f2 = f0 + width
        flag[p] = every and least_step > 0
        score[p] = least if least_step > 0 else math.nan
        step[p] = least_step
        band[0, p] = f0
        band[1, p] = f1
        band[2, p] = f2


@jit
def commit_tails(
    pending: F64Array,
    hist: F64Array,
    decay: float,
    level: float,
    edges: F64Array,
    tails: F64Array,
    zq: F64Array,
) -> None:
    """Fold the pending counts into the histograms and recompute tails and band widths.

    ``hist = decay * hist + pending`` (then ``pending`` is zeroed), ``tails[s, b]`` its
    mass in bins ``>= b``, and ``zq[s]`` the smallest ``z`` whose score reaches
    ``level``: where ``T(z) = (1 - level) * (1 + N) - 1``; infinite while ``N`` is too
    small for any score to reach it, and the last finite edge if it lies in the last bin.
    """
    n_bins = hist.shape[1]
    for s in range(hist.shape[0]):
        for b in range(n_bins):
            hist[s, b] = decay * hist[s, b] + pending[s, b]
            pending[s, b] = 0.0
        acc = 0.0
        for b in range(n_bins - 1, -1, -1):
            acc += hist[s, b]
            tails[s, b] = acc
        target = (1.0 - level) * (1.0 + tails[s, 0]) - 1.0
        if target < 0.0:
            zq[s] = math.inf
            continue
        zq[s] = edges[n_bins - 1]
        for b in range(n_bins - 1):
            if tails[s, b + 1] <= target:
                lo = edges[b]
                hi = edges[b + 1]
                zq[s] = lo + (hi - lo) * ((tails[s, b] - target) / (tails[s, b] - tails[s, b + 1]))
                break
