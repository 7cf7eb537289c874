"""The GRU forecaster's event path as kernels: features, the blend, and a whole cut at once.

:class:`forecaster.model.OnlineForecaster` learns events in cuts (consecutive events up
to the next interval block or retrain boundary), each cut in waves (no series twice in
a wave). Driven from Python, a wave is about a dozen kernel calls and as many NumPy
calls: on one series every event is its own wave, and those calls were nine tenths of
its time. :func:`learn_cut` runs every wave of a cut in one call, in the same order
and with the same kernels as the wave-by-wave path, so its outputs are the same bits
(``tests/forecaster/test_cut.py`` holds the two against each other).

:func:`event_features` and :func:`blend_forecast` are the two steps that were NumPy
code: both paths call them, so there is one definition of each.
"""

from __future__ import annotations

import math

import numpy as np

from forecaster.core._jit import inline, jit
from forecaster.core.aggregate import aggregate_wave
from forecaster.core.anomaly import judge
from forecaster.core.drift import collect_errors
from forecaster.core.events import finish_wave, lags_and_levels, score_and_scale
from forecaster.core.gru import gru_readout, gru_step
from forecaster.core.params import F64Array, I64Array

HOUR, WEEKDAY = 0, 1  # calendar feature codes
_TWO_PI = 2.0 * math.pi


def calendar_codes(names: tuple[str, ...] | list[str]) -> I64Array:
    """The codes :func:`event_features` reads for calendar features named ``hour``/``weekday``."""
    codes = {"hour": HOUR, "weekday": WEEKDAY}
    return np.array([codes[n] for n in names], dtype=np.int64)


@inline
def _clip(v: float, lo: float, hi: float) -> float:
    """``np.clip`` of one float: NaN stays NaN, and -0.0 clipped at 0.0 is 0.0."""
    v = v if (v > lo or math.isnan(v)) else lo
    return v if (v < hi or math.isnan(v)) else hi


@jit
def event_features(
    rows: I64Array,
    count: I64Array,
    ts: F64Array,
    change: F64Array,
    dt: F64Array,
    mean_dt: F64Array,
    value: F64Array,
    scale: F64Array,
    cov: F64Array,
    cov_mean: F64Array,
    cov_var: F64Array,
    hist_y: F64Array,
    seasons: F64Array,
    level_rates: F64Array,
    levels: F64Array,
    calendar: I64Array,
    use_dt: bool,
    clip_sigma: float,
    alpha: float,
    k: int,
    x: F64Array,
) -> None:
    """The GRU's inputs of a wave's events into ``x (n, D)``; covariate and level state moves on.

    Columns, in order: the change in scales (``change``, clipped to ``clip_sigma``);
    with ``use_dt`` ``log1p(dt / mean_dt)`` clipped to [0, 5] (1 while there is no mean
    yet); per ``calendar`` code the sine and cosine of the UTC hour of day (``HOUR``) or
    of the day of week (``WEEKDAY``); per covariate its z-score against the series'
    running mean and variance (0 for a series' first event), which then move on with
    weight ``alpha``; then the seasonal-naive changes and level deviations of
    :func:`lags_and_levels`. ``mean_dt`` is the mean time between events before each one.
    """
    n_cov = cov.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        x[i, 0] = _clip(change[i], -clip_sigma, clip_sigma)
        j = 1
        if use_dt:
            m = mean_dt[i]
            ratio = dt[i] / m if m > 0 else 1.0
            x[i, 1] = _clip(math.log1p(ratio), 0.0, 5.0)
            j = 2
        t = ts[i]
        day = (t % 86400.0) / 86400.0
        for code in calendar:
            frac = day if code == HOUR else ((np.floor(t / 86400.0) + 3 + day) % 7.0) / 7.0
            x[i, j] = math.sin(_TWO_PI * frac)
            x[i, j + 1] = math.cos(_TWO_PI * frac)
            j += 2
        first = count[i] == 0
        for c in range(n_cov):
            v, mean, var = cov[i, c], cov_mean[r, c], cov_var[r, c]
            sd = math.sqrt(var)
            z = (v - mean) / sd if sd > 0 else 0.0
            x[i, j + c] = _clip(0.0 if first else z, -clip_sigma, clip_sigma)
            d = v - mean
            cov_var[r, c] = 0.0 if first else (1 - alpha) * (var + alpha * (d * d))
            cov_mean[r, c] = v if first else mean + alpha * d
    lags_and_levels(rows, count, value, scale, mean_dt, hist_y, seasons, level_rates, levels,
                    clip_sigma, x, 1 + int(use_dt) + 2 * calendar.shape[0] + n_cov, k)  # fmt: skip


@jit
def blend_forecast(
    out: F64Array,
    x: F64Array,
    blend: F64Array,
    value: F64Array,
    scale: F64Array,
    first: int,
    n_levels: int,
    n_seasons: int,
    reversal: bool,
    yhat: F64Array,
) -> None:
    """The model's forecasts ``yhat (n, K)``: the value plus the scale times the blended change.

    Per step ``j`` the change is the blend's row ``blend[j]`` over the candidates of
    :func:`forecaster.blend.anchors`, summed in their order: the head's output
    ``out``, each level's mean reversion (the negated deviation at column ``first + K
    * n_seasons`` on), each season's seasonal-naive change (columns from ``first``),
    then with ``reversal`` the last change undone (column 0 negated).
    """
    k = out.shape[1]
    lags = first + k * n_seasons
    last = blend.shape[1] - 1
    for i in range(out.shape[0]):
        for j in range(k):
            acc = out[i, j] * blend[j, 0]
            for li in range(n_levels):
                acc += -x[i, lags + li] * blend[j, 1 + li]
            for si in range(n_seasons):
                acc += x[i, first + si * k + j] * blend[j, 1 + n_levels + si]
            if reversal:
                acc += -x[i, 0] * blend[j, last]
            yhat[i, j] = value[i] + scale[i] * acc


