"""Online aggregation of experts (ML-Poly), per series and per step ahead, as kernels.

Every event, each expert issues a forecast of the next K values and the aggregate
forecast is their convex mix. When a value arrives, the forecasts issued for it 1..K
events earlier are scored: the step-k weights of that series learn from the realised
errors of the forecasts issued k events ago (feedback delayed by the step).

The rule is ML-Poly (Gaillard, Stoltz and van Erven, COLT 2014; the ``opera`` R package
of Gaillard and Goude). With ``p`` the aggregate's forecast, ``x_e`` expert e's, ``y``
the value and ``g = sign(p - y)``, expert e's instantaneous regret is

    r_e = (g (p - x_e) + |p - y| - |x_e - y|) / (2 s)

(``s``: the series' running scale, so series of any size pool alike): the regret on the
convex loss ``(g x + |x - y|) / 2``, half the gradient trick and half the absolute loss
itself. Since ``g (p - x) >= |p - y| - |x - y|``, it bounds the regret on the absolute
loss from above, so ML-Poly's guarantee (regret of order ``sqrt(T)`` against each
expert, on any stream) holds for the MAE. The gradient trick alone competes with mixes
but, on spiky streams, spreads weight over experts that only look good linearised (a
+12 forecast 10% worse than its best expert on one panel stream); the absolute loss
alone is slower to find mixes; the half and half kept the best of both on the panel.

Regrets ``R_e`` add up, each expert's learning rate is ``1 / S_e`` with
``S_e = sum r_e^2 + B`` (``B``: the largest ``r^2`` so far), and the weights are
``max(R_e, 0) / S_e``, normalised: no learning rate to tune. The tables keep
``S_e - B`` (``rate_sum``) beside ``B`` (``bound``), so an update is one pass over the
experts: with the discount below, ``S_e - B`` moves by ``r_e^2 - (1 - decay) B`` (the
``B`` before the update), whatever ``B`` becomes.

Losses are capped at ``clip`` scales (``min(|x - y|, clip s)``, whose gradient is 0 past
the cap, and the linear term is clipped alike), and a value whose change is past
``clip`` scales is not learned from at all: ``clip`` is far beyond any real spike and
far below a sensor gone wild (+-1e90), whose errors, learned, outweighed thousands of
normal events and held the weights for good.
Each instantaneous regret is then clipped to ``+-regret_cap``, so no one event counts for
more than that many scales: ML-Poly's guarantee is for bounded losses, and a spike of
100 scales (one in ec2_network_in, a thousand times its base) otherwise handed its weight
to whichever experts happened to forecast high that moment, for the next thousand events
(+12 there 12% behind the last value; with the clip, equal to it).
``R`` and ``S`` are discounted by ``decay`` before each update, so old evidence fades
(the GRU improves as it retrains, and streams change regime). While no expert has
positive regret (a new series), the weights are the pooled ones given.

Forecasts wait in a ring of K slots per series (indexed by count % K) until scored.
Only the model's and the seasonal naive forecasts differ between steps: the last value
and every level forecast the same number at every step. So a slot holds, per event,
the model's K forecasts, the seasonal naives' K * S (step-major), the value and the
L + M levels (:func:`pending_size`), and the expert forecasts are read back from it:
the same numbers as storing each step's E forecasts (with 12 steps, one season, three
EWMAs and two medians: 30 numbers a slot instead of 12 x 8).

The mix's weights are not stored: the pooling (:func:`pool_weights`) works them out
again from the regrets, which is cheaper than writing K x E numbers per event for a
pooling that runs every few events per series. Kernels index the tables directly: an
array view made per event and step cost more than its arithmetic. Regrets and rate sums
are kept expert-major, ``(rows, E, K)``: a loop over the experts runs over the K steps
inside, contiguous, so it compiles to vector code (each step's sums still add up in
expert order, so the numbers are the same as a loop over experts per step).
"""

from __future__ import annotations

import math

import numpy as np

from forecaster.core._jit import inline, jit, prefetch
from forecaster.core.events import season_events
from forecaster.core.params import F64Array, I64Array


