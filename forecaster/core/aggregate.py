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
``max(R_e, 0) / S_e``, normalised: no learning rate to tune.

Losses are capped at ``clip`` scales (``min(|x - y|, clip s)``, whose gradient is 0 past
the cap, and the linear term is clipped alike), and a value whose change is past
``clip`` scales is not learned from at all: ``clip`` is far beyond any real spike and
far below a sensor gone wild (+-1e90), whose errors, learned, outweighed thousands of
normal events and held the weights for good.
``R`` and ``S`` are discounted by ``decay`` before each update, so old evidence fades
(the GRU improves as it retrains, and streams change regime). While no expert has
positive regret (a new series), the weights are the pooled ones given.
"""

from __future__ import annotations

import math

import numpy as np

from forecaster.core._jit import jit
from forecaster.core.events import season_events
from forecaster.core.params import F64Array, I64Array


@jit
def mlpoly_weights(regret: F64Array, rate_sum: F64Array, pooled: F64Array, out: F64Array) -> bool:
    """One step's ML-Poly weights into ``out``; ``False`` when they fell back to ``pooled``."""
    total = 0.0
    for e in range(regret.shape[0]):
        v = 0.0
        if regret[e] > 0.0 and rate_sum[e] > 0.0:
            v = regret[e] / rate_sum[e]
        out[e] = v
        total += v
    if total > 0.0 and math.isfinite(total):
        for e in range(regret.shape[0]):
            out[e] = out[e] / total
        return True
    for e in range(regret.shape[0]):
        out[e] = pooled[e]
    return False


@jit
def aggregate_wave(
    rows: I64Array,
    count: I64Array,
    y: F64Array,
    scale: F64Array,
    last_y: F64Array,
    var: F64Array,
    anchor: F64Array,
    experts: F64Array,
    pooled: F64Array,
    pend_yhat: F64Array,
    pend_exp: F64Array,
    regret: F64Array,
    rate_sum: F64Array,
    bound: F64Array,
    decay: float,
    clip: float,
    yhat: F64Array,
) -> None:
    """Learn a wave's realised errors, then mix its new expert forecasts.

    Per event ``i`` (series row ``rows[i]``, ``count[i]`` events before it, value
    ``y[i]``, scale ``scale[i]``) whose change is within ``clip`` scales of the series
    (``last_y``, ``var`` and the fault ``anchor`` of the table, before the event; inside
    a fault episode the scale from before it): for each step ``j`` whose forecast was issued
    ``j + 1`` events ago, the step's regrets move on (``regret``, ``rate_sum``, ``bound``:
    ``(rows, K, E)``, ``(rows, K, E)``, ``(rows, K)``), from the aggregate's forecast in
    ``pend_yhat (rows, K, K)`` and the experts' in ``pend_exp (rows, K, K, E)`` (rings
    indexed by count % K). Then ``experts (n, K, E)``, this event's expert forecasts, are
    stored in the ring and mixed into ``yhat (n, K)``; ``pooled (K, E)`` are the weights
    of a step whose regrets are not positive yet.
    """
    k = pend_yhat.shape[1]
    n_exp = experts.shape[2]
    w = np.empty(n_exp)
    r = np.empty(n_exp)
    for i in range(rows.shape[0]):
        row = rows[i]
        c = count[i]
        # A value past any real spike (a sensor gone wild, or back from it) says nothing
        # about the experts on normal data; learning from it held the weights for good.
        normal = anchor[row] if anchor[row] > 0.0 else var[row]
        wild = c > 1 and not abs(y[i] - last_y[row]) <= clip * math.sqrt(normal)
        for j in range(k):
            issued = c - (j + 1)
            if issued < 0 or wild:
                continue
            slot = issued % k
            p = pend_yhat[row, slot, j]
            yi = y[i]
            miss = abs(p - yi)
            s = scale[i]
            cap = clip * s  # losses are capped here (see the module docstring)
            lp = min(miss, cap)
            # The capped loss is flat past the cap: no gradient there.
            g = 0.0 if not miss < cap else (1.0 if p > yi else (-1.0 if p < yi else 0.0))
            largest = bound[row, j]
            for e in range(n_exp):
                x = pend_exp[row, slot, j, e]
                lin = min(cap, max(-cap, g * (p - x)))
                r[e] = (lin + lp - min(abs(x - yi), cap)) / (2.0 * s)
                if not math.isfinite(r[e]):  # a forecast past float range: no evidence
                    r[e] = 0.0
                if r[e] * r[e] > largest:
                    largest = r[e] * r[e]
            grow = largest - bound[row, j]
            for e in range(n_exp):
                regret[row, j, e] = decay * regret[row, j, e] + r[e]
                rate_sum[row, j, e] = decay * rate_sum[row, j, e] + r[e] * r[e] + grow
            bound[row, j] = largest
        slot = c % k
        for j in range(k):
            mlpoly_weights(regret[row, j], rate_sum[row, j], pooled[j], w)
            total = 0.0
            for e in range(n_exp):
                x = experts[i, j, e]
                pend_exp[row, slot, j, e] = x
                total += w[e] * x
            yhat[i, j] = total


