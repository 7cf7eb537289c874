"""Anomalies from the forecast bands: each event judged by the forecasts issued for it.

An event's value is judged against the forecasts issued for it at the steps
``anomaly_steps`` of :class:`forecaster.ForecasterConfig` (1: the forecast issued one
event before). Its error there, in units of that forecast's interval half-width
(``z = |value - yhat| / half``), is placed in the model's own distribution of such
errors at that step, pooled over its series (every series in units of its own band):

- the **score** is one minus the conformal p-value of ``z`` among the past ones,
  ``1 - (1 + #{past z' >= z}) / (1 + #past)``, with counts that forget with a halflife
  of ``anomaly_memory`` scored forecasts: near 1 for an error few past ones reached;
- the **anomaly band** is ``yhat ± zq * half``, ``zq`` the smallest ``z`` whose score
  reaches ``anomaly_level`` (99.9% by default: not the interval's 90%, which by design
  leaves one event in ten outside). A value outside it is **flagged**, once the series
  has ``anomaly_min_scored`` scored forecasts at that step, so a cold series does not
  cry wolf (nor do its errors, in units of a scale it barely knows, join the counts).
  An error beyond the band is counted at most :data:`BEYOND` times the band's width, so
  a few anomalies widen the band by no more than that factor (not to their own size,
  which would hide the next), while a lasting rate of them above ``1 - anomaly_level``
  widens it by that factor every commit until it fits.
  While fewer than ``1 / (1 - anomaly_level)`` errors are counted, no score
  can reach the level and nothing is flagged.

An event judged at several steps is flagged only when it is outside the band of every
forecast issued for it, and reports the step of least score: its weakest evidence. So
the way back from a spike, which the forecast issued after the spike finds far off but
one issued before it finds normal, is not flagged with ``anomaly_steps = [1, 2]``.
Judging changes no forecast: the model learns the value as any other. The counts (a
histogram over a fixed geometric grid of ``z``, :mod:`forecaster.core.anomaly`) join the
distribution every ``interval_block`` events, when the intervals move too, so results
do not depend on batching, and a snapshot carries them bit for bit.

Examples
--------
>>> import numpy as np
>>> from forecaster import LastValue
>>> model = LastValue(horizon=1)
>>> rng = np.random.default_rng(0)
>>> y = np.cumsum(rng.normal(size=3000))
>>> y[2500] += 40.0  # a spike
>>> upd = model.learn(["s"] * 3000, np.arange(3000.0), y)
>>> np.flatnonzero(upd.anomaly.flag).tolist()  # the spike, and the way back from it
[2500, 2501]
>>> round(float(upd.anomaly.score[2500]), 4), int(upd.anomaly.step[2500])
(0.9995, 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecaster.core.anomaly import commit_tails, judge
from forecaster.core.params import F64Array, I64Array

# A call's judgement arrays, filled wave by wave: flag, score, step, band (3, m).
Judged = tuple[np.ndarray, F64Array, I64Array, F64Array]

# The grid of z (errors in half-widths): 0, then 16 bins a decade from 1e-3 to 1e6
# (bins 15% wide, finer than any level's estimate needs), then one open-ended bin.
EDGES = np.concatenate([[0.0], np.logspace(-3.0, 6.0, 9 * 16 + 1), [math.inf]])
# An error beyond the anomaly band is counted at most this many times its width.
BEYOND = 2.0


@dataclass(frozen=True)
class Judgement:
    """Each event's judgement, one entry per row of an :class:`~forecaster.Update`.

    ``flag``: outside the anomaly band; ``score``: 1 minus the conformal p-value of
    its error (NaN where no forecast was judged); ``step``: the step it was judged at
    (0: none); ``yhat``, ``lower``, ``upper``: that step's forecast and anomaly band.
    """

    flag: np.ndarray
    score: F64Array
    step: I64Array
    yhat: F64Array
    lower: F64Array
    upper: F64Array

    @staticmethod
    def buffers(m: int) -> Judged:
        """Arrays for ``m`` events, none judged yet (see :meth:`AnomalyJudge.judge`)."""
        nan = np.full(m, math.nan)
        return np.zeros(m, bool), nan, np.zeros(m, np.int64), np.full((3, m), math.nan)

    @staticmethod
    def of(judged: Judged) -> Judgement:
        """The judgement of filled buffers."""
        flag, score, step, band = judged
        return Judgement(flag, score, step, band[0], band[1], band[2])

    @staticmethod
    def concat(parts: Sequence[Judgement]) -> Judgement:
        """One judgement of several, rows in order."""

        def cat(name: str) -> Any:
            return np.concatenate([getattr(p, name) for p in parts])

        return Judgement(cat("flag"), cat("score"), cat("step"), cat("yhat"), cat("lower"),
                         cat("upper"))  # fmt: skip


class AnomalyJudge:
    """The error distributions of a model, per judged step, and the judging of waves.

    Parameters
    ----------
    steps
        Steps judged (1-based); empty: nothing judged.
    level
        Score from which an event is outside the anomaly band.
    min_scored
        Scored forecasts a series needs at a step before it can be flagged there.
    memory
        Halflife of the counts, in scored forecasts (over all series) per step.
    block
        Events between two commits of the counts.
    """

    def __init__(self, steps: Sequence[int], level: float, min_scored: int, memory: float,
                 block: int) -> None:  # fmt: skip
        self.steps = np.array([s - 1 for s in steps], dtype=np.int64)
        self.level, self.min_scored = level, min_scored
        self.decay = 0.5 ** (block / memory)
        n = (len(steps), EDGES.size - 1)
        self.hist, self.pending, self.tails = np.zeros(n), np.zeros(n), np.zeros(n)
        self.zq = np.full(len(steps), math.inf)

    def judge(self, rows: I64Array, pos: I64Array, count: I64Array, errors: F64Array,
              pend_yhat: F64Array, pend_half: F64Array, out: Judged) -> None:  # fmt: skip
        """Judge a wave's events into their rows ``pos`` of ``out`` (see :func:`judge`)."""
        judge(rows, pos, count, errors, pend_yhat, pend_half, self.steps, EDGES, self.tails,
              self.zq, self.min_scored, BEYOND, self.pending, *out)  # fmt: skip

    def commit(self) -> None:
        """Fold the counts since the last commit into the distributions."""
        if self.steps.size:
            commit_tails(self.pending, self.hist, self.decay, self.level, EDGES, self.tails,
                         self.zq)  # fmt: skip

    @property
    def state(self) -> dict[str, np.ndarray]:
        """Arrays a snapshot carries."""
        return {"hist": self.hist, "pending": self.pending, "tails": self.tails, "zq": self.zq}

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        """Take the arrays of :attr:`state` (missing ones: a snapshot from before anomalies)."""
        for name, arr in arrays.items():
            if getattr(self, name).shape == arr.shape:
                setattr(self, name, arr.copy())