def pending_size(horizon: int, n_seasons: int, n_levels: int) -> int:
    """Numbers one ring slot of pending expert forecasts holds (see the module docstring)."""
    return horizon * (1 + n_seasons) + 1 + n_levels


@inline
def _quotient(a: float, b: float) -> float:
    """An expert's unnormalised weight: regret ``a`` over rate sum ``b``, 0 unless both > 0."""
    # No branch around the division, so loops of it vectorise: a lane that does not
    # count divides by 1 and is dropped (a branch per expert mispredicted: 4x slower).
    q = a / (b if b > 0.0 else 1.0)
    return q if a > 0.0 and b > 0.0 else 0.0


@inline
def mlpoly_weights(
    regret: F64Array,
    rate_sum: F64Array,
    bound: F64Array,
    row: int,
    j: int,
    pooled: F64Array,
    out: F64Array,
) -> bool:
    """Row ``row``'s step-``j`` ML-Poly weights into ``out (E,)``; ``False`` if ``pooled``.

    ``regret`` and ``rate_sum`` are ``(rows, E, K)``, ``bound`` ``(rows, K)`` (module
    docstring), ``pooled`` is ``(K, E)``: the weights
    while no expert's regret is positive.
    """
    n_exp = out.shape[0]
    b = bound[row, j]
    for e in range(n_exp):
        out[e] = _quotient(regret[row, e, j], rate_sum[row, e, j] + b)
    total = 0.0
    for e in range(n_exp):
        total += out[e]
    if total > 0.0 and math.isfinite(total):
        inv = 1.0 / total  # one division, not one an expert: a pooling reads every series
        for e in range(n_exp):
            out[e] = out[e] * inv
        return True
    for e in range(n_exp):
        out[e] = pooled[j, e]
    return False


@inline
def _read_experts(
    pending: F64Array, row: int, slot: int, j: int, k: int, n_seasons: int, out: F64Array
) -> None:
    """The step-``j`` forecasts of every expert issued in ring slot ``slot``, into ``out[:, j]``."""
    at = k * (1 + n_seasons)  # the value, then the levels
    out[0, j] = pending[row, slot, j]
    out[1, j] = pending[row, slot, at]
    for si in range(n_seasons):
        out[2 + si, j] = pending[row, slot, k + j * n_seasons + si]
    for li in range(out.shape[0] - 2 - n_seasons):
        out[2 + n_seasons + li, j] = pending[row, slot, at + 1 + li]


