"""``forecaster replay``: a backtest through the service's own run loop, and its scores.

Recorded files become partitions of a :class:`~pipelines.files.source.FileSource`, and the
:class:`~pipelines.engine.loop.Runner` learns them exactly as it learns Kafka partitions (one
model per partition, the same retraining schedule, the same rejections), with event
time as its clock. The forecasts it emits are then scored prequentially, beside last
value, seasonal naive and EWMA fed the same events, by one scorer for all.

Scoring: the forecast issued after event ``t`` of a series for step ``h`` is scored
against the series' event ``t + h`` (steps count the series' own accepted events).
The first ``warmup`` fraction of each series' events is learned but not scored, and
MASE divides by the series' mean absolute one-step change over its warm-up.
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

from forecaster import EWMA, ForecasterConfig, LastValue, OnlineForecaster, SeasonalNaive
from forecaster.core import F64Array
from forecaster.core.params import I64Array
from forecaster.evaluate import score, tune_ewma
from forecaster.stream import StreamModel
from pipelines.engine.checkpoint import Checkpoint, CheckpointStore
from pipelines.engine.loop import LoopSettings, Runner
from pipelines.engine.records import EventBatch, Rejected
from pipelines.engine.sinks import ForecastBatch, ListDeadLetters
from pipelines.engine.sources import TP
from pipelines.files.source import Columns, FileSource, ParsedFile, input_files, parse_file

MODEL = "model"
BASELINES = ("last value", "seasonal naive", "ewma")
METRICS = ("mae", "rmse", "smape", "mase", "coverage")


class NullStore(CheckpointStore):
    """No checkpoints: a replay always starts from a fresh model and keeps nothing."""

    def __init__(self) -> None:
        super().__init__(Path("/nonexistent"))

    def save(self, ckpt: Checkpoint) -> Path:  # noqa: D102
        return self.path(ckpt.topic, ckpt.partition)

    def load(self, topic: str, partition: int) -> Checkpoint | None:  # noqa: D102
        return None


class CollectSink:
    """Keeps the forecast batches (the replay writes them as one table at the end)."""

    def __init__(self) -> None:
        self.batches: list[ForecastBatch] = []

    def write(self, batch: ForecastBatch, messages: Sequence[tuple[bytes, bytes]]) -> None:  # noqa: D102
        self.batches.append(batch)

    def flush(self) -> None:  # noqa: D102
        pass

    def close(self) -> None:  # noqa: D102
        pass


@dataclass(frozen=True)
class Forecasts:
    """Every forecast a run issued, one row per accepted event, partitions in input order."""

    source: list[str]  # the topic (file name) of each event
    partition: I64Array
    offsets: I64Array
    series: list[str]
    ts: F64Array
    value: F64Array
    yhat: F64Array  # (n, K)
    lower: F64Array
    upper: F64Array
    model_version: I64Array

    @staticmethod
    def of(batches: Sequence[ForecastBatch], horizon: int) -> Forecasts:
        """Concatenate batches, grouped by partition (in first-seen order)."""
        order: dict[TP, list[ForecastBatch]] = {}
        for b in batches:
            order.setdefault((b.topic, b.partition), []).append(b)
        bs = [b for group in order.values() for b in group if len(b)]
        if not bs:
            empty = np.zeros((0, horizon))
            none = np.zeros(0, np.int64)
            return Forecasts([], none, none, [], np.zeros(0), np.zeros(0), empty, empty, empty,
                             none)  # fmt: skip
        return Forecasts(
            [b.topic for b in bs for _ in range(len(b))],
            np.concatenate([np.full(len(b), b.partition, dtype=np.int64) for b in bs]),
            np.concatenate([b.offsets for b in bs]),
            [s for b in bs for s in b.series],
            np.concatenate([b.ts for b in bs]),
            np.concatenate([b.value for b in bs]),
            np.concatenate([b.yhat for b in bs]),
            np.concatenate([b.lower for b in bs]),
            np.concatenate([b.upper for b in bs]),
            np.concatenate([b.model_version for b in bs]),
        )

    def __len__(self) -> int:
        return len(self.series)

    def to_frame(self) -> pd.DataFrame:
        """One row per event: where it came from, its time and value, and K forecasts."""
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
        return pd.DataFrame(cols)


@dataclass
class Run:
    """What one configuration did on the input."""

    label: str
    cfg: ForecasterConfig
    forecasts: Forecasts
    rejected: Counter[str]
    dead_letters: list[Rejected]
    retrain_log: list[dict[str, Any]]  # per retrain: source, at_event, losses, accepted
    records: int
    seconds: float  # the loop, from the first poll to the last checkpoint
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)


def read_input(path: Path, cols: Columns) -> tuple[list[ParsedFile], float]:
    """Parse a file or folder once; returns the files and the seconds it took."""
    start = time.perf_counter()
    files = [parse_file(p, cols) for p in input_files(path)]
    return files, time.perf_counter() - start


def run_loop(
    files: Sequence[ParsedFile],
    cfg: ForecasterConfig,
    label: str = MODEL,
    batch: int = 2048,
    progress: Callable[[int], None] | None = None,
) -> Run:
    """Replay parsed files through the service's :class:`Runner`; one partition per file.

    Retraining runs inline (``background=False``): by the model's contract its outputs
    are bit-identical to a background retrain, and nothing waits on a thread.
    """
    cfg = replace(cfg, background=False)
    parts: dict[TP, EventBatch] = {(f.topic, f.partition): f.batch for f in files}
    source = FileSource(parts, batch=batch)
    sink, dead = CollectSink(), ListDeadLetters()
    runner = Runner(
        source, sink, dead, NullStore(), lambda: OnlineForecaster(cfg),
        LoopSettings(every_events=2**62, every_seconds=math.inf, poll_timeout_ms=0),
        clock=source.clock, monotonic=source.clock,
    )  # fmt: skip
    start = time.perf_counter()
    runner.start()
    while not source.exhausted or any(t.backlog for t in runner.tasks.values()):
        runner.run_once()
        if progress is not None:
            progress(runner.stats.events)
    runner.close()
    seconds = time.perf_counter() - start
    log: list[dict[str, Any]] = []
    for (topic, _), task in runner.tasks.items():
        log += [{"source": topic, **entry} for entry in task.model.retrain_log]
    return Run(label, cfg, Forecasts.of(sink.batches, cfg.horizon), runner.stats.rejected,
               dead.rejected, log, runner.stats.records, seconds)  # fmt: skip


# --- scoring -------------------------------------------------------------------------
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


def errors_of(
    value: F64Array, yhat: F64Array, lower: F64Array, upper: F64Array, prev: I64Array
) -> tuple[F64Array, np.ndarray]:
    """``value - forecast`` of the forecasts issued 1..K events earlier, and coverage.

    Per event and step: the error, and whether the value fell inside that forecast's
    interval (NaN / False where there was no forecast).
    """
    valid = prev >= 0
    src = np.where(valid, prev, 0)
    steps = np.arange(yhat.shape[1])[None, :]
    y = value[:, None]
    err = np.where(valid, y - yhat[src, steps], np.nan)
    hit = valid & (lower[src, steps] <= y) & (y <= upper[src, steps])
    return err, hit


def season_events(ts: F64Array, series: Sequence[str]) -> int:
    """The seasonal-naive season, in events of the median spacing.

    A day, else a week, else a year: the first that holds at least two events.

    Examples
    --------
    >>> season_events(np.arange(100) * 3600.0, ["a"] * 100)
    24
    """
    codes, _ = pd.factorize(pd.Series(list(series), dtype=object))
    order = np.argsort(codes, kind="stable")
    same = codes[order][1:] == codes[order][:-1]
    dt = np.diff(ts[order])[same]
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
    codes, _ = pd.factorize(pd.Series(list(series), dtype=object))
    order = np.argsort(codes, kind="stable")
    same = codes[order][1:] == codes[order][:-1]
    dt = np.diff(ts[order])[same]
    pos = dt[dt > 0]
    med = float(np.median(pos)) if pos.size else 0.0
    return {
        "duplicate_times": int((dt == 0).sum()),
        "gaps": int((dt > 2 * med).sum()) if med > 0 else 0,
    }


def baseline_forecasts(
    fc: Forecasts, warm: np.ndarray, season: int, coverage: float
) -> dict[str, tuple[F64Array, F64Array, F64Array]]:
    """yhat, lower, upper of each baseline, fed the events the model accepted, in order.

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
    out = {}
    for name, model in models.items():
        upd = model.learn(ids, fc.ts, fc.value)
        out[name] = (upd.yhat, upd.lower, upd.upper)
    return out


