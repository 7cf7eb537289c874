"""A cut of events through the compiled event path: gather the state, call one kernel.

:meth:`forecaster.model.OnlineForecaster._learn_cut` hands each cut here. Rows for new
series are taken first (in order of first sight, as the wave-by-wave path takes them),
then :func:`forecaster.core.cut.learn_cut` runs every wave of the cut. What stays in
Python per cut: the row lookup of its ids, and this gathering.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from forecaster.anomaly import BEYOND, EDGES
from forecaster.core.cut import learn_cut
from forecaster.core.params import I64Array
from forecaster.events import Call
from forecaster.experts import LOSS_CAP, REGRET_CAP
from forecaster.stream import CALM_EVENTS, RECOVER

if TYPE_CHECKING:
    from forecaster.model import OnlineForecaster

_NO_ARRAY = {d: np.zeros((0,) * d) for d in (1, 2, 3)}


def learn_cut_compiled(model: OnlineForecaster, pos: I64Array, ev: I64Array, call: Call) -> None:
    """Learn the events ``ev`` of a ``learn`` call into its output rows ``pos``, compiled."""
    tab, cfg, spec = model.table, model.cfg, model.spec
    rows = tab.rows(call.ids[i] for i in ev)  # new rows first: the table may grow
    a = tab.arrays
    table = (a["count"], a["last_y"], a["last_ts"], a["var"], a["anchor"], a["calm"],
             a["mean_dt"], a["pend_yhat"], a["pend_half"], a["h"], a["cov_mean"], a["cov_var"],
             a["levels"], a["hist_x"], a["hist_y"], a["hist_scale"])  # fmt: skip
    gru = (model.params, model._work, spec.input_size, spec.hidden_size, spec.num_layers,
           spec.reset_after, model.blend, cfg.reversal)  # fmt: skip
    features = (model._seasons, model._level_rates, model._calendar, cfg.use_dt, cfg.clip_sigma,
                model._alpha, model._lag_column, len(cfg.levels), len(cfg.seasons))  # fmt: skip
    stream = (RECOVER, CALM_EVENTS, model.q, model._block, model.scored_total,
              model.covered_total)  # fmt: skip
    an = model.anomaly
    anomaly = (an.steps, EDGES, an.tails, an.zq, an.min_scored, BEYOND, an.pending)
    ex = model.experts
    if ex is None:
        experts = (False, _NO_ARRAY[1], _NO_ARRAY[1], _NO_ARRAY[1], _NO_ARRAY[2], _NO_ARRAY[2],
                   _NO_ARRAY[3], _NO_ARRAY[3], _NO_ARRAY[3], _NO_ARRAY[2], 0.0, LOSS_CAP,
                   REGRET_CAP)  # fmt: skip
    else:
        experts = (True, ex.seasons, ex.rates, ex.medians, a["agg_levels"], ex.pooled,
                   a["agg_pending"], a["agg_regret"], a["agg_rate"], a["agg_bound"], ex.decay,
                   LOSS_CAP, REGRET_CAP)  # fmt: skip
    drift = model.schedule.drift
    drift_buf = _NO_ARRAY[1] if drift is None else drift.reserve(pos)
    out = call.out
    outputs = (out["errors"], call.covered, out["yhat"], out["half"], out["step_ts"], *call.judged)
    learn_cut(rows, pos, call.t[ev], call.y[ev], np.ascontiguousarray(call.cov[ev]), table, gru,
              features, stream, anomaly, experts, drift_buf, outputs)  # fmt: skip