@jit
def waves_of(rows: I64Array, n_rows: int) -> I64Array:
    """Each event's wave: how many events of its series came before it in the cut."""
    seen = np.zeros(n_rows, dtype=np.int64)
    occ = np.empty(rows.shape[0], dtype=np.int64)
    for i in range(rows.shape[0]):
        occ[i] = seen[rows[i]]
        seen[rows[i]] += 1
    return occ


@jit
def learn_cut(
    rows: I64Array,
    pos: I64Array,
    t: F64Array,
    y: F64Array,
    cov: F64Array,
    table: tuple,  # type: ignore[type-arg]
    gru: tuple,  # type: ignore[type-arg]
    features: tuple,  # type: ignore[type-arg]
    stream: tuple,  # type: ignore[type-arg]
    anomaly: tuple,  # type: ignore[type-arg]
    experts: tuple,  # type: ignore[type-arg]
    drift_buf: F64Array,
    outputs: tuple,  # type: ignore[type-arg]
) -> None:
    """Learn a cut's events (table rows ``rows``, output rows ``pos``) wave by wave.

    The same steps, in the same order, as ``StreamModel._learn_wave`` with
    ``OnlineForecaster._advance`` per wave: score and scale, judge, file the +1 errors
    for the drift test (``drift_buf``, when it has any size), features, history, GRU
    step and head, blend, the experts' aggregation (when ``experts[0]`` is true), and
    the stored forecasts. The tuples hold the arrays and settings ``forecaster/cut.py``
    gathers, in its order.
    """
    (count, last_y, last_ts, var, anchor, calm, mean_dt, pend_yhat, pend_half, h, cov_mean,
     cov_var, levels, hist_x, hist_y, hist_scale) = table  # fmt: skip
    params, work, input_size, hidden_size, num_layers, reset_after, blend, reversal = gru
    (seasons, level_rates, calendar, use_dt, clip_sigma, alpha, first, n_blend_levels,
     n_blend_seasons) = features  # fmt: skip
    recover, calm_events, q, block, scored, covered_total = stream
    steps, edges, tails, zq, min_scored, beyond, a_pending = anomaly
    (aggregating, e_seasons, e_rates, e_medians, agg_levels, pooled, agg_pending, agg_regret,
     agg_rate, agg_bound, decay, loss_cap, regret_cap) = experts  # fmt: skip
    errors, hit, out_yhat, out_half, out_step_ts, flag, score, step, band = outputs
    k = pend_yhat.shape[1]
    n_hist = hist_y.shape[1]
    occ = waves_of(rows, count.shape[0])
    n_waves = occ.max() + 1 if occ.shape[0] else 0
    for wave in range(n_waves):
        idx = np.flatnonzero(occ == wave)
        n = idx.shape[0]
        rw, pw, tw, yw = rows[idx], pos[idx], t[idx], y[idx]
        cw = np.empty((n, cov.shape[1]))
        for i in range(n):
            cw[i] = cov[idx[i]]
        c = np.empty(n, dtype=np.int64)
        for i in range(n):
            c[i] = count[rw[i]]
        sc = np.empty((8, n))
        score_and_scale(rw, pw, yw, tw, count, last_y, last_ts, var, anchor, calm, mean_dt,
                        pend_yhat, pend_half, clip_sigma, alpha, recover, calm_events, errors,
                        hit, block, scored, covered_total, sc)  # fmt: skip
        change, dt, mdt0, mdt1, var1, scale, anchor1, calm1 = (
            sc[0], sc[1], sc[2], sc[3], sc[4], sc[5], sc[6], sc[7])  # fmt: skip
        judge(rw, pw, c, errors, pend_yhat, pend_half, steps, edges, tails, zq, min_scored,
              beyond, a_pending, flag, score, step, band)  # fmt: skip
        if drift_buf.shape[0]:
            collect_errors(pw, errors, scale, drift_buf)
        x = np.empty((n, input_size))
        event_features(rw, c, tw, change, dt, mdt0, yw, scale, cw, cov_mean, cov_var, hist_y,
                       seasons, level_rates, levels, calendar, use_dt, clip_sigma, alpha, k,
                       x)  # fmt: skip
        for i in range(n):
            slot = c[i] % n_hist
            hist_x[rw[i], slot] = x[i]
            hist_y[rw[i], slot] = yw[i]
            hist_scale[rw[i], slot] = scale[i]
        gru_step(params, x, h, rw, work, input_size, hidden_size, num_layers, reset_after)
        head = np.empty((n, k))
        gru_readout(params, h, rw, head, input_size, hidden_size, num_layers)
        yhat = np.empty((n, k))
        blend_forecast(head, x, blend, yw, scale, first, n_blend_levels, n_blend_seasons,
                       reversal, yhat)  # fmt: skip
        if aggregating:
            model = yhat
            yhat = np.empty((n, k))
            aggregate_wave(rw, c, yw, scale, mdt0, last_y, var, anchor, hist_y, model,
                           e_seasons, e_rates, e_medians, agg_levels, pooled, pend_yhat,
                           agg_pending, agg_regret, agg_rate, agg_bound, decay, loss_cap,
                           loss_cap, regret_cap, yhat)  # fmt: skip
        finish_wave(rw, pw, c, tw, yw, var1, anchor1, calm1, mdt1, scale, yhat, q, count,
                    last_ts, last_y, var, anchor, calm, mean_dt, pend_yhat, pend_half,
                    out_yhat, out_half, out_step_ts)  # fmt: skip
