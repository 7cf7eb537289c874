"""What an :class:`~forecaster.OnlineForecaster` snapshot holds beyond its series table.

The weights, optimiser state, blend, pooled expert weights, retrain counters and
schedule, and an in-flight retrain (finished first, so a restore applies the same
result at the same event). :class:`~forecaster.stream.StreamModel` writes and reads the
series table and calls these for the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from forecaster.retrain import RetrainResult

if TYPE_CHECKING:
    from forecaster.model import OnlineForecaster

_RESULT_ARRAYS = ("params", "opt_state", "blend", "blend_losses", "states", "rows", "counts")


class _FinishedJob:
    """A retrain restored from a snapshot: already done, result at hand."""

    def __init__(self, result: RetrainResult) -> None:
        self._result = result

    def done(self) -> bool:
        return True

    def result(self) -> RetrainResult:
        return self._result


def model_state(model: OnlineForecaster) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The model's arrays and JSON-able metadata, an in-flight retrain's result included."""
    arrays = {"params": model.params, "opt_state": model.opt_state, "blend": model.blend,
              "blend_losses": model.blend_losses}  # fmt: skip
    if model.experts is not None:
        arrays["pooled"] = model.experts.pooled
    meta: dict[str, Any] = {
        "retrains": [model.retrains_started, model.retrains_accepted, model.retrains_rejected],
        "retrains_failed": model.retrains_failed, "last_retrain_error": model.last_retrain_error,
        "retrain_enabled": model.retrain_enabled,
        "retrain_log": model.retrain_log, "swap_at": model._swap_at, "job": None,
        "retrains_by_reason": model.retrains_by_reason, "job_reason": model._job_reason,
        "job_start": model._job_start,
    }  # fmt: skip
    schedule_arrays, schedule_meta = model.schedule.state()
    arrays.update(schedule_arrays)
    meta.update(schedule_meta)
    if model._job is not None:  # an in-flight retrain is finished and stored
        res = model._job.result()
        arrays.update({f"job.{k}": getattr(res, k) for k in _RESULT_ARRAYS})
        meta["job"] = {"accepted": res.accepted, "train_loss": res.train_loss,
                       "val_loss_before": res.val_loss_before,
                       "val_loss_after": res.val_loss_after, "ids": res.ids,
                       "error": res.error, "steps": res.steps}  # fmt: skip
    return arrays, meta


def load_model_state(
    model: OnlineForecaster, arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> None:
    """Put :func:`model_state`'s output back; weights of another shape are an error."""
    if arrays["params"].shape != (model.spec.n_params,):
        msg = (f"snapshot weights have shape {arrays['params'].shape}, this model needs "
               f"({model.spec.n_params},)")  # fmt: skip
        raise ValueError(msg)
    model.params, model.opt_state = arrays["params"], arrays["opt_state"]
    model.blend, model.blend_losses = arrays["blend"], arrays["blend_losses"]
    if model.experts is not None:
        model.experts.pooled = arrays["pooled"]
    model.retrains_started, model.retrains_accepted, model.retrains_rejected = meta["retrains"]
    # Snapshots written before failures were counted apart have none.
    model.retrains_failed = meta.get("retrains_failed", 0)
    model.last_retrain_error = meta.get("last_retrain_error", "")
    model.retrain_log = meta["retrain_log"]
    model.retrain_enabled = meta["retrain_enabled"]
    model._swap_at = meta["swap_at"]
    # Snapshots from before the drift trigger have no reasons.
    model.retrains_by_reason.update(meta.get("retrains_by_reason", {}))
    model._job_reason, model._job_start = meta.get("job_reason", ""), meta.get("job_start", -1)
    model.schedule.load(arrays, meta)
    job = meta["job"]
    if job is not None:
        fields: dict[str, Any] = {k: arrays[f"job.{k}"] for k in _RESULT_ARRAYS}
        model._job = _FinishedJob(RetrainResult(**fields, **job))  # type: ignore[assignment]
