"""Scoring a replay: the model's own errors, and three baselines fed the same events.

The forecast issued after event ``t`` of a series for step ``h`` is scored against the
series' event ``t + h`` (steps count the series' own accepted events). That is how every
model here scores itself as it learns (:class:`~forecaster.stream.StreamModel`), so the
errors are the ones the models reported, never recomputed. The first ``warmup``
fraction of each series' events is learned but not scored, and MASE divides by the
series' mean absolute one-step change over its warm-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecaster import EWMA, LastValue, SeasonalNaive
from forecaster.core import F64Array
from forecaster.core.params import I64Array
from forecaster.evaluate import score, tune_ewma
from forecaster.events import BoolArray
from forecaster.stream import StreamModel, Update
from pipelines.engine.batches import ForecastColumns

MODEL = "model"
BASELINES = ("last value", "seasonal naive", "ewma")
METRICS = ("mae", "rmse", "smape", "mase", "coverage")


def prior_index(series: Sequence[str], k: int) -> tuple[I64Array, I64Array]:
    """Per event and step h, the event of the same series h events earlier (-1: none).

    Also returns each event's position within its series.

    Examples
    --------
    >>> prev, pos = prior_index(["a", "b", "a", "a"], 2)
    >>> prev.tolist(), pos.tolist()
    ([[-1, -1], [-1, -1], [0, -1], [2, 0]], [0, 0, 1, 2])
    """
    codes, _ = pd.factorize(pd.Series(list(series), dtype=object))
    n = codes.size
    order = np.argsort(codes, kind="stable")
    c = codes[order]
    starts = np.r_[0, np.flatnonzero(c[1:] != c[:-1]) + 1]
    lengths = np.diff(np.r_[starts, n])
    rank_sorted = np.arange(n) - np.repeat(starts, lengths)
    pos = np.empty(n, dtype=np.int64)
    pos[order] = rank_sorted
    prev = np.full((n, k), -1, dtype=np.int64)
    for h in range(1, k + 1):
        ok = rank_sorted >= h
        src = np.flatnonzero(ok)
        prev[order[src], h - 1] = order[src - h]
    return prev, pos


def _spacings(ts: F64Array, series: Sequence[str]) -> F64Array:
    """Time between consecutive events of the same series (all series, pooled)."""
    codes, _ = pd.factorize(pd.Series(list(series), dtype=object))
    order = np.argsort(codes, kind="stable")
    same = codes[order][1:] == codes[order][:-1]
    return np.asarray(np.diff(ts[order])[same], dtype=np.float64)


def season_events(ts: F64Array, series: Sequence[str]) -> int:
    """The seasonal-naive season, in events of the median spacing.

    A day, else a week, else a year: the first that holds at least two events.

    Examples
    --------
    >>> season_events(np.arange(100) * 3600.0, ["a"] * 100)
    24
    """
    dt = _spacings(ts, series)
    dt = dt[dt > 0]
    spacing = float(np.median(dt)) if dt.size else 86400.0
    for period in (86400.0, 7 * 86400.0, 365.25 * 86400.0):
        if period / spacing >= 2:
            return max(1, round(period / spacing))
    return 1


def irregularities(series: Sequence[str], ts: F64Array) -> dict[str, int]:
    """Duplicate times and gaps (over twice the median spacing) among accepted events.

    Examples
    --------
    >>> irregularities(["a"] * 5, np.array([0.0, 1.0, 1.0, 2.0, 5.0]))
    {'duplicate_times': 1, 'gaps': 1}
    """
    dt = _spacings(ts, series)
    pos = dt[dt > 0]
    med = float(np.median(pos)) if pos.size else 0.0
    return {
        "duplicate_times": int((dt == 0).sum()),
        "gaps": int((dt > 2 * med).sum()) if med > 0 else 0,
    }


def warm_up(series: Sequence[str], warmup: float) -> BoolArray:
    """Whether each event is in its series' first ``warmup`` fraction (learned, not scored)."""
    _, pos = prior_index(series, 1)
    sizes = pd.Series(series).map(pd.Series(series).value_counts()).to_numpy()
    return np.asarray(pos < np.floor(warmup * sizes))


