"""Sources and sinks in memory: tests, replays, and several sinks as one.

:class:`MemorySource` serves messages held in lists, one per partition, all of them
assigned; :class:`ListSink` and :class:`ListDeadLetters` keep what they receive;
:class:`NullStore` keeps no checkpoints (a replay always starts afresh).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from pipelines.engine.batches import TP, ForecastBatch
from pipelines.engine.checkpoint import Checkpoint, CheckpointStore
from pipelines.engine.ports import ForecastSink, Listener
from pipelines.engine.records import Message, Record, Rejected


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


class _InMemory:
    """A sink that keeps what it is given: nothing to flush or release."""

    def flush(self) -> None:
        """Nothing to deliver."""

    def close(self) -> None:
        """Nothing to release."""


class ListSink(_InMemory):
    """Keeps forecast batches in memory; :attr:`messages` encodes them only when read."""

    def __init__(self) -> None:
        self.batches: list[ForecastBatch] = []

    @property
    def messages(self) -> list[tuple[bytes, bytes]]:
        """Every forecast message written, in order (the Kafka topic's (key, value))."""
        return [m for b in self.batches for m in b.messages]

    def write(self, batch: ForecastBatch) -> None:
        self.batches.append(batch)


class ListDeadLetters(_InMemory):
    """Keeps rejected records in memory."""

    def __init__(self) -> None:
        self.rejected: list[Rejected] = []

    def write(self, rejected: Sequence[Rejected]) -> None:
        self.rejected.extend(rejected)


class FanOut:
    """Several forecast sinks as one (each batch is encoded once, by the first that asks)."""

    def __init__(self, sinks: Sequence[ForecastSink]) -> None:
        self.sinks = list(sinks)

    def write(self, batch: ForecastBatch) -> None:
        for sink in self.sinks:
            sink.write(batch)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class NullStore(CheckpointStore):
    """No checkpoints: a replay always starts from a fresh model and keeps nothing."""

    def __init__(self) -> None:
        super().__init__(Path("/nonexistent"))

    def save(self, ckpt: Checkpoint) -> Path:
        return self.path(ckpt.topic, ckpt.partition)

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        return None
