"""``forecaster bench warm``: train once on the past, deploy on the future (issue 16).

Each panel stream is cut at 70% of its events. A model file is trained on the first part
(``forecaster train``: one file per stream, and one trained on every stream's first part
together), and the last 30% is replayed three ways, each scored on the same events from
the first that every replay forecast:

- ``--model`` the stream's own file (and the all-streams file),
- untrained, from the cut (what a new service partition does today),
- the whole file, scored on the last 30% only (the model that saw everything before):
  the training replay of the first part, continued on the last (the same computation as
  one replay of the whole: a model's outputs never depend on how events were grouped).

The figures are ratios of MAE at +1 and +12: file / untrained (at most 1: at least as
good) and file / whole (near 1: nothing lost by starting from a file).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from forecaster import ForecasterConfig, OnlineForecaster
from forecaster.core import F64Array
from pipelines.bench.datasets import PANEL, panel_recording
from pipelines.engine.batches import EventBatch
from pipelines.engine.recorded import Columns, RecordedPartition
from pipelines.models.file import read_model, write_model
from pipelines.replay.run import run_loop
from pipelines.train.train import train

CUT = 0.7
HOLDOUT = 0.2  # of the training part: the file's held-out scores
MIN_BETTER = 16 / 18  # streams on which the file must be at least as good as untrained
MAX_MEDIAN = 1.03  # median ratio to the whole-file replay


def parts(path: str, cut: float = CUT) -> tuple[RecordedPartition, ...]:
    """A panel stream's first part, last part and whole, as recorded partitions."""
    rec = panel_recording(path)
    n = rec.values.size
    k = int(cut * n)

    def part(lo: int, hi: int, tag: str) -> RecordedPartition:
        m = hi - lo
        batch = EventBatch(np.arange(lo, hi, dtype=np.int64), [rec.name] * m, rec.ts[lo:hi],
                           rec.values[lo:hi], np.zeros((m, 0)), hi)  # fmt: skip
        return RecordedPartition(f"{rec.name}{tag}", rec.name, 0, batch, hi - lo, Columns())

    return part(0, k, "[:70%]"), part(k, n, "[70%:]"), part(0, n, "")


def errors(
    part: RecordedPartition, cfg: ForecasterConfig, init: Path | OnlineForecaster | None
) -> F64Array:
    """The errors ``(n, K)`` of a replay of ``part`` (rows: offsets).

    From the model file ``init``, on from the model ``init``, or untrained.
    """
    state = read_model(init).arrays if isinstance(init, Path) else init
    fc = run_loop([part], cfg, init=state).forecasts
    out = np.full((part.batch.end, cfg.horizon), np.nan)
    out[fc.offsets] = fc.errors
    return out


def mae(err: F64Array, scored: np.ndarray, step: int) -> float:
    """MAE at ``step`` over the ``scored`` rows."""
    return float(np.mean(np.abs(err[scored, step - 1])))


def _train_file(
    files: Sequence[RecordedPartition], cfg: ForecasterConfig, out: Path
) -> OnlineForecaster:
    """Write the model file trained on ``files``; return the trained model (all its state)."""
    raw, result = train(files, cfg, HOLDOUT)
    write_model(out, raw)
    return result.runs[0].history.models[0]


def _stream_job(args: tuple[str, ForecasterConfig, Path]) -> dict[str, Any]:
    """One stream: its own file, and its last part untrained and within the whole."""
    path, cfg, folder = args
    head, tail, _ = parts(path)
    own = folder / f"{head.topic}.fcm"
    trained = _train_file([head], cfg, own)
    lo = head.batch.end
    runs: dict[str, Path | OnlineForecaster | None] = {"own": own, "cold": None,
                                                        "whole": trained}  # fmt: skip
    return {"stream": head.topic, **{name: errors(tail, cfg, init)[lo:] for name, init in
                                     runs.items()}}  # fmt: skip