@jit
def aggregate_wave(
    rows: I64Array,
    count: I64Array,
    y: F64Array,
    scale: F64Array,
    mean_dt: F64Array,
    last_y: F64Array,
    var: F64Array,
    anchor: F64Array,
    hist_y: F64Array,
    model: F64Array,
    seasons: F64Array,
    rates: F64Array,
    medians: F64Array,
    levels: F64Array,
    pooled: F64Array,
    pend_yhat: F64Array,
    pending: F64Array,
    regret: F64Array,
    rate_sum: F64Array,
    bound: F64Array,
    decay: float,
    clip: float,
    restart: float,
    regret_cap: float,
    yhat: F64Array,
) -> None:
    """Learn a wave's realised errors, then issue and mix its experts' new forecasts.

    Per event ``i`` (series row ``rows[i]``, ``count[i]`` events before it, value
    ``y[i]``, scale ``scale[i]``, mean time between events ``mean_dt[i]`` before it)
    whose change is within ``clip`` scales of the series (``last_y``, ``var`` and the
    fault ``anchor`` of the table, before the event; inside a fault episode the scale
    from before it): for each step ``j`` whose forecast was issued ``j + 1`` events ago,
    the step's regrets move on (``regret``, ``rate_sum``, ``bound``: ``(rows, E, K)``,
    ``(rows, E, K)``, ``(rows, K)``), from the aggregate's forecast in ``pend_yhat (rows,
    K, K)`` and the experts' in ``pending (rows, K, P)`` (rings indexed by count % K;
    the module docstring has a slot's layout).

    Then the experts forecast the next K values, in order: the model's own forecast
    ``model (n, K)``; the last value; each season's seasonal naive ``y[t+k-m*ceil(k/m)]``
    (``m``: the season in the series' own events, ``rint(season / mean_dt)``; the last
    value until the history ``hist_y`` holds it; this event's value is in it already);
    an exponentially weighted level per rate in ``rates`` (its weight per event); a
    running median per rate in ``medians`` (it moves ``rate * scale`` towards each
    value: robust to spikes). Levels and medians move on in ``levels (rows, L + M)``;
    one left ``restart`` scales away restarts at the value. Each instantaneous regret
    is clipped to ``+-regret_cap`` (module docstring). These forecasts go into the
    ring, and their mix into ``yhat (n, K)``; ``pooled (K, E)`` are the weights of a step
    whose regrets are not positive yet.
    """
    h = hist_y.shape[1]
    k = pend_yhat.shape[1]
    n_seasons = seasons.shape[0]
    n_rates = rates.shape[0]
    n_levels = n_rates + medians.shape[0]
    n_exp = 2 + n_seasons + n_levels
    at = k * (1 + n_seasons)  # a slot's value, then its levels
    # Per-step scratch, so the loops over experts run over the K steps inside (contiguous
    # in the tables): vector code, each step's sums still added in expert order.
    x = np.empty((n_exp, k))
    p_at = np.empty(k)
    g_at = np.empty(k)
    lp_at = np.empty(k)
    largest = np.empty(k)
    fade = np.empty(k)
    total = np.empty(k)
    mix = np.empty(k)
    n_all = k * n_exp
    width = k * pending.shape[2]
    for i in range(rows.shape[0]):
        # The cache lines of the next event's series state, asked for now: their misses
        # overlap this event's arithmetic instead of stalling the next (10,000 series do
        # not stay in cache between waves: 10% off this kernel there).
        if i + 1 < rows.shape[0]:
            nxt = rows[i + 1]
            for f in range(0, n_all, 8):
                prefetch(regret, nxt * n_all + f)
                prefetch(rate_sum, nxt * n_all + f)
            for f in range(0, width, 8):
                prefetch(pending, nxt * width + f)
            for f in range(0, k * k, 8):
                prefetch(pend_yhat, nxt * k * k + f)
            prefetch(bound, nxt * k)
            prefetch(levels, nxt * levels.shape[1])
        row = rows[i]
        c = count[i]
        v = y[i]
        s = scale[i]
        # A value past any real spike (a sensor gone wild, or back from it) says nothing
        # about the experts on normal data; learning from it held the weights for good.
        normal = anchor[row] if anchor[row] > 0.0 else var[row]
        wild = c > 1 and not abs(v - last_y[row]) <= clip * math.sqrt(normal)
        half_inv = 0.5 / s  # a regret is in half-scales (module docstring)
        cap = clip * s  # losses are capped here (see the module docstring)
        scored = 0 if wild else min(k, c)
        slot = c % k
        for j in range(scored):
            slot = slot - 1 if slot > 0 else k - 1  # step j's was issued j + 1 events ago
            p = pend_yhat[row, slot, j]
            p_at[j] = p
            miss = abs(p - v)
            lp_at[j] = min(miss, cap)
            # The capped loss is flat past the cap: no gradient there.
            g_at[j] = 0.0 if not miss < cap else (1.0 if p > v else (-1.0 if p < v else 0.0))
            _read_experts(pending, row, slot, j, k, n_seasons, x)
            largest[j] = bound[row, j]
            fade[j] = (1.0 - decay) * largest[j]  # what S - B loses as B fades (docstring)
        for e in range(n_exp):
            for j in range(scored):
                lin = min(cap, max(-cap, g_at[j] * (p_at[j] - x[e, j])))
                re = (lin + lp_at[j] - min(abs(x[e, j] - v), cap)) * half_inv
                re = re if math.isfinite(re) else 0.0  # a forecast past float range
                re = min(regret_cap, max(-regret_cap, re))
                regret[row, e, j] = decay * regret[row, e, j] + re
                rate_sum[row, e, j] = decay * rate_sum[row, e, j] + re * re - fade[j]
                largest[j] = max(largest[j], re * re)
        for j in range(scored):
            bound[row, j] = largest[j]
        # This event's forecasts, into the slot of the one issued K events ago (scored).
        slot = c % k
        for j in range(k):
            pending[row, slot, j] = model[i, j]
            x[0, j] = model[i, j]
            x[1, j] = v
        oldest = c - min(c, h - 1)
        here = c % h  # the ring's slot of this event: lags from it, no division per step
        for si in range(n_seasons):
            m = season_events(seasons[si], mean_dt[i])
            back = m
            for step in range(1, k + 1):  # back: m * ceil(step / m)
                if step > back:
                    back += m
                d = step - back
                past = v
                if m > 0 and d < 0 and c + d >= oldest:
                    at_h = here + d
                    past = hist_y[row, at_h + h if at_h < 0 else at_h]
                pending[row, slot, k + (step - 1) * n_seasons + si] = past
                x[2 + si, step - 1] = past
        pending[row, slot, at] = v
        for li in range(n_levels):
            prev = levels[row, li]
            if li < n_rates:
                level = prev + rates[li] * (v - prev)
            else:
                sign = 1.0 if v > prev else (-1.0 if v < prev else 0.0)
                level = prev + medians[li - n_rates] * s * sign
            # A level left far away (by a fault: ``restart`` scales) starts again here
            # rather than crawl back at its rate for thousands of events.
            if c == 0 or not abs(v - prev) <= restart * s:
                level = v
            levels[row, li] = level
            pending[row, slot, at + 1 + li] = level
            for j in range(k):
                x[2 + n_seasons + li, j] = level
        # The mix, from this event's forecasts at hand: one division a step, not one an
        # expert; a step whose regrets are not positive yet takes the pooled weights.
        for j in range(k):
            total[j] = 0.0
            mix[j] = 0.0
        for e in range(n_exp):
            for j in range(k):
                q = _quotient(regret[row, e, j], rate_sum[row, e, j] + bound[row, j])
                total[j] += q
                mix[j] += q * x[e, j]
        for j in range(k):
            if total[j] > 0.0 and math.isfinite(total[j]):
                yhat[i, j] = mix[j] / total[j]
            else:
                pooled_mix = 0.0
                for e in range(n_exp):
                    pooled_mix += pooled[j, e] * x[e, j]
                yhat[i, j] = pooled_mix


