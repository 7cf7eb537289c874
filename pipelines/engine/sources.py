"""Where records come from: the protocol the run loop reads, and an in-memory source.

The Kafka source (:mod:`pipelines.kafka.source`) and :class:`MemorySource` (replays, tests)
give the loop the same things: batches of records per partition, assignment callbacks,
seeking, pausing and committing. The loop never knows which one it has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from pipelines.engine.records import EventBatch, Message, Record

TP = tuple[str, int]  # (topic, partition); kafka-python's TopicPartition is one
# What a poll gives per partition: messages (decoded by the partition's task), or events
# already in columns (a file source: no message per row).
Polled = Sequence[Record] | EventBatch
Listener = Callable[[list[TP]], None]


class Source(Protocol):
    """Records in, offsets committed."""

    def start(self, on_assigned: Listener, on_revoked: Listener) -> None:
        """Begin; the callbacks run inside :meth:`poll` when partitions move."""

    def poll(self, timeout_ms: int) -> Mapping[TP, Polled]:
        """Records (or event batches) of unpaused partitions, in offset order per partition."""

    def position(self, tp: TP) -> int:
        """The offset the next record of ``tp`` will have."""

    def seek(self, tp: TP, offset: int) -> None:
        """Read ``tp`` from ``offset`` next."""

    def pause(self, tps: Sequence[TP]) -> None:
        """Stop returning records of ``tps`` (membership stays alive)."""

    def resume(self, tps: Sequence[TP]) -> None:
        """Return records of ``tps`` again."""

    def commit(self, offsets: dict[TP, int], wait: bool = True) -> bool:
        """Record the next offset to read of each partition; True once confirmed.

        ``wait=False`` is used inside rebalance callbacks, where a client may not block:
        the commit is sent and not confirmed (False). A failed commit returns False;
        the offsets are in the checkpoints, and the loop commits them again later.
        """

    def close(self) -> None:
        """Leave the group and release resources."""


class LocalPartitions:
    """Pausing and committing for a source whose partitions are all local (no broker)."""

    def __init__(self) -> None:
        self.paused: set[TP] = set()
        self.committed: dict[TP, int] = {}

    def pause(self, tps: Sequence[TP]) -> None:
        """Stop returning records of ``tps``."""
        self.paused.update(tps)

    def resume(self, tps: Sequence[TP]) -> None:
        """Return records of ``tps`` again."""
        self.paused.difference_update(tps)

    def commit(self, offsets: dict[TP, int], wait: bool = True) -> bool:
        """Remember the offsets (confirmed at once, unless sent from a callback)."""
        self.committed.update(offsets)
        return wait

    def close(self) -> None:
        """Nothing to release."""


class MemorySource(LocalPartitions):
    """Records held in memory, one partition each list; the whole of it is assigned.

    ``exhausted`` turns True once every partition has been read to its end.
    """

    def __init__(self, partitions: dict[TP, Sequence[Record]], batch: int = 1000) -> None:
        super().__init__()
        self.partitions = {tp: list(recs) for tp, recs in partitions.items()}
        self.batch = batch
        self.pos = {tp: 0 for tp in self.partitions}

    @classmethod
    def from_values(
        cls, topic: str, values: Iterable[tuple[bytes | None, bytes]], batch: int = 1000
    ) -> MemorySource:
        """One partition of (key, value) pairs, offsets from 0."""
        recs = [Message(topic, 0, i, k, v) for i, (k, v) in enumerate(values)]
        return cls({(topic, 0): recs}, batch)

    @property
    def exhausted(self) -> bool:
        """Every record has been returned."""
        return all(self.pos[tp] >= len(r) for tp, r in self.partitions.items())

    def start(self, on_assigned: Listener, on_revoked: Listener) -> None:
        on_assigned(list(self.partitions))

    def poll(self, timeout_ms: int) -> dict[TP, list[Record]]:
        out: dict[TP, list[Record]] = {}
        for tp, recs in self.partitions.items():
            if tp in self.paused or self.pos[tp] >= len(recs):
                continue
            start = self.pos[tp]
            out[tp] = recs[start : start + self.batch]
            self.pos[tp] = start + len(out[tp])
        return out

    def position(self, tp: TP) -> int:
        recs = self.partitions[tp]
        return recs[self.pos[tp]].offset if self.pos[tp] < len(recs) else self._end(tp)

    def _end(self, tp: TP) -> int:
        recs = self.partitions[tp]
        return recs[-1].offset + 1 if recs else 0

    def seek(self, tp: TP, offset: int) -> None:
        recs = self.partitions[tp]
        self.pos[tp] = next((i for i, r in enumerate(recs) if r.offset >= offset), len(recs))
