"""Training a model file on recorded history: ``forecaster train``.

Training is a replay (:mod:`pipelines.replay.run`): the same loop, the same retraining
schedule, event time as the clock. Every input partition is merged into one, in event
time order, so one model learns every series: a model file is one set of weights for
every partition. The forecasts on the last ``holdout`` fraction of each series were each
made before its value was learned; they are the file's held-out scores, beside the naive
baselines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from forecaster import ForecasterConfig
from forecaster.transfer import transferable
from pipelines.engine.batches import EventBatch
from pipelines.engine.recorded import RecordedPartition
from pipelines.models.file import encode_model
from pipelines.replay.run import Replay, ReplayOptions, replay
from pipelines.replay.save import model_info
from pipelines.replay.scoring import MODEL


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
