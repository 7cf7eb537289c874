"""One input partition's work: its own model, its next offset, and events waiting for it.

Each partition has its own :class:`~forecaster.OnlineForecaster`. A partition is a totally
ordered stream, so its model's outputs are a pure function of its records: a replay of
the partition gives the same forecasts, and when the group rebalances the partition's
state moves whole (through its checkpoint) with it. A series lives in one partition
because messages are keyed by series.

Records arrive either as Kafka messages, decoded here into an
:class:`~pipelines.engine.batches.EventBatch`, or already as columns (a file source), and are
learned the same way from then on: one ``model.learn`` call per batch of the backlog.
The task reports what the model did about retraining in that call (:class:`RetrainNews`),
which the loop passes on to its observer.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forecaster import OnlineForecaster
from forecaster.core import F64Array
from forecaster.stream import Update
from pipelines.engine.batches import EventBatch, ForecastBatch
from pipelines.engine.decode import Decoder
from pipelines.engine.records import OUT_OF_ORDER, Record, Rejected

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


@dataclass(frozen=True)
class RetrainNews:
    """What a partition's model did about retraining, as its task saw it.

    ``started`` retrains began in a batch, and ``accepted``, ``rejected`` and ``failed``
    ones ended there (their weights taken, refused, or the retrain raised); ``training``
    says whether one is still training in the background after it. News with nothing
    started or ended and ``training`` False, after news with it True, is a background
    retrain seen finished. ``by_reason`` splits the same counts by what started each
    retrain (``forecaster.schedule.REASONS``): ``(event, reason) -> count``, where the event
    is ``"started"`` or the outcome.
    """

    started: int = 0
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    training: bool = False
    by_reason: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def __add__(self, later: RetrainNews) -> RetrainNews:
        """Both batches' news, ``training`` as the later one says."""
        merged = Counter(self.by_reason)
        merged.update(later.by_reason)
        return RetrainNews(
            self.started + later.started, self.accepted + later.accepted,
            self.rejected + later.rejected, self.failed + later.failed, later.training,
            dict(merged),
        )  # fmt: skip


def _outcome(entry: Mapping[str, Any]) -> str:
    """How a retrain of the model's ``retrain_log`` ended."""
    if entry["failed"]:
        return "failed"
    return "accepted" if entry["accepted"] else "rejected"


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
        self.training = False  # a retrain it saw start is still training (as last reported)
        self.model_id: str | None = None  # the model file its model started from, if any
        self._news: RetrainNews | None = None

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
            upd = self._learn(ev.series, ev.ts, ev.values, cov)
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
            batch = ForecastBatch(self.topic, self.partition, offsets, upd,
                                  model_id=self.model_id)  # fmt: skip
        if self.start_offset is None:
            self.start_offset = first
        self.next_offset = next_offset
        self.events_since_save += taken
        return batch, rejected

    def _learn(self, series: list[str], ts: F64Array, values: F64Array,
               cov: F64Array | None) -> Update:  # fmt: skip
        """``model.learn``, noting the retrains it started and ended (:class:`RetrainNews`)."""
        m = self.model
        before = (m.retrains_started, m.retrains_accepted, m.retrains_rejected, m.retrains_failed)
        reasons_before, logged = dict(m.retrains_by_reason), len(m.retrain_log)
        upd = m.learn(series, ts, values, cov)
        started, accepted, rejected, failed = (
            now - then
            for now, then in zip(
                (m.retrains_started, m.retrains_accepted, m.retrains_rejected, m.retrains_failed),
                before,
                strict=True,
            )
        )
        if failed:  # the stream goes on with the old weights
            log.error("%s[%d]: a retrain failed; the weights stay as they were.\n%s",
                      self.topic, self.partition, m.last_retrain_error)  # fmt: skip
        training = m.retrain_running
        if started or accepted or rejected or failed or training != self.training:
            by_reason = Counter({("started", k): v - reasons_before.get(k, 0)
                                 for k, v in m.retrains_by_reason.items()})  # fmt: skip
            by_reason.update((_outcome(e), e["reason"]) for e in m.retrain_log[logged:])
            news = RetrainNews(started, accepted, rejected, failed, training,
                               {k: v for k, v in by_reason.items() if v})  # fmt: skip
            # Not taken yet: both batches' news.
            self._news = news if self._news is None else self._news + news
        return upd

    def retrain_news(self) -> RetrainNews | None:
        """What retraining did since the last call: a batch's news, or a retrain finished.

        A retrain training in the background is seen finished at the first call after
        its thread ends.
        """
        news, self._news = self._news, None
        if news is None and self.training and not self.model.retrain_running:
            news = RetrainNews()
        if news is not None:
            self.training = news.training
        return news
