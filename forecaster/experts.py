"""Experts and their online aggregation: what :class:`OnlineForecaster` issues as its forecast.

With ``aggregation = "mlpoly"`` the forecast of each series and step is a convex mix of
experts, weighted by their realised errors (``forecaster/core/aggregate.py`` has the
rule). The experts, per step ahead:

- ``model``: the GRU's forecast as mixed by the retrain-time blend;
- ``last``: the last value;
- ``season:<seconds>``: the seasonal naive forecast for each configured season;
- ``ewma:<alpha>``: an exponentially weighted level for each smoothing factor in
  ``expert_rates`` (``alpha`` is the weight of the newest value);
- ``median:<rate>``: a running median for each rate in ``expert_medians``: it moves
  ``rate`` scales towards each value, so a spike moves it by no more than any other
  value (spiky ops metrics, where the median beats every mean).

Weights are per series and per step. A series starts from its partition's pooled
weights (the mean weights of the series that have their own), recomputed at fixed
event counts (:meth:`Experts.pool_due`), so results do not depend on batching.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from forecaster.config import ForecasterConfig
from forecaster.core import F64Array
from forecaster.core.aggregate import aggregate_wave, pending_size, pool_weights, series_weights
from forecaster.series import SeriesTable, Shapes

if TYPE_CHECKING:
    from forecaster.events import Wave


# Events between recomputations of the pooled weights: often enough for a new series to
# start from recent evidence. Each one reads every series' regrets.
POOL_EVERY = 1024
# ...and in a fleet of more series than this, at the multiples of POOL_EVERY that fall
# about every POOL_SERIES-th of its series' count of events: a pooling reads every series,
# so its cost per event stays flat however many there are (at 10,000 series, every 156th
# multiple: each series has had about sixteen events since the last; at 256, poolings
# were 2% of the per-event cost at 1,000 series).
POOL_SERIES = 64
# Scales past which an expert's loss counts no more, a change is not learned from, and a
# running level restarts (core/aggregate.py): far beyond any real spike (spikes of 100
# scales taught the running medians their worth on a spiky ops stream, and a bound of 64
# scales hid it), far below a sensor gone wild (1e90).
LOSS_CAP = 1000.0
# Scales one event's regret counts for at most (core/aggregate.py). Chosen on the
# 18-stream panel by replaying the GRU's logged forecasts (CHANGELOG, 2026-11-30): 7 to
# 20 all keep every +12 forecast within 1.4% of its best naive baseline; 10 is the middle.
REGRET_CAP = 10.0


def expert_names(cfg: ForecasterConfig) -> list[str]:
    """Names of the experts in their order (the last axis of weights)."""
    seasons = [f"season:{s:g}" for s in expert_seasons(cfg)]
    ewma = [f"ewma:{a:g}" for a in cfg.expert_rates]
    return ["model", "last", *seasons, *ewma, *(f"median:{a:g}" for a in cfg.expert_medians)]


def expert_seasons(cfg: ForecasterConfig) -> tuple[float, ...]:
    """Seasons of the seasonal-naive experts: the model's, then the experts' own."""
    return (*cfg.seasons, *(s for s in cfg.expert_seasons if s not in cfg.seasons))


class Experts:
    """The experts' state beyond the series table: names, rates, and the pooled weights."""

    def __init__(self, cfg: ForecasterConfig) -> None:
        self.names = expert_names(cfg)
        self.horizon = cfg.horizon
        self.seasons = np.array(expert_seasons(cfg), dtype=np.float64)
        self.rates = np.array(cfg.expert_rates, dtype=np.float64)
        self.medians = np.array(cfg.expert_medians, dtype=np.float64)
        self.decay = 1.0 - 1.0 / cfg.aggregation_memory
        # Until some series has weights of its own, a new one trusts the model alone.
        self.pooled = np.zeros((cfg.horizon, len(self.names)))
        self.pooled[:, 0] = 1.0

    def shapes(self) -> Shapes:
        """Per-series fields of the aggregation (``core/aggregate.py`` has their layout).

        Pending expert forecasts, regrets, rates, bounds and levels.
        """
        k, e = self.horizon, len(self.names)
        n_levels = self.rates.size + self.medians.size
        return {
            "agg_pending": (k, pending_size(k, self.seasons.size, n_levels)),
            "agg_regret": (e, k),
            "agg_rate": (e, k),
            "agg_bound": (k,),
            "agg_levels": (n_levels,),
        }

    def forecast(self, tab: SeriesTable, w: Wave, model: F64Array) -> F64Array:
        """Learn the wave's realised errors, then return its aggregate forecasts ``(n, K)``."""
        out = np.empty(model.shape)
        a = tab.arrays  # one dict, not fourteen attribute lookups a wave
        aggregate_wave(w.rows, w.count, w.value, w.scale, w.mean_dt, a["last_y"], a["var"],
                       a["anchor"], a["hist_y"], model, self.seasons, self.rates, self.medians,
                       a["agg_levels"], self.pooled, a["pend_yhat"], a["agg_pending"],
                       a["agg_regret"], a["agg_rate"], a["agg_bound"], self.decay, LOSS_CAP,
                       LOSS_CAP, REGRET_CAP, out)  # fmt: skip
        return out

    @staticmethod
    def pool_due(n_events: int, n_series: int) -> bool:
        """Whether the pooled weights are recomputed after ``n_events`` events.

        A function of event and series counts alone, so results do not depend on batching.
        """
        if n_events % POOL_EVERY:
            return False
        return (n_events // POOL_EVERY) % max(1, n_series // POOL_SERIES) == 0

    def pool(self, tab: SeriesTable) -> None:
        """Recompute the pooled weights from every series' own (when :meth:`pool_due`)."""
        self.pooled = self.pooled_now(tab)

    def pooled_now(self, tab: SeriesTable) -> F64Array:
        """The pooled weights as :meth:`pool` would make them now: a copy, nothing changes.

        What a model hands on (``forecaster.transfer``): the weights of its series as they
        are, not as they were at the last multiple of POOL_EVERY events (none at all for a
        history shorter than that).
        """
        out = self.pooled.copy()
        pool_weights(tab.active_rows(), tab.count, tab.agg_regret, tab.agg_rate, tab.agg_bound,
                     out)  # fmt: skip
        return out

    @staticmethod
    def lighten_model(tab: SeriesTable, kept: float) -> None:
        """Scale every series' evidence on the model expert by ``kept`` (new weights).

        What the mix learned of the model expert was learned of the weights it had:
        after a retrain for a new regime it is another forecaster. Its regrets and rate
        sums shrink to ``kept`` of themselves, so its next errors count ``1 / kept``
        times as much; the other experts' evidence is about experts that did not change
        and stays.
        """
        if kept == 1.0:
            return
        rows = tab.active_rows()
        for name in ("agg_regret", "agg_rate"):
            tab.arrays[name][rows, 0] *= kept

    def weights(self, tab: SeriesTable, row: int) -> F64Array:
        """The weights ``(K, E)`` a series' next forecast uses."""
        out = np.empty((self.horizon, len(self.names)))
        series_weights(tab.agg_regret, tab.agg_rate, tab.agg_bound, row, self.pooled, out)
        return out
