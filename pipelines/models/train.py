"""Training a model file on recorded history: ``forecaster train``, and ``replay --save-model``.

Training is a replay (:mod:`pipelines.replay.run`): the same loop, the same retraining
schedule, event time as the clock. Every input partition is merged into one, in event
time order, so one model learns every series: a model file is one set of weights for
every partition. The forecasts on the last ``holdout`` fraction of each series were each
made before its value was learned; they are the file's held-out scores, beside the naive
baselines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecaster import ForecasterConfig, OnlineForecaster
from forecaster.transfer import transferable
from pipelines.engine.batches import EventBatch
from pipelines.engine.encode import iso_times
from pipelines.engine.recorded import RecordedPartition
from pipelines.models.file import encode_model
from pipelines.replay.run import Replay, ReplayOptions, replay
from pipelines.replay.scoring import BASELINES, MODEL


def merge(parts: Sequence[RecordedPartition]) -> RecordedPartition:
    """Every partition's events as one partition, in event time order (ties: input order).

    Rejected records are left out (they are counted in ``rows``); offsets are positions.
    """
    if len(parts) == 1:
        return parts[0]
    b = [p.batch for p in parts]
    ts = np.concatenate([x.ts for x in b])
    order = np.argsort(ts, kind="stable")
    series = [s for x in b for s in x.series]
    n = int(ts.size)
    batch = EventBatch(
        np.arange(n, dtype=np.int64), [series[i] for i in order.tolist()], ts[order],
        np.concatenate([x.values for x in b])[order], np.concatenate([x.cov for x in b])[order],
        n,
    )  # fmt: skip
    rows = sum(p.rows for p in parts)
    return RecordedPartition("+".join(p.name for p in parts), "merged", 0, batch, rows,
                             parts[0].columns)  # fmt: skip


def held_out_scores(scores: pd.DataFrame, holdout: float, label: str = MODEL) -> dict[str, Any]:
    """Per step: the model's MAE, RMSE, MASE and coverage, and each baseline's MAE (all series).

    ``label`` names the model's rows in ``scores`` (the rest are the baselines').
    """
    allr = scores[scores["series"] == "*"]
    steps = []
    for step in sorted(int(s) for s in allr["step"].unique()):
        at = allr[allr["step"] == step].set_index("model")
        own = at.loc[label]
        row: dict[str, Any] = {"step": step, "n": int(own["n"])}
        row.update({m: float(own[m]) for m in ("mae", "rmse", "mase", "coverage")})
        row.update({f"{b} mae": float(at.loc[b, "mae"]) for b in BASELINES})
        steps.append(row)
    return {"holdout": holdout, "steps": steps}


def data_summary(files: Sequence[RecordedPartition], result: Replay) -> dict[str, Any]:
    """What the model learned from: the inputs, series, events and their time span."""
    fc = result.runs[0].forecasts
    span = (
        [iso_times(np.float64(fc.ts.min())), iso_times(np.float64(fc.ts.max()))]
        if len(fc)
        else [None, None]
    )
    return {
        "inputs": [f.origin for f in files],
        "rows": int(sum(f.rows for f in files)),
        "series": len(set(fc.series)),
        "events": len(fc),
        "span": span,
        "rejected": {k: int(v) for k, v in sorted(result.runs[0].stats.rejected.items())},
    }


def model_info(
    files: Sequence[RecordedPartition], result: Replay, holdout: float
) -> dict[str, Any]:
    """A model file's header fields beside the config: the data, the scores, the retrains."""
    run = result.runs[0]
    log = run.history.retrain_log
    return {
        "data": data_summary(files, result),
        "scores": held_out_scores(run.scores, holdout, run.label),
        "retrains": {"started": len(log), "accepted": int(sum(e["accepted"] for e in log))},
    }


def train(
    files: Sequence[RecordedPartition],
    cfg: ForecasterConfig,
    holdout: float,
    progress: Callable[[int], None] | None = None,
    batch: int = 2048,
) -> tuple[bytes, Replay]:
    """Train one model on every partition (merged); returns the model file's bytes and the run.

    Raises ``ValueError`` when ``holdout`` is not in (0, 1).
    """
    if not 0.0 < holdout < 1.0:
        msg = f"holdout must be in (0, 1), got {holdout!r}"
        raise ValueError(msg)
    merged = merge(files)
    opts = ReplayOptions(None, warmup=1.0 - holdout, batch=batch, plots=False)
    result = replay([merged], 0.0, [(MODEL, cfg)], opts, progress)
    model = result.runs[0].history.models[0]
    return encode_model(cfg, transferable(model), model_info(files, result, holdout)), result


def save_replayed(result: Replay, warmup: float) -> bytes:
    """The model of a finished replay's first configuration, as a model file's bytes.

    With several partitions, the model of the one that learned the most events (the
    header's ``data.partition`` names it): a replay keeps one model per partition.
    """
    run = result.runs[0]
    models: list[OnlineForecaster] = run.history.models
    best = int(np.argmax([m.n_events for m in models]))
    info = model_info(result.files, result, 1.0 - warmup)
    info["data"]["partition"] = result.files[best].name
    return encode_model(run.cfg, transferable(models[best]), info)
