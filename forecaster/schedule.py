"""When a model retrains: the schedule and the drift trigger, in event terms.

Everything is decided at fixed counts of events (and, with ``retrain_interval``, at the
first event past a time), never by how events were grouped into calls: the model cuts
its work where :meth:`RetrainSchedule.limit` says, and asks :meth:`RetrainSchedule.due`
at the end of each cut.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from forecaster.config import ForecasterConfig
from forecaster.core import F64Array
from forecaster.drift import ErrorDrift

# Why a retrain started: the first early one, the schedule, the drift detector, or a
# call of retrain_now() (the service's warm-up, a user).
REASONS = ("first", "schedule", "drift", "manual")


class RetrainSchedule:
    """The triggers of ``cfg.retrain_on`` and what they remember between retrains.

    Examples
    --------
    >>> from forecaster import ForecasterConfig
    >>> s = RetrainSchedule(ForecasterConfig(retrain_every=500, first_retrain=100))
    >>> s.next_due(0), s.next_due(500)  # a grid of retrain_every events
    (500, 1000)
    >>> s.due(100, 0.0), s.due(101, 0.0), s.due(500, 0.0), s.due(500, 0.0, enabled=False)
    ('first', None, 'schedule', None)
    """

    def __init__(self, cfg: ForecasterConfig) -> None:
        self.cfg = cfg
        on = cfg.retrain_on
        # The schedule's settings count only when the schedule is a trigger.
        self.every = cfg.retrain_every if "schedule" in on else 0
        self.interval = cfg.retrain_interval if "schedule" in on else 0.0
        self.drift = (ErrorDrift(cfg.drift_threshold, cfg.drift_delta, cfg.drift_warmup,
                                 cfg.clip_sigma) if "drift" in on else None)  # fmt: skip
        self.next_time = -math.inf  # event time of the next time-triggered retrain
        self.last_start = -1  # event count at which the latest retrain started
        self.stretch = 0  # scheduled retrains in a row (with drift: each doubles the wait)

    def next_due(self, n: int) -> int:
        """The event count after ``n`` at which the count schedule starts a retrain (0: never).

        A grid of ``retrain_every`` events. With the drift trigger too, the grid counts
        from the latest retrain's start, so the schedule is the longest wait, and with
        ``retrain_every_max`` that wait doubles with each retrain the schedule started
        in a row, up to it.
        """
        every = self.every
        if not every:
            return 0
        if self.drift is None:
            return every * (n // every + 1)
        most = self.cfg.retrain_every_max
        if most:
            every = min(every * 2 ** min(self.stretch, 62), most)
        anchor = max(self.last_start, 0)
        return anchor + every * ((n - anchor) // every + 1)

    def next_check(self, n: int) -> int:
        """The event count after ``n`` at which a drift may start a retrain (0: never)."""
        if self.drift is None:
            return 0
        earliest = n + 1
        if self.last_start >= 0:
            earliest = max(earliest, self.last_start + self.cfg.drift_min_spacing)
        c = self.cfg.drift_check
        return -(-earliest // c) * c

    def limit(self, n: int, ts: F64Array, idle: bool) -> int:
        """Events from ``n`` on, of times ``ts``, up to the next point a retrain may start.

        ``idle``: no retrain is in flight (only then do the drift test and the clock count).
        """
        limit = int(ts.shape[0])
        due = self.next_due(n)
        if due:
            limit = min(limit, due - n)
        if self.cfg.first_retrain > n:
            limit = min(limit, self.cfg.first_retrain - n)
        if idle:
            check = self.next_check(n)
            if check:
                limit = min(limit, check - n)
            if self.interval > 0:
                due_t = np.flatnonzero(ts >= self.next_time)
                if due_t.size:
                    limit = min(limit, int(due_t[0]) + 1)
        return limit

    def until_start(self, n: int, ts: F64Array | None) -> float:
        """Events to learn from ``n`` until the one that starts the next retrain (inf: none).

        Without ``ts`` a time-triggered retrain is assumed due at once; the drift trigger
        is assumed to fire at its next test.
        """
        start = math.inf
        for due in (self.next_due(n), self.next_check(n)):
            if due:
                start = min(start, due - n)
        if self.cfg.first_retrain > n:
            start = min(start, self.cfg.first_retrain - n)
        if self.interval > 0:
            due_t = np.flatnonzero(ts >= self.next_time) if ts is not None else np.zeros(1)
            if due_t.size:
                start = min(start, int(due_t[0]) + 1)
        return start

    def due(self, n: int, last_ts: float, enabled: bool = True) -> str | None:
        """The reason a retrain starts at the end of this cut, or ``None``.

        Called at the end of each cut with no retrain in flight: ``n`` events learned,
        the last at ``last_ts``. The clock of ``retrain_interval`` starts at the first
        call, ``enabled`` or not (``False``: retraining is off, nothing starts).
        """
        cfg = self.cfg
        if self.next_time == -math.inf and self.interval > 0:
            self.next_time = last_ts + self.interval
        if not enabled:
            return None
        first = cfg.first_retrain > 0 and n == cfg.first_retrain
        by_count = first or (bool(self.every) and self.next_due(n - 1) == n)
        by_time = self.interval > 0 and last_ts >= self.next_time
        drift = self.drift is not None and n % cfg.drift_check == 0 and self.drift.fired
        drift = drift and (self.last_start < 0 or n - self.last_start >= cfg.drift_min_spacing)
        if not (by_count or by_time or drift):
            return None
        if self.interval > 0:
            self.next_time = last_ts + self.interval
        return "first" if first else "schedule" if by_count or by_time else "drift"

    def started(self, n: int, reason: str) -> None:
        """A retrain started at event count ``n`` for ``reason``."""
        self.last_start = n
        self.stretch = self.stretch + 1 if reason == "schedule" else 0

    # --- snapshots --------------------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays and JSON fields that :meth:`load` restores bit for bit."""
        arrays = {"drift": self.drift.state} if self.drift is not None else {}
        meta = {"next_time": self.next_time, "last_start": self.last_start,
                "stretch": self.stretch}  # fmt: skip
        return arrays, meta

    def load(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Restore :meth:`state` (snapshots from before the drift trigger have no detector)."""
        self.next_time = meta["next_time"]
        self.last_start, self.stretch = meta.get("last_start", -1), meta.get("stretch", 0)
        if self.drift is not None and "drift" in arrays:
            self.drift.state[:] = arrays["drift"]
