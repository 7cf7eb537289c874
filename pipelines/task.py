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
        self.events_since_save = 0

    @property
    def dirty(self) -> bool:
        """Records were processed since the latest checkpoint."""
        return self.next_offset != self.saved_offset

    def add(self, records: Iterable[Record]) -> None:
        """Queue records; ones before the next offset (already processed) are skipped."""
        for rec in records:
            if self.next_offset is None or rec.offset >= self.next_offset:
                self.backlog.append(rec)

    def process(self) -> tuple[ForecastBatch | None, list[Rejected]]:
        """Learn as much of the backlog as can be learned without waiting for a retrain.

        Returns the forecasts of the accepted events and the rejected records.
        """
        limit = self.model.events_before_wait()
        take = len(self.backlog) if limit is None else min(limit, len(self.backlog))
        if take == 0:
            return None, []
        recs = [self.backlog.popleft() for _ in range(take)]
        dec = self.decoder.decode(recs)
        rejected = dec.rejected
        batch = None
        if dec.records:
            ts, values, cov = dec.arrays(len(self.decoder.features))
            upd = self.model.learn(dec.series, ts, values, cov if cov.shape[1] else None)
            ok = upd.accepted
            for i in np.flatnonzero(~ok).tolist():
                rejected.append(Rejected(
                    dec.records[i], OUT_OF_ORDER,
                    f"ts {ts[i]:.3f} is older than series {dec.series[i][:40]!r}'s latest event",
                ))  # fmt: skip
            kept = np.flatnonzero(ok)
            batch = ForecastBatch(
                self.topic, self.partition,
                np.array([dec.records[i].offset for i in kept.tolist()], dtype=np.int64),
                upd.series, upd.ts, upd.value, upd.step_ts, upd.yhat, upd.lower, upd.upper,
                upd.model_version, upd.errors, upd.covered,
            )  # fmt: skip
        self.next_offset = recs[-1].offset + 1
        self.events_since_save += take
        return batch, rejected
