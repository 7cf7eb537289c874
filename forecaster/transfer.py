"""What a trained model hands on to a new one: its transferable state.

A model trained on recorded history can start another model (another partition, another
process) where it left off, without the history itself. What carries over is what does
not belong to one series: the weights and the optimiser's state, the blend of forecast
candidates, the pooled expert weights a new series starts from, and the interval
half-widths per step. Per-series state (hidden states, histories, scales) stays behind: a
new series always starts from the pooled state, wherever it appears.

Only the arrays are defined here; a file holding them is an application's business.

Examples
--------
>>> from forecaster import ForecasterConfig, OnlineForecaster
>>> cfg = ForecasterConfig(horizon=2, hidden_size=4, retrain_every=0, background=False)
>>> state = transferable(OnlineForecaster(cfg))
>>> sorted(state)
['blend', 'blend_losses', 'opt_state', 'params', 'q']
>>> warm_start(cfg, state).n_events
0
"""

from __future__ import annotations

import numpy as np

from forecaster.config import ForecasterConfig
from forecaster.model import OnlineForecaster

# The keys of ForecasterConfig that decide the shape or the meaning of the transferable
# arrays: the model's inputs, its size, its outputs and the optimiser's state. Two
# configs equal in these may share a model (the retraining schedule may differ).
STRUCTURE = (
    "horizon", "hidden_size", "num_layers", "reset_after", "use_dt", "calendar",
    "covariates", "seasons", "levels", "reversal", "aggregation", "expert_seasons",
    "expert_rates", "expert_medians", "optimizer",
)  # fmt: skip


def transferable(model: OnlineForecaster) -> dict[str, np.ndarray]:
    """The arrays a new model starts from (copies; see the module docstring).

    ``pooled`` is there only with expert aggregation: the mean weights of the model's
    series as they are now (recomputed here, the model unchanged), so a history shorter
    than the pooling interval still hands on what its series learned.
    """
    out = {
        "params": model.params, "opt_state": model.opt_state, "blend": model.blend,
        "blend_losses": model.blend_losses, "q": model.q,
    }  # fmt: skip
    if model.experts is not None:
        out["pooled"] = model.experts.pooled_now(model.table)
    return {k: np.array(v, dtype=np.float64, copy=True) for k, v in out.items()}


def structure_mismatch(a: ForecasterConfig, b: ForecasterConfig) -> list[str]:
    """The :data:`STRUCTURE` keys on which two configs differ, as ``key a != b`` texts.

    >>> structure_mismatch(ForecasterConfig(horizon=3), ForecasterConfig(horizon=12))
    ['horizon 3 != 12']
    """
    da, db = a.to_dict(), b.to_dict()
    return [f"{k} {da[k]!r} != {db[k]!r}" for k in STRUCTURE if da[k] != db[k]]


def warm_start(cfg: ForecasterConfig, state: dict[str, np.ndarray]) -> OnlineForecaster:
    """A new model of ``cfg`` that starts from ``state`` (from :func:`transferable`).

    Raises
    ------
    ValueError
        Naming an array that is missing, or whose shape does not fit ``cfg``.
    """
    model = OnlineForecaster(cfg)
    fresh = transferable(model)
    for name, like in fresh.items():
        got = state.get(name)
        if got is None:
            msg = f"the model state has no {name!r} array"
            raise ValueError(msg)
        if got.shape != like.shape:
            msg = (
                f"the model state's {name!r} has shape {got.shape}, this config needs {like.shape}"
            )
            raise ValueError(msg)
    model.params = np.array(state["params"], dtype=np.float64)
    model.opt_state = np.array(state["opt_state"], dtype=np.float64)
    model.blend = np.array(state["blend"], dtype=np.float64)
    model.blend_losses = np.array(state["blend_losses"], dtype=np.float64)
    model.q = np.array(state["q"], dtype=np.float64)
    if model.experts is not None:
        model.experts.pooled = np.array(state["pooled"], dtype=np.float64)
    return model