@jit
def pool_weights(
    rows: I64Array,
    count: I64Array,
    regret: F64Array,
    rate_sum: F64Array,
    bound: F64Array,
    pooled: F64Array,
) -> None:
    """Replace ``pooled (K, E)`` by the mean weights of the series that have their own.

    Per step, the series (``rows``, in row order, past their first K events) whose
    regrets (``regret``, ``rate_sum``, ``bound``: module docstring) are positive count, with the
    weights their next forecast mixes by; a step none of them has keeps its pooled weights.
    """
    k, n_exp = pooled.shape
    acc = np.zeros((k, n_exp))
    seen = np.zeros(k)
    w = np.empty(n_exp)
    for i in range(rows.shape[0]):
        row = rows[i]
        if count[row] <= k:
            continue
        for j in range(k):
            if mlpoly_weights(regret, rate_sum, bound, row, j, pooled, w):
                seen[j] += 1.0
                for e in range(n_exp):
                    acc[j, e] += w[e]
    for j in range(k):
        if seen[j] > 0.0:
            for e in range(n_exp):
                pooled[j, e] = acc[j, e] / seen[j]


@jit
def series_weights(
    regret: F64Array,
    rate_sum: F64Array,
    bound: F64Array,
    row: int,
    pooled: F64Array,
    out: F64Array,
) -> None:
    """The weights ``out (K, E)`` of row ``row``'s next forecast (pooled where it has none)."""
    w = np.empty(out.shape[1])
    for j in range(out.shape[0]):
        mlpoly_weights(regret, rate_sum, bound, row, j, pooled, w)
        out[j] = w