def score_forecasts(
    fc: Forecasts,
    others: dict[str, tuple[F64Array, F64Array, F64Array]],
    warmup: float,
    label: str = MODEL,
) -> pd.DataFrame:
    """Scores per model, series (``"*"``: all) and step: MAE, RMSE, sMAPE, MASE, coverage, n.

    The overall row pools every scored event of every series.
    """
    k = fc.yhat.shape[1]
    prev, pos = prior_index(fc.series, k)
    sizes = pd.Series(fc.series).map(pd.Series(fc.series).value_counts()).to_numpy()
    start = np.floor(warmup * sizes).astype(np.int64)
    scored = pos >= start
    codes, names = pd.factorize(pd.Series(fc.series, dtype=object))
    models = {label: (fc.yhat, fc.lower, fc.upper), **others}
    rows: list[dict[str, Any]] = []
    for model, (yhat, lower, upper) in models.items():
        err, hit = errors_of(fc.value, yhat, lower, upper, prev)
        err = np.where(scored[:, None], err, np.nan)
        groups: list[tuple[str, np.ndarray]] = [("*", np.arange(len(fc)))]
        if len(names) > 1:
            groups += [(str(s), np.flatnonzero(codes == i)) for i, s in enumerate(names)]
        for sid, idx in groups:
            s = _score_group(fc, idx, err, hit, scored, pos, start)
            for j in range(k):
                row = {"model": model, "series": sid, "step": j + 1}
                row.update({m: float(getattr(s, m)[j]) for m in METRICS})
                row["n"] = int(s.n[j])
                rows.append(row)
    return pd.DataFrame(rows)


