"""``forecaster bench accuracy``: prequential MAE on the 18-stream panel, beside the peers.

For each stream of the development panel (``pipelines.bench.datasets.PANEL``): the GRU with
one shipped config (median over seeds); the naive baselines (last value, seasonal naive
with a daily season in the stream's own events, EWMA with its smoothing tuned on the
warm-up only); and River's SNARIMAX and HoltWinters (``pipelines.bench.peers``).
Every model learns ``y[t]`` and then forecasts; all are scored by one scorer after a
10% warm-up, at steps +1 and +12.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from forecaster import ForecasterConfig, LastValue, OnlineForecaster, SeasonalNaive
from forecaster.evaluate import Scores, evaluate, tune_ewma
from pipelines.bench.datasets import PANEL, Recording, panel_recording
from pipelines.bench.peers import PEERS, scores_of

WARMUP = 0.1
STEPS = (1, 12)
NAIVE = ("last value", "seasonal naive", "ewma")


def loaders(streams: Sequence[str] = PANEL) -> list[Callable[[], Recording]]:
    """How to load each stream, in order (a worker loads only its own)."""
    return [partial(panel_recording, p) for p in streams]


def select(names: str | None) -> tuple[str, ...]:
    """The panel streams whose path contains one of the comma-separated ``names``.

    Raises ``ValueError`` naming a name that matches no stream.
    """
    if not names:
        return PANEL
    picked: list[str] = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        hits = [p for p in PANEL if name.lower() in p.lower()]
        if not hits:
            msg = f"no panel stream matches {name!r} (streams: {', '.join(PANEL)})"
            raise ValueError(msg)
        picked += [p for p in hits if p not in picked]
    return tuple(p for p in PANEL if p in picked)


def gru_scores(rec: Recording, cfg: ForecasterConfig, seed: int) -> Scores:
    """Prequential scores of the GRU with ``cfg`` and ``seed`` on one recording."""
    model = OnlineForecaster(replace(cfg, covariates=rec.covariate_names, seed=seed))
    ids = ["s"] * rec.values.size
    return evaluate(model, ids, rec.ts, rec.values, rec.covariates, warmup=WARMUP)


def peer_scores(rec: Recording, horizon: int) -> dict[str, Any]:
    """Each River peer's scores (``None`` where it diverged) and its setting."""
    warm = int(WARMUP * rec.values.size)
    out: dict[str, Any] = {}
    for name, run_peer in PEERS.items():
        setting, yhat = run_peer(rec.values, horizon, warm)
        out[name] = (setting, None if yhat is None else scores_of(rec.values, yhat, warm))
    return out


def _job(job: tuple[str, str, ForecasterConfig, int]) -> Any:
    """One unit of work in a worker: a GRU run (``"gru"``) or the River peers (``"peers"``)."""
    kind, path, cfg, seed = job
    rec = panel_recording(path)
    return gru_scores(rec, cfg, seed) if kind == "gru" else peer_scores(rec, cfg.horizon)


def naive_scores(rec: Recording, horizon: int) -> tuple[int, dict[str, Scores]]:
    """The stream's daily season in events, and the naive baselines' scores."""
    n = rec.values.size
    ids = ["s"] * n
    season = max(1, round(86400.0 / float(np.median(np.diff(rec.ts)))))
    warm = int(WARMUP * n)
    ewma = tune_ewma(ids[:warm], rec.ts[:warm], rec.values[:warm], horizon)
    models = (LastValue(horizon), SeasonalNaive(season, horizon), ewma)
    scores = {name: evaluate(m, ids, rec.ts, rec.values, warmup=WARMUP)
              for name, m in zip(NAIVE, models, strict=True)}  # fmt: skip
    return season, scores