def baselines(
    fc: ForecastColumns, warm: BoolArray, season: int, coverage: float
) -> dict[str, Update]:
    """Each baseline's report, fed the events the model accepted, in the same order.

    EWMA's smoothing is tuned on the warm-up events only.
    """
    k = fc.yhat.shape[1]
    w = np.flatnonzero(warm)
    ids = fc.series
    ewma: StreamModel = (
        tune_ewma([ids[i] for i in w.tolist()], fc.ts[w], fc.value[w], k, coverage)
        if w.size
        else EWMA(0.5, k, coverage)
    )
    models: dict[str, StreamModel] = {
        "last value": LastValue(k, coverage),
        "seasonal naive": SeasonalNaive(season, k, coverage),
        "ewma": ewma,
    }
    return {name: model.learn(ids, fc.ts, fc.value) for name, model in models.items()}


def score_forecasts(
    fc: ForecastColumns, others: dict[str, Update], warmup: float, label: str = MODEL
) -> pd.DataFrame:
    """Scores per model, series (``"*"``: all) and step: MAE, RMSE, sMAPE, MASE, coverage, n.

    Every model's errors are those it reported (``errors``, ``covered``). The overall row
    pools every scored event of every series.
    """
    k = fc.yhat.shape[1]
    scored = ~warm_up(fc.series, warmup)
    codes, names = pd.factorize(pd.Series(fc.series, dtype=object))
    models = {
        label: (fc.errors, fc.covered),
        **{m: (u.errors, u.covered) for m, u in others.items()},
    }
    rows: list[dict[str, Any]] = []
    for model, (errors, hit) in models.items():
        err = np.where(scored[:, None], errors, np.nan)
        groups: list[tuple[str, np.ndarray]] = [("*", np.arange(len(fc.series)))]
        if len(names) > 1:
            groups += [(str(s), np.flatnonzero(codes == i)) for i, s in enumerate(names)]
        for sid, idx in groups:
            s = _score_group(fc, idx, err, hit, scored)
            for j in range(k):
                row = {"model": model, "series": sid, "step": j + 1}
                row.update({m: float(getattr(s, m)[j]) for m in METRICS})
                row["n"] = int(s.n[j])
                rows.append(row)
    return pd.DataFrame(rows)


def _score_group(
    fc: ForecastColumns, idx: np.ndarray, err: F64Array, hit: BoolArray, scored: BoolArray
) -> Any:
    """:func:`forecaster.evaluate.score` over events ``idx`` (warm-up rows already NaN).

    The MASE scale of each series is its warm-up's mean absolute change: rows are put in
    series order so that ``score``'s per-series warm-up is each series' own.
    """
    ids = [fc.series[i] for i in idx.tolist()]
    # score() takes one start for the stream; order the rows warm-up first so that its
    # warm-up span is exactly the union of the series' warm-ups.
    order = np.argsort(scored[idx], kind="stable")
    sel = idx[order]
    n_warm = int((~scored[idx]).sum())
    return score([ids[i] for i in order.tolist()], fc.value[sel], err[sel], hit[sel], n_warm)


def ranking(scores: Sequence[tuple[str, pd.DataFrame]]) -> list[dict[str, Any]]:
    """Configurations (label, their scores) by mean MASE over steps (all series), best first."""
    rows = []
    for label, s in scores:
        own = s[(s["model"] == label) & (s["series"] == "*")]
        rows.append({"config": label, "mase": float(own["mase"].mean()),
                     "mae": float(own["mae"].mean()),
                     "coverage": float(own["coverage"].mean())})  # fmt: skip
    rows.sort(key=lambda d: (d["mase"], d["config"]))
    for i, d in enumerate(rows):
        d["rank"] = i + 1
    return rows
