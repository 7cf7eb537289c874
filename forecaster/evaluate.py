"""Prequential (test-then-train) evaluation: every model scored under the same rules.

For each event, the forecasts issued earlier for it are scored first, then the event
is learned (:meth:`forecaster.StreamModel.learn` does both). The forecast for
``t + h`` is issued after learning ``y[t]`` and scored against ``y[t + h]``, where
steps count the series' own events. Only events after the warm-up are scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecaster.baselines import EWMA
from forecaster.core import F64Array
from forecaster.stream import StreamModel


@dataclass(frozen=True)
class Scores:
    """Per-step-ahead scores: arrays of length K (index 0 is one step ahead)."""

    mae: F64Array
    rmse: F64Array
    smape: F64Array
    mase: F64Array
    coverage: F64Array
    n: F64Array

    def at(self, step: int) -> dict[str, float]:
        """The scores ``step`` events ahead (1-based), as plain floats."""
        i = step - 1
        return {k: float(getattr(self, k)[i]) for k in ("mae", "rmse", "smape", "mase", "coverage")}

    def as_dict(self) -> dict[str, list[float]]:
        """JSON-ready lists."""
        return {
            k: [float(v) for v in getattr(self, k)]
            for k in ("mae", "rmse", "smape", "mase", "coverage", "n")
        }


def evaluate(
    model: StreamModel,
    series: Sequence[str],
    ts: F64Array,
    values: F64Array,
    covariates: F64Array | None = None,
    warmup: float = 0.1,
    batch_size: int = 4096,
) -> Scores:
    """Feed events in order (in batches of ``batch_size``) and score after the warm-up.

    ``warmup`` is the fraction of events (in stream order) learned but not scored. MASE
    divides by the mean absolute one-step change of each series over the warm-up (over
    the whole stream for a series with fewer than two warm-up events).

    Examples
    --------
    >>> from forecaster import LastValue
    >>> y = np.array([1.0, 2.0, 4.0, 7.0, 11.0])
    >>> s = evaluate(LastValue(horizon=2), ["a"] * 5, np.arange(5.0), y, warmup=0.0)
    >>> s.mae.tolist()  # +1: |2-1|, |4-2|, |7-4|, |11-7|; +2: |4-1|, |7-2|, |11-4|
    [2.5, 5.0]
    """
    n = len(series)
    if not 0.0 <= warmup < 1.0:
        msg = f"warmup must be in [0, 1), got {warmup!r}"
        raise ValueError(msg)
    ids = [str(s) for s in series]
    values = np.asarray(values, dtype=np.float64)
    errors = np.full((n, model.horizon), np.nan)
    covered = np.zeros((n, model.horizon), dtype=bool)
    for lo in range(0, n, batch_size):
        hi = min(n, lo + batch_size)
        cov = None if covariates is None else covariates[lo:hi]
        upd = model.learn(ids[lo:hi], ts[lo:hi], values[lo:hi], cov)
        where = lo + np.flatnonzero(upd.accepted)
        errors[where], covered[where] = upd.errors, upd.covered
    start = int(np.floor(warmup * n))
    return score(ids, values, errors, covered, start)


def score(ids: list[str], values: F64Array, errors: F64Array, covered: Any, start: int) -> Scores:
    """Scores of the events from ``start`` on (see :func:`evaluate`)."""
    n = len(ids)
    naive = _naive_scale(ids, values, start)
    e, y = errors[start:], values[start:, None]
    valid = np.isfinite(e)
    cnt = valid.sum(axis=0).astype(np.float64)
    safe = np.maximum(cnt, 1.0)
    ae = np.where(valid, np.abs(e), 0.0)
    yhat = y - np.nan_to_num(e)
    denom = np.abs(y) + np.abs(yhat)
    sm = np.where(valid & (denom > 0), 2.0 * ae / np.where(denom > 0, denom, 1.0), 0.0)
    scaled = ae / naive[start:n, None]
    return Scores(
        mae=ae.sum(axis=0) / safe,
        rmse=_rmse(ae, safe),
        smape=sm.sum(axis=0) / safe,
        mase=np.where(valid, scaled, 0.0).sum(axis=0) / safe,
        coverage=(covered[start:] & valid).sum(axis=0) / safe,
        n=cnt,
    )


def _rmse(ae: F64Array, count: F64Array) -> F64Array:
    """Root mean square of ``ae`` per column: inf, silently, when a square passes float range.

    A forecaster that diverges (River's SNARIMAX does, on some panel streams in
    ``forecaster bench replay``) has an infinite RMSE; that is its score, not an accident.
    """
    with np.errstate(over="ignore"):
        out: F64Array = np.sqrt((ae**2).sum(axis=0) / count)
    return out


def _naive_scale(ids: list[str], values: F64Array, start: int) -> F64Array:
    """Per event: its series' mean absolute one-step change over the warm-up."""
    by_series: dict[str, list[int]] = {}
    for i, sid in enumerate(ids):
        by_series.setdefault(sid, []).append(i)
    out = np.ones(len(ids))
    for idx in by_series.values():
        pos = np.array(idx)
        warm = pos[pos < start]
        span = warm if warm.size >= 2 else pos
        d = np.abs(np.diff(values[span])).mean() if span.size >= 2 else 0.0
        out[pos] = d if d > 0 else 1.0
    return out


def tune_ewma(
    series: Sequence[str],
    ts: F64Array,
    values: F64Array,
    horizon: int,
    coverage: float = 0.9,
    grid: Sequence[float] = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0),
) -> EWMA:
    """EWMA with the ``alpha`` of ``grid`` that scores the lowest mean MAE on these events.

    Pass the warm-up span only, so the choice never sees the scored events.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noisy = 10 + rng.normal(size=500)  # a level plus noise: heavy smoothing wins
    >>> tune_ewma(["a"] * 500, np.arange(500.0), noisy, horizon=3).alpha
    0.02
    """
    best, best_alpha = np.inf, grid[0]
    for alpha in grid:
        s = evaluate(EWMA(alpha, horizon, coverage), series, ts, values, warmup=0.0)
        mae = float(np.mean(s.mae[s.n > 0])) if (s.n > 0).any() else np.inf
        if mae < best:
            best, best_alpha = mae, alpha
    return EWMA(best_alpha, horizon, coverage)
