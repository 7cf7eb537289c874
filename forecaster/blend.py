"""The blend: the candidate forecasts a retrain scores, and the mix of them it picks.

Each step's forecast of the change is a mix of candidates (:func:`anchors`): the GRU,
mean reversion to each running level, each season's seasonal naive and, with
``reversal``, the last change undone. A retrain scores every mix of
:func:`blend_combos` on its validation windows (:func:`blend_losses`, one kernel in
:mod:`forecaster.core.blend`) and :func:`pick_blend` chooses, per step, the lightest
mix near the least loss.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from forecaster.config import ForecasterConfig
from forecaster.core import F64Array, Loss
from forecaster.core.blend import mix_losses

__all__ = [  # the blend's API (mix_losses is its kernel, in forecaster.core.blend)
    "BLEND_GRID",
    "BLEND_MEMORY",
    "PAIR_GRID",
    "MixKernel",
    "anchor_columns",
    "anchors",
    "blend_combos",
    "blend_losses",
    "n_anchors",
    "pick_blend",
]

MixKernel = Callable[[F64Array, F64Array, F64Array, F64Array, F64Array, bool, F64Array], None]


def anchors(out: F64Array, x: F64Array, cfg: ForecasterConfig) -> F64Array:
    """The candidate forecasts of the change, per step: ``(..., K, M)``.

    ``out (..., K)`` is the head's output and ``x (..., D)`` the inputs of the same
    event. Candidates: the GRU, then each running level (``level - y``, mean
    reversion), then each season's seasonal-naive change for each step, then with
    ``cfg.reversal`` the last change undone (input 0, the scaled change, negated).
    """
    k = cfg.horizon
    cols = [out]
    first = anchor_columns(cfg)
    lags = k * len(cfg.seasons)
    for j in range(len(cfg.levels)):
        level = -x[..., first + lags + j]
        cols.append(np.repeat(level[..., None], k, axis=-1))
    for i in range(len(cfg.seasons)):
        cols.append(x[..., first + i * k : first + (i + 1) * k])
    if cfg.reversal:
        cols.append(np.repeat(-x[..., 0, None], k, axis=-1))
    return np.stack(cols, axis=-1)


def anchor_columns(cfg: ForecasterConfig) -> int:
    """The first input column of the seasonal-naive changes (then the level deviations)."""
    return 1 + int(cfg.use_dt) + 2 * len(cfg.calendar) + len(cfg.covariates)


def n_anchors(cfg: ForecasterConfig) -> int:
    """How many candidates :func:`anchors` gives."""
    return 1 + len(cfg.levels) + len(cfg.seasons) + int(cfg.reversal)


BLEND_GRID = np.linspace(0.0, 1.0, 21)
PAIR_GRID = np.linspace(0.1, 1.0, 10)  # coarser: pairs are many more than single picks
BLEND_MEMORY = 0.7  # weight of earlier retrains' evidence in the blend's choice


def blend_combos(m: int) -> F64Array:
    """The mixes a blend chooses from, one weight row per mix: ``(C, M)``.

    Each candidate alone at every factor of :data:`BLEND_GRID`, then the GRU with each
    other candidate, both at factors of :data:`PAIR_GRID`: a mix of the GRU and, say, a
    mean reversion often beats either (the two err in different ways).
    """
    single = (BLEND_GRID[:, None, None] * np.eye(m)[None, :, :]).reshape(-1, m)
    pairs = np.zeros((PAIR_GRID.size, m - 1, PAIR_GRID.size, m))
    pairs[..., 0] = PAIR_GRID[:, None, None]
    for j in range(1, m):
        pairs[:, j - 1, :, j] = PAIR_GRID[None, :]
    return np.concatenate([single, pairs.reshape(-1, m)])


def blend_losses(
    cand: F64Array, target: F64Array, weight: F64Array, kind: Loss, kernel: MixKernel = mix_losses
) -> F64Array:
    """Mean loss of every (step, mix): ``(K, C)``, mixes as in :func:`blend_combos`.

    ``cand`` is ``(B, T, K, M)`` (see :func:`anchors`), ``target`` and ``weight``
    ``(B, T, K)``; the loss is the training loss. ``kernel`` computes it
    (:func:`forecaster.core.blend.mix_losses`, or its reference loop).
    """
    k, m = cand.shape[2], cand.shape[3]
    out = np.empty((k, blend_combos(m).shape[0]))
    kernel(
        np.ascontiguousarray(cand.reshape(-1, k, m)), np.ascontiguousarray(target.reshape(-1, k)),
        np.ascontiguousarray(weight.reshape(-1, k)), BLEND_GRID, PAIR_GRID, kind == Loss.MSE, out,
    )  # fmt: skip
    return out


def pick_blend(losses: F64Array, m: int, tolerance: float) -> F64Array:
    """Per step, the lightest mix whose loss is near the least: ``(K, M)`` weights.

    Near means within ``tolerance`` (relative) of the least loss, lightest the smallest
    sum of weights (ties: the lower loss). Validation windows are few and recent: a mix
    that wins there by a hair often loses afterwards, so a near tie goes to the mix
    closer to "no change" (an all-zero row: the last value). NaN losses count as
    infinite.
    """
    combos = blend_combos(m)
    heft = np.abs(combos).sum(axis=1)
    picked = np.empty((losses.shape[0], m))
    for j, row in enumerate(np.where(np.isnan(losses), np.inf, losses)):
        near = np.flatnonzero(row <= row.min() * (1.0 + tolerance))
        lightest = near[heft[near] == heft[near].min()]
        picked[j] = combos[lightest[np.argmin(row[lightest])]]
    return picked
