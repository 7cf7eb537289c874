"""Drift detection on a model's own +1 errors: when to retrain before the schedule says so.

:class:`ErrorDrift` watches the absolute +1 error of every forecast a model issued,
scaled by its series' running scale of changes (``|y - yhat| / scale``, capped at
``clip_sigma`` so one wild value moves it a bounded amount), with a one-sided
Page-Hinkley test for an increase of their mean (:mod:`forecaster.core.drift`).

Why Page-Hinkley and not ADWIN: its state is four floats (``[n, mean, g, run]``), so a
snapshot carries it bit for bit and an event costs a few flops; its increments are
relative to the running mean, so one threshold means the same on a stream forecast to
a tenth of its scale and on one forecast to its scale; and it reacts to a lasting
increase within ``threshold / (increase - delta)`` events, while a single spike moves
it by at most ``clip_sigma / mean``. ADWIN keeps a variable number of buckets (a larger,
growing state to snapshot) and tests every split of its window, which costs more per
event than the model's own bookkeeping does on one series; its two-sided test would
also fire when errors fall, which needs no retrain.

Determinism: within a cut of the stream, a model learns events in waves (no series
twice in a wave), not in arrival order. :meth:`ErrorDrift.collect` therefore files each
event's error under its position, and :meth:`ErrorDrift.flush`, called once the cut is
learned, feeds them to the test in arrival order. Cuts cover consecutive events, so the
test sees every event in arrival order whatever the batching, and a model tests it only
at fixed event counts.
"""

from __future__ import annotations

import numpy as np

from forecaster.core import F64Array
from forecaster.core.drift import STATE_SIZE, collect_errors, page_hinkley
from forecaster.core.params import I64Array


class ErrorDrift:
    """Page-Hinkley on scaled absolute +1 errors, fed in arrival order.

    Parameters
    ----------
    threshold
        The statistic at which :attr:`fired` becomes true (units of the mean error).
    delta
        Relative increase of the mean error tolerated without growing the statistic.
    warmup
        Errors observed after a :meth:`reset` before the statistic moves (their mean
        is the norm the next ones are compared with).
    cap
        Largest scaled error counted (a larger one counts as this).

    Examples
    --------
    >>> import numpy as np
    >>> d = ErrorDrift(threshold=3.0, delta=0.1, warmup=4, cap=8.0)
    >>> d.observe(np.ones(4))  # the norm: a mean error of 1
    >>> d.observe(np.full(3, 2.0))  # twice the norm: 2/1 - 1.1, then 2/1.2 - 1.1, ...
    >>> print(round(d.statistic, 4), d.fired)
    1.8667 False
    >>> d.observe(np.full(7, 2.0))  # the norm takes them in too: smaller steps
    >>> d.fired, d.run  # over 3 after 10 events in a row at twice the first norm
    (True, 10)
    >>> d.reset()
    >>> d.statistic
    0.0
    """

    def __init__(self, threshold: float, delta: float, warmup: int, cap: float) -> None:
        self.threshold, self.delta, self.warmup, self.cap = threshold, delta, warmup, cap
        self.state = np.zeros(STATE_SIZE)
        self._buf = np.empty(0)
        self._lo, self._hi = -1, -1  # positions collected since the last flush

    @property
    def statistic(self) -> float:
        """The Page-Hinkley statistic now (0 while errors are at or below their norm)."""
        return float(self.state[2])

    @property
    def norm(self) -> float:
        """The mean scaled error since the last reset."""
        return float(self.state[1])

    @property
    def run(self) -> int:
        """Events since the statistic was last 0: an estimate of how long ago errors rose."""
        return int(self.state[3])

    @property
    def fired(self) -> bool:
        """Whether the statistic is above the threshold."""
        return bool(self.state[2] > self.threshold)

    def reset(self) -> None:
        """Forget everything: the next ``warmup`` errors set a new norm."""
        self.state[:] = 0.0

    def observe(self, xs: F64Array) -> None:
        """Feed scaled errors in order, capped (NaN: no forecast was scored; skipped)."""
        page_hinkley(np.ascontiguousarray(xs, dtype=np.float64), self.cap, self.delta,
                     self.warmup, self.state)  # fmt: skip

    def collect(self, pos: I64Array, errors: F64Array, scale: F64Array) -> None:
        """File the +1 errors ``errors[pos, 0]`` of events scaled by ``scale`` under ``pos``.

        Nothing is tested until :meth:`flush`.
        """
        if pos.size:
            collect_errors(pos, errors, scale, self.reserve(pos))

    def reserve(self, pos: I64Array) -> F64Array:
        """The buffer, grown to hold positions ``pos`` (not empty), which the next flush feeds.

        For a caller that files the errors itself (the compiled event path, in a kernel).
        """
        lo, hi = int(pos.min()), int(pos.max())
        if self._buf.size <= hi:
            grown = np.empty(max(hi + 1, 2 * self._buf.size))
            grown[: self._buf.size] = self._buf
            self._buf = grown
        self._lo = lo if self._lo < 0 else min(self._lo, lo)
        self._hi = max(self._hi, hi)
        return self._buf

    def flush(self) -> None:
        """Feed what :meth:`collect` filed since the last flush, in position order."""
        if self._lo >= 0:
            self.observe(self._buf[self._lo : self._hi + 1])
        self._lo = self._hi = -1
