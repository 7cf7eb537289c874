"""Recorded partitions: events read ahead of time (a file, a range of a topic), replayed.

A :class:`RecordedPartition` holds one partition's events, parsed once into an
:class:`~pipelines.engine.batches.EventBatch` (a file's rows, or a topic partition's
records decoded by the service's decoder), and :class:`RecordedSource` serves such
partitions to the run loop in micro-batches, with the latest event time as its clock.
Files (:mod:`pipelines.files.source`) and topic ranges (:mod:`pipelines.kafka.topics`)
both make them, and a replay treats them alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.engine.batches import TP, EventBatch
from pipelines.engine.memory import LocalPartitions
from pipelines.engine.ports import Listener


class InputError(ValueError):
    """Recorded input that cannot be replayed; the message names the file, row and column."""


@dataclass(frozen=True)
class Columns:
    """Which columns hold what; ``None`` means "find it by name" (:mod:`pipelines.files`)."""

    time: str | None = None
    value: str | None = None
    series: str | None = None
    covariates: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordedPartition:
    """One partition's recorded events, and where and how they were read.

    ``origin`` is the file's path, or ``<topic>-<partition>`` for a topic's range;
    ``rows`` counts every record read (events and rejected records); ``columns`` are
    the columns (or message fields) the events came from.
    """

    origin: str
    topic: str
    partition: int
    batch: EventBatch
    rows: int
    columns: Columns

    @property
    def name(self) -> str:
        """The file's name (or the topic partition's ``<topic>-<partition>``)."""
        return Path(self.origin).name


class RecordedSource(LocalPartitions):
    """Recorded partitions for the run loop; a poll returns up to ``batch`` events of each.

    ``now`` is the latest event time polled: the replay's clock.
    """

    def __init__(self, partitions: Mapping[TP, EventBatch], batch: int = 2048) -> None:
        super().__init__()
        self.files = dict(partitions)
        self.batch = batch
        self.pos = dict.fromkeys(self.files, 0)  # next event (index)
        self.start_offset = dict.fromkeys(self.files, 0)  # offset after the last polled record
        self.now = 0.0
        self._rej_offsets = {
            tp: np.array([r.record.offset for r in b.rejected], dtype=np.int64)
            for tp, b in self.files.items()
        }

    @classmethod
    def of(cls, parts: list[RecordedPartition], batch: int = 2048) -> RecordedSource:
        """A source of ``parts``, each as partition ``(topic, partition)``."""
        return cls({(p.topic, p.partition): p.batch for p in parts}, batch)

    @property
    def exhausted(self) -> bool:
        """Every record has been returned."""
        return all(self.start_offset[tp] >= b.end for tp, b in self.files.items())

    def clock(self) -> float:
        """The event-time clock (seconds)."""
        return self.now

    def start(self, on_assigned: Listener, on_revoked: Listener) -> None:
        on_assigned(list(self.files))

    def poll(self, timeout_ms: int) -> dict[TP, EventBatch]:
        out: dict[TP, EventBatch] = {}
        for tp, b in self.files.items():
            lo_off = self.start_offset[tp]
            if tp in self.paused or lo_off >= b.end:
                continue
            lo = self.pos[tp]
            hi = min(len(b), lo + self.batch)
            end = int(b.offsets[hi]) if hi < len(b) else b.end
            r = self._rej_offsets[tp]
            rej = b.rejected[int(np.searchsorted(r, lo_off)) : int(np.searchsorted(r, end))]
            part = b.window(lo, hi)
            out[tp] = EventBatch(part.offsets, part.series, part.ts, part.values, part.cov, end,
                                 rej)  # fmt: skip
            if hi > lo:
                self.now = max(self.now, float(part.ts.max()))
            self.pos[tp], self.start_offset[tp] = hi, end
        return out

    def position(self, tp: TP) -> int:
        return self.start_offset[tp]

    def seek(self, tp: TP, offset: int) -> None:
        b = self.files[tp]
        self.pos[tp] = int(np.searchsorted(b.offsets, offset))
        self.start_offset[tp] = offset
