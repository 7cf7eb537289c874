"""``forecaster bench accuracy``: prequential MAE on the public recordings vs baselines.

For each stream: the GRU with one shipped config (median over seeds), last value,
seasonal naive (a daily season, in the stream's own events) and EWMA (smoothing tuned
on the warm-up only). All are scored after a 10% warm-up at steps +1 and +12.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from forecaster import ForecasterConfig, LastValue, OnlineForecaster, SeasonalNaive
from forecaster.evaluate import Scores, evaluate, tune_ewma
from pipelines.bench.datasets import NAB_STREAMS, Recording, etth1, nab

WARMUP = 0.1
STEPS = (1, 12)


def loaders() -> list[Callable[[], Recording]]:
    """How to load each of :func:`recordings`, in order (a worker loads only its own)."""
    return [*(partial(nab, n) for n in NAB_STREAMS), etth1, partial(etth1, with_loads=True)]


def recordings() -> list[Recording]:
    """The six scored streams, then ETTh1 with its load covariates (reported, no bar)."""
    return [load() for load in loaders()]


def gru_scores(rec: Recording, cfg: ForecasterConfig, seed: int) -> Scores:
    """Prequential scores of the GRU with ``cfg`` and ``seed`` on one recording."""
    model = OnlineForecaster(replace(cfg, covariates=rec.covariate_names, seed=seed))
    ids = ["s"] * rec.values.size
    return evaluate(model, ids, rec.ts, rec.values, rec.covariates, warmup=WARMUP)


def _scores_of(job: tuple[int, ForecasterConfig, int]) -> Scores:
    """:func:`gru_scores` of recording ``job[0]``, loaded in this (worker) process."""
    index, cfg, seed = job
    return gru_scores(loaders()[index](), cfg, seed)


def run_stream(
    rec: Recording,
    cfg: ForecasterConfig,
    seeds: tuple[int, ...],
    runs: Sequence[Scores] | None = None,
) -> dict[str, Any]:
    """Scores of the GRU (median over seeds) and of each baseline on one recording.

    ``runs`` are the GRU's scores for ``seeds`` when already computed elsewhere.
    """
    n = rec.values.size
    ids = ["s"] * n
    horizon = cfg.horizon
    season = max(1, round(86400.0 / float(np.median(np.diff(rec.ts)))))
    warm = int(WARMUP * n)
    scores: dict[str, Scores] = {
        "last value": evaluate(LastValue(horizon), ids, rec.ts, rec.values, warmup=WARMUP),
        "seasonal naive": evaluate(
            SeasonalNaive(season, horizon), ids, rec.ts, rec.values, warmup=WARMUP
        ),
        "ewma": evaluate(
            tune_ewma(ids[:warm], rec.ts[:warm], rec.values[:warm], horizon),
            ids,
            rec.ts,
            rec.values,
            warmup=WARMUP,
        ),
    }
    if runs is None:
        runs = [gru_scores(rec, cfg, s) for s in seeds]
    row: dict[str, Any] = {"stream": rec.name, "events": n, "season": season}
    for step in STEPS:
        per_seed = [float(r.mae[step - 1]) for r in runs]
        row[f"gru+{step}"] = statistics.median(per_seed)
        for name, s in scores.items():
            row[f"{name}+{step}"] = float(s.mae[step - 1])
        best = min(float(s.mae[step - 1]) for s in scores.values())
        row[f"best+{step}"] = best
        row[f"ratio+{step}"] = row[f"gru+{step}"] / best
        row[f"ratio+{step} per seed"] = [v / best for v in per_seed]
    row["coverage"] = statistics.median(float(np.mean(r.coverage)) for r in runs)
    row["coverage_min"] = statistics.median(float(np.min(r.coverage)) for r in runs)
    row["coverage_max"] = statistics.median(float(np.max(r.coverage)) for r in runs)
    return row


def verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's bars over the six scored streams (the covariate variant has none)."""
    scored = [r for r in rows if r["stream"] != "ETTh1 OT + loads"]
    beat12 = sum(r["ratio+12"] <= 1.0 for r in scored)
    by5 = sum(r["ratio+12"] <= 0.95 for r in scored)
    near1 = sum(r["ratio+1"] <= 1.02 for r in scored)
    cov_ok = sum(r["coverage_min"] >= 0.85 and r["coverage_max"] <= 0.95 for r in scored)
    return {
        "match_or_beat_best_at_+12": f"{beat12}/6 (bar: 5)",
        "beat_best_by_5pct_at_+12": f"{by5}/6 (bar: 3)",
        "within_2pct_of_best_at_+1": f"{near1}/6 (bar: 6)",
        "coverage_in_85_95": f"{cov_ok}/6 (bar: 6)",
        "passes": beat12 >= 5 and by5 >= 3 and near1 == 6 and cov_ok == 6,
    }


def run(
    cfg: ForecasterConfig,
    seeds: tuple[int, ...] = (0, 1, 2),
    progress: Callable[[str], None] | None = None,
    jobs: int = 1,
) -> dict[str, Any]:
    """Every stream, then the verdict; ``jobs`` processes run the GRU's (stream, seed) pairs.

    Each run is deterministic, so the figures do not depend on ``jobs``.
    """
    recs = recordings()
    runs: list[Sequence[Scores] | None] = [None] * len(recs)  # None: run_stream runs them
    if jobs > 1:
        pairs = [(i, cfg, s) for i in range(len(recs)) for s in seeds]
        if progress:
            progress(f"{len(pairs)} runs of the GRU in {jobs} processes")
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            done = list(pool.map(_scores_of, pairs))
        runs = [done[i * len(seeds) : (i + 1) * len(seeds)] for i in range(len(recs))]
    rows = []
    for rec, rec_runs in zip(recs, runs, strict=True):
        if progress:
            progress(rec.name)
        rows.append(run_stream(rec, cfg, seeds, rec_runs))
    return {"config": cfg.to_dict(), "seeds": list(seeds), "rows": rows, "verdict": verdict(rows)}