def run_stream(
    rec: Recording,
    cfg: ForecasterConfig,
    seeds: tuple[int, ...],
    runs: Sequence[Scores] | None = None,
    peers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Scores of the GRU (median over seeds), the naive baselines and the peers on one stream.

    ``runs`` and ``peers`` are the GRU's and River's scores when computed elsewhere;
    ``peers={}`` leaves River out.
    """
    season, scores = naive_scores(rec, cfg.horizon)
    if runs is None:
        runs = [gru_scores(rec, cfg, s) for s in seeds]
    if peers is None:
        peers = peer_scores(rec, cfg.horizon)
    row: dict[str, Any] = {"stream": rec.name, "events": rec.values.size, "season": season}
    row.update({f"{name} setting": setting for name, (setting, _) in peers.items()})
    for step in STEPS:
        per_seed = [float(r.mae[step - 1]) for r in runs]
        ours = statistics.median(per_seed)
        row[f"gru+{step}"] = ours
        for name, s in scores.items():
            row[f"{name}+{step}"] = float(s.mae[step - 1])
        for name, (_, s) in peers.items():  # a diverged peer scores infinity
            row[f"{name}+{step}"] = math.inf if s is None else float(s.mae[step - 1])
        best = min(row[f"{name}+{step}"] for name in NAIVE)
        best_all = min(best, *(row[f"{name}+{step}"] for name in peers))
        row[f"best+{step}"] = best
        row[f"best_all+{step}"] = best_all
        row[f"ratio+{step}"] = ours / best
        row[f"ratio_all+{step}"] = ours / best_all
        row[f"ratio+{step} per seed"] = [v / best for v in per_seed]
    row["coverage_min"] = statistics.median(float(np.min(r.coverage)) for r in runs)
    row["coverage_max"] = statistics.median(float(np.max(r.coverage)) for r in runs)
    return row


def verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The bars of the aggregation issue (#13), for the 18-stream panel.

    On a subset (``--streams``) the same number of misses is allowed per bar, so
    ``passes`` there says only that no bar is already lost.
    """
    n = len(rows)
    r12 = [r["ratio+12"] for r in rows]
    r1 = [r["ratio+1"] for r in rows]
    geo = math.exp(statistics.fmean(math.log(v) for v in r12)) if rows else math.nan
    counts = {
        "+12_at_or_below_best_naive": (sum(v <= 1.0 for v in r12), n - 2),
        "+12_within_3pct_of_best_naive": (sum(v <= 1.03 for v in r12), n),
        "+1_within_2pct_of_best_naive": (sum(v <= 1.02 for v in r1), n),
        "+1_within_1pct_of_best_naive": (sum(v <= 1.01 for v in r1), n - 2),
        "+1_at_or_below_best_of_naive_and_river": (
            sum(r["ratio_all+1"] <= 1.0 for r in rows), n - 4),
        "+12_at_or_below_best_of_naive_and_river": (
            sum(r["ratio_all+12"] <= 1.0 for r in rows), n - 4),
        "coverage_in_85_95_every_step": (
            sum(r["coverage_min"] >= 0.85 and r["coverage_max"] <= 0.95 for r in rows), n),
    }  # fmt: skip
    out: dict[str, Any] = {k: f"{got}/{n} (bar: {need})" for k, (got, need) in counts.items()}
    out["+12_geometric_mean_ratio"] = f"{geo:.4f} (bar: 0.95)"
    out["passes"] = all(got >= need for got, need in counts.values()) and geo <= 0.95
    return out


def run(
    cfg: ForecasterConfig,
    seeds: tuple[int, ...] = (0, 1, 2),
    progress: Callable[[str], None] | None = None,
    jobs: int = 1,
    streams: Sequence[str] = PANEL,
) -> dict[str, Any]:
    """Every stream, then the verdict; ``jobs`` processes run the GRU and River runs.

    Each run is deterministic, so the figures do not depend on ``jobs``.
    """
    work = [("peers", p, cfg, 0) for p in streams]
    work += [("gru", p, cfg, s) for p in streams for s in seeds]
    if progress:
        progress(f"{len(work)} runs (GRU per seed, River per stream) in {jobs} processes")
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            done = list(pool.map(_job, work))
    else:
        done = [_job(w) for w in work]
    peers = dict(zip(streams, done[: len(streams)], strict=True))
    gru = done[len(streams) :]
    rows = []
    for i, path in enumerate(streams):
        rec = panel_recording(path)
        if progress:
            progress(rec.name)
        runs = gru[i * len(seeds) : (i + 1) * len(seeds)]
        rows.append(run_stream(rec, cfg, seeds, runs, peers[path]))
    return {"config": cfg.to_dict(), "seeds": list(seeds), "rows": rows, "verdict": verdict(rows)}
