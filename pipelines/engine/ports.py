"""Where records come from and where forecasts go: the protocols the run loop talks to.

A source (Kafka's consumer group, a memory source, recorded partitions) gives the loop
batches of records per partition, assignment callbacks, seeking, pausing and
committing; sinks take forecast batches and rejected records. The loop never knows
which ones it has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from pipelines.engine.batches import TP, ForecastBatch, Polled
from pipelines.engine.records import Rejected

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


@runtime_checkable
class CommittedOffsets(Protocol):
    """A source that knows its group's committed offsets (a consumer group does)."""

    def group_committed(self, tp: TP) -> int | None:
        """The group's committed offset of ``tp`` (None: it never committed one)."""


class SinkError(RuntimeError):
    """A sink could not make its output durable (for example the broker is away).

    The run loop answers by going back to the last checkpoint: nothing after it has been
    committed, so the forecasts not delivered are issued again.
    """


class ForecastSink(Protocol):
    """Receives forecasts and encodes what it writes; ``flush`` returns once it is durable."""

    def write(self, batch: ForecastBatch) -> None:
        """Take a batch (``batch.messages`` holds it in the wire format, encoded once)."""

    def flush(self) -> None:
        """Block until written forecasts are delivered; raise if any was not."""

    def close(self) -> None:
        """Flush and release resources."""


class DeadLetterSink(Protocol):
    """Receives rejected records."""

    def write(self, rejected: Sequence[Rejected]) -> None:
        """Take rejected records."""

    def flush(self) -> None:
        """Block until they are delivered."""

    def close(self) -> None:
        """Flush and release resources."""