@jit
def pool_weights(
    rows: I64Array, count: I64Array, regret: F64Array, rate_sum: F64Array, pooled: F64Array
) -> None:
    """Replace ``pooled (K, E)`` by the mean weights of the series that have their own.

    Per step, the series (``rows``, in row order) whose regrets are positive count; a
    step none of them has keeps its pooled weights.
    """
    k, n_exp = pooled.shape
    w = np.empty(n_exp)
    acc = np.zeros((k, n_exp))
    seen = np.zeros(k)
    for i in range(rows.shape[0]):
        row = rows[i]
        if count[row] <= k:
            continue
        for j in range(k):
            if mlpoly_weights(regret[row, j], rate_sum[row, j], pooled[j], w):
                seen[j] += 1.0
                for e in range(n_exp):
                    acc[j, e] += w[e]
    for j in range(k):
        if seen[j] > 0.0:
            for e in range(n_exp):
                pooled[j, e] = acc[j, e] / seen[j]


@jit
def expert_forecasts(
    rows: I64Array,
    count: I64Array,
    value: F64Array,
    scale: F64Array,
    mean_dt: F64Array,
    hist_y: F64Array,
    model: F64Array,
    seasons: F64Array,
    rates: F64Array,
    medians: F64Array,
    levels: F64Array,
    restart: float,
    out: F64Array,
) -> None:
    """Every expert's forecast of a wave's next K values, into ``out (n, K, E)``.

    Experts, in order: the model's own forecast ``model (n, K)``; the last value; each
    season's seasonal naive ``y[t+k-m*ceil(k/m)]`` (``m``: the season in the series' own
    events, ``rint(season / mean_dt)``; the last value until the history holds it); an
    exponentially weighted level per rate in ``rates`` (its weight per event); a running
    median per rate in ``medians`` (it moves ``rate * scale`` towards each value: robust
    to spikes). Levels and medians are moved on here and written back to
    ``levels (rows, L + M)``; one left ``restart`` scales away restarts at the
    value. ``count`` is each event's count before it; its value is not in ``hist_y`` yet.
    """
    h = hist_y.shape[1]
    k = model.shape[1]
    n_seasons = seasons.shape[0]
    for i in range(rows.shape[0]):
        r = rows[i]
        c = count[i]
        v = value[i]
        oldest = c - min(c, h - 1)
        for j in range(k):
            out[i, j, 0] = model[i, j]
            out[i, j, 1] = v
        for si in range(n_seasons):
            m = season_events(seasons[si], mean_dt[i])
            for step in range(1, k + 1):
                back = m * ((step + m - 1) // m) if m > 0 else 0
                src = c + step - back
                past = v
                if m > 0 and src >= oldest and src < c:
                    past = hist_y[r, src % h]
                out[i, step - 1, 2 + si] = past
        n_rates = rates.shape[0]
        for li in range(n_rates + medians.shape[0]):
            prev = levels[r, li]
            if li < n_rates:
                level = prev + rates[li] * (v - prev)
            else:
                sign = 1.0 if v > prev else (-1.0 if v < prev else 0.0)
                level = prev + medians[li - n_rates] * scale[i] * sign
            # A level left far away (by a fault: ``restart`` scales) starts again here
            # rather than crawl back at its rate for thousands of events.
            if c == 0 or not abs(v - prev) <= restart * scale[i]:
                level = v
            levels[r, li] = level
            for j in range(k):
                out[i, j, 2 + n_seasons + li] = level
