"""What a model file says beside its state: the data it learned, its held-out scores.

Made from a finished replay (:mod:`pipelines.replay.run`), by ``replay --save-model``
and by ``forecaster train`` (:mod:`pipelines.train`), so both files read alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from forecaster import ForecasterConfig, OnlineForecaster
from forecaster.transfer import transferable
from pipelines.engine.encode import iso_times
from pipelines.engine.recorded import RecordedPartition
from pipelines.models.file import encode_model
from pipelines.replay.run import Replay
from pipelines.replay.scoring import BASELINES, MODEL


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


def save_replayed(result: Replay, warmup: float, cfg: ForecasterConfig) -> bytes:
    """The model of a finished replay's first configuration ``cfg``, as a model file's bytes.

    With several partitions, the model of the one that learned the most events (the
    header's ``data.partition`` names it): a replay keeps one model per partition.
    ``cfg`` is the configuration as given (the replay itself retrains inline).
    """
    run = result.runs[0]
    models: list[OnlineForecaster] = run.history.models
    best = int(np.argmax([m.n_events for m in models]))
    info = model_info(result.files, result, 1.0 - warmup)
    info["data"]["partition"] = result.files[best].name
    return encode_model(cfg, transferable(models[best]), info)