def _all_job(args: tuple[str, ForecasterConfig, Path]) -> F64Array:
    """One stream's last part from the all-streams file."""
    path, cfg, file = args
    head, tail, _ = parts(path)
    return errors(tail, cfg, file)[head.batch.end :]


def _train_all(args: tuple[tuple[str, ...], ForecasterConfig, Path]) -> str:
    streams, cfg, out = args
    _train_file([parts(p)[0] for p in streams], cfg, out)
    return read_model(out).id


def _told(s: dict[str, Any], horizon: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Say a stream's own-file figures as they come (a long run shows its progress)."""
    r = row(s["stream"], {"own": s["own"], "all": s["own"], "cold": s["cold"],
                          "whole": s["whole"]}, horizon)  # fmt: skip
    say(f"{s['stream']}: " + ", ".join(f"{k} {r[k]:.3f}" for k in r if k.startswith("own/")))
    return s


def row(stream: str, errs: dict[str, F64Array], horizon: int) -> dict[str, Any]:
    """A stream's MAE per replay at +1 and +horizon, and the ratios, on the shared events."""
    scored = np.all([np.isfinite(e).all(axis=1) for e in errs.values()], axis=0)
    out: dict[str, Any] = {"stream": stream, "events": int(scored.sum())}
    for step in (1, horizon):
        m = {name: mae(e, scored, step) for name, e in errs.items()}
        out.update({f"{name}+{step}": v for name, v in m.items()})
        for file in ("own", "all"):
            out[f"{file}/cold+{step}"] = m[file] / m["cold"]
            out[f"{file}/whole+{step}"] = m[file] / m["whole"]
    return out


def verdict(rows: list[dict[str, Any]], horizon: int) -> dict[str, Any]:
    """The acceptance figures, for the per-stream files and the all-streams file."""
    need = int(np.ceil(MIN_BETTER * len(rows)))
    out: dict[str, Any] = {}
    ok = True
    for file in ("own", "all"):
        for step in (1, horizon):
            better = sum(r[f"{file}/cold+{step}"] <= 1.0 for r in rows)
            median = float(np.median([r[f"{file}/whole+{step}"] for r in rows]))
            out[f"{file} +{step}: at least as good as untrained"] = f"{better} of {len(rows)}"
            out[f"{file} +{step}: median ratio to the whole file"] = round(median, 4)
            ok = ok and better >= need and median <= MAX_MEDIAN
    out["passes"] = ok
    return out


def run(
    cfg: ForecasterConfig,
    streams: Sequence[str] = PANEL,
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every stream's figures and the verdict; ``jobs`` processes (figures do not depend on it)."""
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
        folder = Path(tmp)
        work = [(p, cfg, folder) for p in streams]
        all_file = folder / "all-streams.fcm"
        if progress:
            progress(f"{len(streams)} streams, and one file for all of them, in {jobs} processes")
        say = progress or (lambda _: None)
        if jobs > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                trained = pool.submit(_train_all, (tuple(streams), cfg, all_file))
                per_stream = [_told(s, cfg.horizon, say) for s in pool.map(_stream_job, work)]
                all_id = trained.result()
                from_all = list(pool.map(_all_job, [(p, cfg, all_file) for p in streams]))
        else:
            per_stream = [_told(_stream_job(w), cfg.horizon, say) for w in work]
            all_id = _train_all((tuple(streams), cfg, all_file))
            from_all = [_all_job((p, cfg, all_file)) for p in streams]
    rows = [row(s["stream"], {"own": s["own"], "all": a, "cold": s["cold"],
                              "whole": s["whole"]}, cfg.horizon)
            for s, a in zip(per_stream, from_all, strict=True)]  # fmt: skip
    return {"config": cfg.to_dict(), "cut": CUT, "all_streams_file": all_id, "rows": rows,
            "verdict": verdict(rows, cfg.horizon)}  # fmt: skip
