"""One input partition's work: its own model, its next offset, and events waiting for it.

Each partition has its own :class:`~forecaster.OnlineForecaster`. A partition is a totally
ordered stream, so its model's outputs are a pure function of its records: a replay of
the partition gives the same forecasts, and when the group rebalances the partition's
state moves whole (through its checkpoint) with it. A series lives in one partition
because messages are keyed by series.

Records arrive either as Kafka messages, decoded here into an
:class:`~pipelines.engine.records.EventBatch`, or already as columns (a file source), and are
learned the same way from then on: one ``model.learn`` call per batch of the backlog.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence

import numpy as np

from forecaster import OnlineForecaster
from pipelines.engine.records import OUT_OF_ORDER, Decoder, EventBatch, Record, Rejected
from pipelines.engine.sinks import ForecastBatch

log = logging.getLogger(__name__)


class Backlog:
    """Events waiting to be learned, and the rejected records among them, in offset order."""

    def __init__(self) -> None:
        self.chunks: deque[EventBatch] = deque()
        self.rejected: deque[Rejected] = deque()
        self.events = 0
        self.end: int | None = None  # the offset after the last record queued

    def __bool__(self) -> bool:
        return bool(self.chunks) or bool(self.rejected)

    def __len__(self) -> int:
        return self.events + len(self.rejected)

    def clear(self) -> None:
        """Forget everything queued (a revoked partition: its next owner re-reads it)."""
        self.chunks.clear()
        self.rejected.clear()
        self.events = 0
        self.end = None

    def push(self, batch: EventBatch) -> None:
        """Queue a batch (its events and its rejected records)."""
        if len(batch):
            self.chunks.append(batch)
            self.events += len(batch)
        self.rejected.extend(batch.rejected)
        self.end = batch.end

    def first_offset(self) -> int | None:
        """The offset of the first record queued (None: nothing is)."""
        heads = [int(self.chunks[0].offsets[0])] if self.chunks else []
        if self.rejected:
            heads.append(self.rejected[0].record.offset)
        return min(heads) if heads else None

    def upcoming_ts(self) -> np.ndarray:
        """The times of the queued events, in order."""
        return np.concatenate([c.ts for c in self.chunks]) if self.chunks else np.zeros(0)

    def take(self, limit: int | None) -> tuple[EventBatch | None, list[Rejected], int]:
        """Up to ``limit`` events and the rejected records before the next event left.

        Also returns the offset after everything returned: the partition's next offset.
        """
        parts: list[EventBatch] = []
        want = self.events if limit is None else min(limit, self.events)
        got = 0
        while got < want:
            head = self.chunks[0]
            if len(head) <= want - got:
                parts.append(self.chunks.popleft())
                got += len(head)
            else:
                cut = want - got
                parts.append(head.window(0, cut))
                self.chunks[0] = head.window(cut, len(head))
                got = want
        self.events -= got
        assert self.end is not None
        boundary = int(self.chunks[0].offsets[0]) if self.chunks else self.end
        rejected = []
        while self.rejected and self.rejected[0].record.offset < boundary:
            rejected.append(self.rejected.popleft())
        return (EventBatch.concat(parts) if parts else None), rejected, boundary


class PartitionTask:
    """Feeds a partition's events to its model, never waiting on a retrain."""

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
        self.backlog = Backlog()
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
        return self.backlog.first_offset()

    def add(self, records: Sequence[Record] | EventBatch) -> None:
        """Queue records (decoded here) or an event batch.

        Records at or before one already queued or processed are skipped: a client may
        return records again around a seek or a rebalance, and learning one twice would
        drop the rest of its series as late.
        """
        start = self.next_offset if self.backlog.end is None else self.backlog.end
        if isinstance(records, EventBatch):
            batch = records if start is None else records.since(start)
        else:
            recs = []
            for rec in records:  # in offset order, each offset once
                if start is None or rec.offset >= start:
                    recs.append(rec)
                    start = rec.offset + 1
            if not recs:
                return
            batch = self.decoder.decode_batch(recs)
        if len(batch) or batch.rejected:
            self.backlog.push(batch)

    def process(self) -> tuple[ForecastBatch | None, list[Rejected]]:
        """Learn as much of the backlog as can be learned without waiting for a retrain.

        Returns the forecasts of the accepted events and the rejected records. Records
        from the first event that would wait on stay in the backlog.
        """
        if not self.backlog or self.model.events_before_wait() == 0:
            return None, []
        # The events' times matter only to a schedule in event time (retrain_interval).
        upcoming = self.backlog.upcoming_ts() if self.model.cfg.retrain_interval > 0 else None
        limit = self.model.events_before_wait(upcoming)
        first = self.backlog.first_offset()
        ev, rejected, next_offset = self.backlog.take(limit)
        taken = (len(ev) if ev is not None else 0) + len(rejected)
        if taken == 0:
            return None, []
        batch = None
        if ev is not None:
            cov = ev.cov if ev.cov.shape[1] else None
            failed = self.model.retrains_failed
            upd = self.model.learn(ev.series, ev.ts, ev.values, cov)
            if self.model.retrains_failed != failed:  # the stream goes on with the old weights
                log.error("%s[%d]: a retrain failed; the weights stay as they were.\n%s",
                          self.topic, self.partition, self.model.last_retrain_error)  # fmt: skip
            ok = upd.accepted
            late = np.flatnonzero(~ok)
            if late.size:
                for i in late.tolist():
                    rej = Rejected(
                        ev.record(i, self.topic, self.partition, self.decoder.features),
                        OUT_OF_ORDER,
                        f"ts {ev.ts[i]:.3f} is older than series {ev.series[i][:40]!r}'s "
                        "latest event",
                    )
                    rejected.append(rej)
                rejected.sort(key=lambda r: r.record.offset)
            offsets = ev.offsets if not late.size else ev.offsets[ok]
            batch = ForecastBatch(
                self.topic, self.partition, offsets,
                upd.series, upd.ts, upd.value, upd.step_ts, upd.yhat, upd.lower, upd.upper,
                upd.model_version, upd.errors, upd.covered,
            )  # fmt: skip
        if self.start_offset is None:
            self.start_offset = first
        self.next_offset = next_offset
        self.events_since_save += taken
        return batch, rejected
