"""One input partition's work: its own model, its next offset, and records waiting for it.

Each partition has its own :class:`~forecaster.OnlineForecaster`. A partition is a totally
ordered stream, so its model's outputs are a pure function of its records: a replay of
the partition gives the same forecasts, and when the group rebalances the partition's
state moves whole (through its checkpoint) with it. A series lives in one partition
because messages are keyed by series.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import numpy as np

from forecaster import OnlineForecaster
from pipelines.records import OUT_OF_ORDER, Decoder, Record, Rejected
from pipelines.sinks import ForecastBatch


class PartitionTask:
    """Feeds a partition's records to its model, never waiting on a retrain."""

    def __init__(
        self,
        topic: str,
        partition: int,
        model: OnlineForecaster,
        next_offset: int | None,
        decoder: Decoder,
    ) -> None:
        self.topic, self.partition = topic, partition
        self.model = model
        self.next_offset = next_offset  # None: not known until the first record
        self.decoder = decoder
        self.backlog: deque[Record] = deque()
        self.saved_offset = next_offset  # the offset in the latest checkpoint
        self.start_offset = next_offset  # where this task began reading
        self.committed_offset: int | None = None  # the latest offset Kafka confirmed
        self.events_since_save = 0

    @property
    def dirty(self) -> bool:
        """Records were processed since the latest checkpoint."""
        return self.next_offset != self.saved_offset

    @property
    def restart_offset(self) -> int | None:
        """Where to read again to redo everything since the latest checkpoint."""
        if self.saved_offset is not None:
            return self.saved_offset
        if self.start_offset is not None:
            return self.start_offset
        return self.backlog[0].offset if self.backlog else None

    def add(self, records: Iterable[Record]) -> None:
        """Queue records in offset order, skipping any already queued or processed.

        A client may return records again around a seek or a rebalance, and learning
        one twice would drop the rest of its series as late.
        """
        expected = self.backlog[-1].offset + 1 if self.backlog else self.next_offset
        for rec in records:
            if expected is None or rec.offset >= expected:
                self.backlog.append(rec)
                expected = rec.offset + 1

    def process(self) -> tuple[ForecastBatch | None, list[Rejected]]:
        """Learn as much of the backlog as can be learned without waiting for a retrain.

        Returns the forecasts of the accepted events and the rejected records. Records
        from the first event that would wait on stay in the backlog.
        """
        if not self.backlog or self.model.events_before_wait() == 0:
            return None, []
        dec = self.decoder.decode(list(self.backlog))
        ts, values, cov = dec.arrays(len(self.decoder.features))
        limit = self.model.events_before_wait(ts)
        end = None  # the offset of the first record left for later
        if limit is not None and limit < len(dec.records):
            end = dec.records[limit].offset
            ts, values, cov = ts[:limit], values[:limit], cov[:limit]
            del dec.records[limit:], dec.series[limit:]
            dec.rejected = [r for r in dec.rejected if r.record.offset < end]
        first = self.backlog[0].offset
        taken = 0
        while self.backlog and (end is None or self.backlog[0].offset < end):
            last = self.backlog.popleft()
            taken += 1
        if taken == 0:
            return None, []
        rejected = dec.rejected
        batch = None
        if dec.records:
            upd = self.model.learn(dec.series, ts, values, cov if cov.shape[1] else None)
            ok = upd.accepted
            for i in np.flatnonzero(~ok).tolist():
                rejected.append(Rejected(
                    dec.records[i], OUT_OF_ORDER,
                    f"ts {ts[i]:.3f} is older than series {dec.series[i][:40]!r}'s latest event",
                ))  # fmt: skip
            rejected.sort(key=lambda r: r.record.offset)
            kept = np.flatnonzero(ok)
            batch = ForecastBatch(
                self.topic, self.partition,
                np.array([dec.records[i].offset for i in kept.tolist()], dtype=np.int64),
                upd.series, upd.ts, upd.value, upd.step_ts, upd.yhat, upd.lower, upd.upper,
                upd.model_version, upd.errors, upd.covered,
            )  # fmt: skip
        if self.start_offset is None:
            self.start_offset = first
        self.next_offset = last.offset + 1
        self.events_since_save += taken
        return batch, rejected
