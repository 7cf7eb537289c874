"""``forecaster replay``: a backtest through the service's own run loop.

Recorded partitions (files, or a topic's range) are served by a
:class:`~pipelines.engine.recorded.RecordedSource`, and the
:class:`~pipelines.engine.loop.Runner` learns them exactly as it learns Kafka partitions
(one model per partition, the same retraining schedule, the same rejections), with
event time as its clock. The forecasts it emits, with the errors the models scored as
they learned, are then scored beside three baselines (:mod:`pipelines.replay.scoring`).
Nothing is written here: :mod:`pipelines.replay.report` writes what was asked for.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from forecaster import ForecasterConfig, OnlineForecaster
from forecaster.anomaly import Judgement
from forecaster.core.params import F64Array, I64Array
from forecaster.experts import expert_names
from forecaster.stream import Update
from forecaster.transfer import warm_start
from pipelines.engine.batches import TP, ForecastBatch, ForecastColumns
from pipelines.engine.loop import Runner
from pipelines.engine.memory import ListDeadLetters, ListSink, NullStore
from pipelines.engine.recorded import Columns, RecordedPartition, RecordedSource
from pipelines.engine.records import Rejected
from pipelines.engine.runstate import Clocks, LoopSettings, LoopStats
from pipelines.files.source import input_files, parse_file
from pipelines.replay.scoring import (
    MODEL,
    baselines,
    irregularities,
    ranking,
    score_forecasts,
    season_events,
    warm_up,
)


def _stack(updates: Sequence[Update], horizon: int) -> Update:
    """One report of several, rows in order (every row an accepted event)."""
    if not updates:
        empty, none = np.zeros((0, horizon)), np.zeros(0, np.int64)
        return Update(np.zeros(0, bool), [], np.zeros(0), np.zeros(0), empty, empty, empty,
                      empty, empty, np.zeros((0, horizon), bool), none)  # fmt: skip

    def cat(name: str) -> Any:
        return np.concatenate([getattr(u, name) for u in updates])

    judged = [u.anomaly for u in updates if u.anomaly is not None]
    return Update(
        np.ones(sum(len(u.series) for u in updates), bool), [s for u in updates for s in u.series],
        cat("ts"), cat("value"), cat("yhat"), cat("lower"), cat("upper"), cat("step_ts"),
        cat("errors"), cat("covered"), cat("model_version"),
        Judgement.concat(judged) if len(judged) == len(updates) else None,
    )  # fmt: skip


@dataclass(frozen=True)
class Forecasts(ForecastColumns):
    """Every forecast a run issued, one row per accepted event, partitions in input order."""

    source: list[str]  # the topic (file name) of each event
    partition: I64Array
    offsets: I64Array
    forecasts: Update

    @staticmethod
    def of(batches: Sequence[ForecastBatch], horizon: int) -> Forecasts:
        """Concatenate batches, grouped by partition (in first-seen order)."""
        order: dict[TP, list[ForecastBatch]] = {}
        for b in batches:
            order.setdefault((b.topic, b.partition), []).append(b)
        bs = [b for group in order.values() for b in group if len(b)]
        return Forecasts(
            [b.topic for b in bs for _ in range(len(b))],
            np.concatenate([np.full(len(b), b.partition, dtype=np.int64) for b in bs] or
                           [np.zeros(0, np.int64)]),
            np.concatenate([b.offsets for b in bs] or [np.zeros(0, np.int64)]),
            _stack([b.forecasts for b in bs], horizon),
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.series)

    def to_frame(self) -> pd.DataFrame:
        """One row per event: where it came from, its time and value, K forecasts, its judgement."""
        k = self.yhat.shape[1]
        cols: dict[str, Any] = {
            "source": self.source, "partition": self.partition, "offset": self.offsets,
            "series": self.series,
            "ts": pd.to_datetime(np.rint(self.ts * 1000).astype(np.int64), unit="ms", utc=True),
            "value": self.value, "model_version": self.model_version,
        }  # fmt: skip
        for name, arr in (("yhat", self.yhat), ("lower", self.lower), ("upper", self.upper)):
            for j in range(k):
                cols[f"{name}_{j + 1}"] = arr[:, j]
        if self.anomaly is not None:  # the event's judgement (forecaster.anomaly)
            a = self.anomaly
            cols.update(anomaly=a.flag, anomaly_score=a.score, anomaly_step=a.step)
        return pd.DataFrame(cols)


@dataclass
class Run:
    """What one configuration did on the input."""

    label: str
    cfg: ForecasterConfig
    forecasts: Forecasts
    stats: LoopStats  # records read, rejected by reason
    dead_letters: list[Rejected]
    history: ModelHistory  # what the models did over the run
    seconds: float  # the loop, from the first poll to the last checkpoint
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True)
class ModelHistory:
    """What the models did over a run: retrains, and with expert aggregation the weights.

    ``retrain_log`` has one entry per retrain (source, partition, reason, started_at and
    at_event in the partition's events learned, losses, accepted);
    ``expert_weights`` holds (events learned, pooled weights ``(K, E)``, the mean over
    partitions) after each poll, for the experts ``expert_names`` (both empty without
    aggregation). ``models`` are the partitions' models as the run ended, in input order.
    """

    retrain_log: list[dict[str, Any]]
    expert_names: list[str]
    expert_weights: list[tuple[int, F64Array]]
    models: list[OnlineForecaster] = field(default_factory=list)


def read_input(path: Path, cols: Columns) -> tuple[list[RecordedPartition], float]:
    """Parse a file or folder once; returns the files and the seconds it took."""
    start = time.perf_counter()
    files = [parse_file(p, cols) for p in input_files(path)]
    return files, time.perf_counter() - start


def run_loop(
    parts: Sequence[RecordedPartition],
    cfg: ForecasterConfig,
    label: str = MODEL,
    batch: int = 2048,
    progress: Callable[[int], None] | None = None,
    init: dict[str, np.ndarray] | OnlineForecaster | None = None,
) -> Run:
    """Replay recorded partitions through the service's :class:`Runner`.

    Retraining runs inline (``background=False``): by the model's contract its outputs
    are bit-identical to a background retrain, and nothing waits on a thread. The
    forecasts are kept as batches and never encoded. With ``init`` (the arrays of
    :func:`forecaster.transfer.transferable`) every partition's model starts from it; a
    model as ``init`` goes on learning (one partition: a replay continued).
    """
    cfg = replace(cfg, background=False)
    source = RecordedSource.of(list(parts), batch=batch)
    sink, dead = ListSink(), ListDeadLetters()

    def make_model() -> OnlineForecaster:
        if isinstance(init, OnlineForecaster):
            return init
        return OnlineForecaster(cfg) if init is None else warm_start(cfg, init)

    runner = Runner(
        source, sink, dead, NullStore(), make_model,
        LoopSettings(every_events=2**62, every_seconds=math.inf, poll_timeout_ms=0),
        Clocks(wall=source.clock, monotonic=source.clock),
    )  # fmt: skip
    start = time.perf_counter()
    runner.start()
    weights: list[tuple[int, F64Array]] = []
    while not source.exhausted or any(t.backlog for t in runner.tasks.values()):
        runner.run_once()
        if progress is not None:
            progress(runner.stats.events)
        if cfg.aggregation != "none" and runner.tasks:
            pooled = [t.model.expert_weights() for t in runner.tasks.values()
                      if isinstance(t.model, OnlineForecaster)]  # fmt: skip
            weights.append((runner.stats.events, np.mean(pooled, axis=0)))
    runner.close()
    seconds = time.perf_counter() - start
    log: list[dict[str, Any]] = []
    for (topic, part), task in runner.tasks.items():
        log += [{"source": topic, "partition": part, **entry} for entry in task.model.retrain_log]
    names = expert_names(cfg) if cfg.aggregation != "none" else []
    models = [t.model for t in runner.tasks.values()]
    return Run(label, cfg, Forecasts.of(sink.batches, cfg.horizon), runner.stats,
               dead.rejected, ModelHistory(log, names, weights, models), seconds)  # fmt: skip


@dataclass(frozen=True)
class ReplayOptions:
    """Everything ``forecaster replay`` was asked, beside the input and the configs."""

    out: Path | None  # the report folder; None: write nothing
    fmt: str = "parquet"  # of the forecasts file: parquet or csv
    warmup: float = 0.1
    season: int | None = None
    batch: int = 2048
    plot_step: int = 1
    plots: bool = True
    threads: int = 1  # BLAS threads for retraining (more thrash a loaded machine)


@dataclass
class Replay:
    """A finished replay: the parsed input, each configuration's run, and the figures."""

    files: list[RecordedPartition]
    parse_seconds: float
    runs: list[Run]
    season: int
    summary: dict[str, Any]
    scores: pd.DataFrame  # every run's, baselines once (as in scores.csv)


def forecasts_path(out: Path, label: str, fmt: str, several: bool) -> Path:
    """Where a run's forecasts go: ``forecasts.<fmt>``, or ``forecasts-<label>.<fmt>``."""
    return out / (f"forecasts-{label}.{fmt}" if several else f"forecasts.{fmt}")


def labels_for(names: Sequence[str]) -> list[str]:
    """A short unique label per config file name (its stem; ``stem-2`` on a clash)."""
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        stem = Path(name).stem
        seen[stem] += 1
        out.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return out


def replay(
    files: list[RecordedPartition],
    parse_seconds: float,
    configs: Sequence[tuple[str, ForecasterConfig]],
    opts: ReplayOptions,
    progress: Callable[[int], None] | None = None,
    init: dict[str, np.ndarray] | None = None,
) -> Replay:
    """Run every configuration over the recorded partitions, and score them.

    ``init``: the state every partition's model starts from (see :func:`run_loop`).
    """
    runs: list[Run] = []
    done = 0
    for label, cfg in configs:
        base = done

        def step(n: int, base: int = base) -> None:
            if progress is not None:
                progress(base + n)

        with threadpool_limits(opts.threads):
            runs.append(run_loop(files, cfg, label, opts.batch, step, init))
        done += sum(f.rows for f in files)
    first = runs[0].forecasts
    season = opts.season or season_events(first.ts, first.series)
    for run in runs:
        fc = run.forecasts
        base_fc = baselines(fc, warm_up(fc.series, opts.warmup), season, run.cfg.coverage)
        run.scores = score_forecasts(fc, base_fc, opts.warmup, run.label)
    scores = pd.concat([r.scores for r in runs], ignore_index=True)
    scores = scores.drop_duplicates(subset=["model", "series", "step"], keep="first")
    summary = _summary(files, parse_seconds, runs, season, opts)
    return Replay(files, parse_seconds, runs, season, summary, scores)


def _summary(files: list[RecordedPartition], parse_seconds: float, runs: list[Run],
             season: int, opts: ReplayOptions) -> dict[str, Any]:  # fmt: skip
    rows = sum(f.rows for f in files)
    first = runs[0].forecasts
    loop_seconds = runs[0].seconds
    several = len(runs) > 1
    return {
        "files": [f.origin for f in files],
        "columns": {
            f.name: {
                "time": f.columns.time,
                "value": f.columns.value,
                "series": f.columns.series,
                "covariates": list(f.columns.covariates),
            }
            for f in files
        },
        "rows": rows,
        "events": len(first),
        "series": len(set(first.series)),
        "rejected": dict(sorted(runs[0].stats.rejected.items())),
        **irregularities(first.series, first.ts),
        "season": season,
        "warmup": opts.warmup,
        "parse_seconds": parse_seconds,
        "replay_seconds": loop_seconds,
        "events_per_second": rows / (parse_seconds + loop_seconds),
        "loop_events_per_second": rows / loop_seconds if loop_seconds > 0 else math.inf,
        "configs": [
            {
                "config": r.label,
                "horizon": r.cfg.horizon,
                "seconds": r.seconds,
                "retrains": len(r.history.retrain_log),
                "retrains_accepted": int(sum(e["accepted"] for e in r.history.retrain_log)),
                "forecasts": None
                if opts.out is None
                else str(forecasts_path(opts.out, r.label, opts.fmt, several)),
            }
            for r in runs
        ],
        "ranking": ranking([(r.label, r.scores) for r in runs]) if several else [],
    }
