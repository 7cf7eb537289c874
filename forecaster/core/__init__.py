"""The numerical core: pure Numba kernels over flat float64 arrays, no I/O.

Start with :class:`GRUSpec` (sizes and parameter layout), :func:`gru_step` (the
per-event hot path) and :class:`Trainer` (BPTT with an optimiser).
"""

from __future__ import annotations

from forecaster.core.gru import gru_readout, gru_step, step_workspace
from forecaster.core.losses import Loss
from forecaster.core.optim import SGD, Adam, Optimizer, RMSprop, clip_grad_norm
from forecaster.core.params import F64Array, GRUSpec
from forecaster.core.train import Trainer, Workspace, backward, forward

__all__ = [
    "SGD",
    "Adam",
    "F64Array",
    "GRUSpec",
    "Loss",
    "Optimizer",
    "RMSprop",
    "Trainer",
    "Workspace",
    "backward",
    "clip_grad_norm",
    "forward",
    "gru_readout",
    "gru_step",
    "step_workspace",
]
