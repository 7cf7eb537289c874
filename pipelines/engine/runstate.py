"""The run loop's settings and clocks, and the counters of what it did."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LoopSettings:
    """How often to checkpoint, and how long a poll may wait for records."""

    every_events: int = 20_000
    every_seconds: float = 30.0
    poll_timeout_ms: int = 200
    # After a sink failure: the first pause before reading again, doubled up to the last.
    backoff_seconds: tuple[float, float] = (0.5, 30.0)
    # A checkpoint that cannot be used: "fail" (stop, naming the file), or "start_fresh"
    # (set the file aside as <name>.bad-N and start the partition with a new model).
    on_bad_checkpoint: str = "fail"


@dataclass(frozen=True)
class Clocks:
    """The loop's clocks: wall time (checkpoints, ``issued_at``), intervals, and sleeping.

    A replay runs on event time (both clocks are the latest event's time); tests pass
    fake ones.
    """

    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


@dataclass
class LoopStats:
    """Counters of everything the loop did (read by metrics and reports)."""

    polls: int = 0
    records: int = 0
    events: int = 0
    forecasts: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    checkpoints: int = 0
    commits: int = 0
    restored: int = 0
    sink_failures: int = 0  # each one sent every partition back to its latest checkpoint
    bad_checkpoints: int = 0  # set aside, their partitions started afresh
    restore_seconds: float = 0.0  # spent loading and restoring the ``restored`` ones
    # Partitions with no checkpoint whose group had committed an offset: state was lost.
    state_missing: int = 0
    last_checkpoint: float = 0.0  # wall clock