def _score_group(
    fc: Forecasts,
    idx: np.ndarray,
    err: F64Array,
    hit: np.ndarray,
    scored: np.ndarray,
    pos: I64Array,
    start: I64Array,
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


def summary_table(scores: pd.DataFrame, series: str = "*") -> pd.DataFrame:
    """Per step: each model's MAE, and the scores of every other model in ``scores``."""
    sub = scores[scores["series"] == series]
    return sub.pivot_table(index="step", columns="model", values=list(METRICS), sort=False)


def ranking(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Configurations by mean MASE over steps (all series), best first."""
    rows = []
    for r in runs:
        s = r.scores
        own = s[(s["model"] == r.label) & (s["series"] == "*")]
        rows.append({"config": r.label, "mase": float(own["mase"].mean()),
                     "mae": float(own["mae"].mean()),
                     "coverage": float(own["coverage"].mean())})  # fmt: skip
    rows.sort(key=lambda d: (d["mase"], d["config"]))
    for i, d in enumerate(rows):
        d["rank"] = i + 1
    return rows


# --- the command ---------------------------------------------------------------------
@dataclass(frozen=True)
class ReplayOptions:
    """Everything ``forecaster replay`` was asked, beside the input and the configs."""

    out: Path
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

    files: list[ParsedFile]
    parse_seconds: float
    runs: list[Run]
    season: int
    summary: dict[str, Any]
    scores: pd.DataFrame  # every run's, baselines once (as in scores.csv)


def forecasts_path(out: Path, label: str, fmt: str, several: bool) -> Path:
    """Where a run's forecasts go: ``forecasts.<fmt>``, or ``forecasts-<label>.<fmt>``."""
    return out / (f"forecasts-{label}.{fmt}" if several else f"forecasts.{fmt}")


def write_forecasts(fc: Forecasts, path: Path, fmt: str) -> None:
    """The forecasts table, byte for byte the same for the same run (Parquet or CSV)."""
    df = fc.to_frame()
    if fmt == "csv":
        df["ts"] = df["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
        df.to_csv(path, index=False, lineterminator="\n")
    else:
        df.to_parquet(path, index=False, compression="zstd")


def labels_for(paths: Sequence[Path]) -> list[str]:
    """A short unique label per config file (its stem; ``stem-2`` on a clash)."""
    seen: Counter[str] = Counter()
    out = []
    for p in paths:
        seen[p.stem] += 1
        out.append(p.stem if seen[p.stem] == 1 else f"{p.stem}-{seen[p.stem]}")
    return out


def replay(
    files: list[ParsedFile],
    parse_seconds: float,
    configs: Sequence[tuple[str, ForecasterConfig]],
    opts: ReplayOptions,
    progress: Callable[[int], None] | None = None,
) -> Replay:
    """Run every configuration over the parsed files, score them, and write the outputs."""
    opts.out.mkdir(parents=True, exist_ok=True)
    runs: list[Run] = []
    done = 0
    for label, cfg in configs:
        base = done

        def step(n: int, base: int = base) -> None:
            if progress is not None:
                progress(base + n)

        with threadpool_limits(opts.threads):
            runs.append(run_loop(files, cfg, label, opts.batch, step))
        done += sum(f.rows for f in files)
    first = runs[0].forecasts
    season = opts.season or season_events(first.ts, first.series)
    several = len(runs) > 1
    for run in runs:
        fc = run.forecasts
        _, pos = prior_index(fc.series, run.cfg.horizon)
        sizes = pd.Series(fc.series).map(pd.Series(fc.series).value_counts()).to_numpy()
        warm = pos < np.floor(opts.warmup * sizes)
        base_fc = baseline_forecasts(fc, warm, season, run.cfg.coverage)
        run.scores = score_forecasts(fc, base_fc, opts.warmup, run.label)
        write_forecasts(fc, forecasts_path(opts.out, run.label, opts.fmt, several), opts.fmt)
    scores = pd.concat([r.scores for r in runs], ignore_index=True)
    scores = scores.drop_duplicates(subset=["model", "series", "step"], keep="first")
    scores.to_csv(opts.out / "scores.csv", index=False, lineterminator="\n")
    rows = sum(f.rows for f in files)
    loop_seconds = runs[0].seconds
    summary: dict[str, Any] = {
        "files": [str(f.path) for f in files],
        "columns": {
            f.path.name: {
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
        "rejected": dict(sorted(runs[0].rejected.items())),
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
                "retrains": len(r.retrain_log),
                "retrains_accepted": int(sum(e["accepted"] for e in r.retrain_log)),
                "forecasts": str(forecasts_path(opts.out, r.label, opts.fmt, several)),
            }
            for r in runs
        ],
        "ranking": ranking(runs) if several else [],
    }
    return Replay(files, parse_seconds, runs, season, summary, scores)
