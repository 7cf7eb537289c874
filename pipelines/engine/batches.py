"""What flows through the loop: events of a partition in, forecasts of a partition out.

An :class:`EventBatch` is a partition's events as columns, in offset order: decoded from
messages, or read straight from a file's columns. A :class:`ForecastBatch` is what the
partition's model issued for them, exactly as the model reported it (its
:class:`~forecaster.stream.Update`), plus where the events came from and when the loop
issued the forecasts. Sinks encode a forecast batch for themselves
(:attr:`ForecastBatch.messages`), so nothing is encoded that no sink writes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import orjson

from forecaster.anomaly import Judgement
from forecaster.core import F64Array
from forecaster.core.params import I64Array
from forecaster.events import BoolArray
from forecaster.stream import Update
from pipelines.engine.records import Message, Record, Rejected

TP = tuple[str, int]  # (topic, partition); kafka-python's TopicPartition is one


@dataclass(frozen=True)
class EventBatch:
    """Events of one partition as columns, in offset order: what a partition task learns.

    The decoder makes one from Kafka records; a file source makes them straight from its
    columns, with no message per row. ``end`` is the offset after the last record the
    batch covers, and ``rejected`` are the records in that range that are not events.
    ``records`` are the messages the events came from (``None`` for a file: a dead
    letter then gets an equivalent JSON message, made only for that row).

    Examples
    --------
    >>> b = EventBatch(np.arange(3), ["a", "b", "a"], np.array([0.0, 1.0, 2.0]),
    ...                np.array([1.0, 2.0, 3.0]), np.zeros((3, 0)), end=4)
    >>> len(b), b.select(np.array([1, 2])).offsets.tolist()
    (3, [1, 2])
    """

    offsets: I64Array
    series: list[str]
    ts: F64Array  # seconds since the epoch
    values: F64Array
    cov: F64Array  # (n, C) covariates, in the model's order
    end: int
    rejected: tuple[Rejected, ...] = ()
    records: Sequence[Record] | None = None

    def __len__(self) -> int:
        return int(self.offsets.size)

    def select(self, idx: I64Array) -> EventBatch:
        """The events at positions ``idx`` (no rejected records)."""
        pick = idx.tolist()
        recs = None if self.records is None else [self.records[i] for i in pick]
        series = [self.series[i] for i in pick]
        return EventBatch(self.offsets[idx], series, self.ts[idx], self.values[idx],
                          self.cov[idx], self.end, (), recs)  # fmt: skip

    def since(self, offset: int) -> EventBatch:
        """The events and rejected records at or after ``offset`` (``self`` if all are)."""
        if (not len(self) or self.offsets[0] >= offset) and all(
            r.record.offset >= offset for r in self.rejected
        ):
            return self
        part = self.select(np.flatnonzero(self.offsets >= offset))
        kept = tuple(r for r in self.rejected if r.record.offset >= offset)
        return EventBatch(part.offsets, part.series, part.ts, part.values, part.cov, self.end,
                          kept, part.records)  # fmt: skip

    def window(self, lo: int, hi: int) -> EventBatch:
        """Events ``lo:hi`` (views where possible; no rejected records), ending at ``end``."""
        recs = None if self.records is None else self.records[lo:hi]
        end = int(self.offsets[hi]) if hi < len(self) else self.end
        return EventBatch(self.offsets[lo:hi], self.series[lo:hi], self.ts[lo:hi],
                          self.values[lo:hi], self.cov[lo:hi], end, (), recs)  # fmt: skip

    def record(self, i: int, topic: str, partition: int, features: Sequence[str]) -> Record:
        """Event ``i`` as a message: the original, or its JSON equivalent (:mod:`.decode`)."""
        if self.records is not None:
            return self.records[i]
        sid = self.series[i]
        doc: dict[str, Any] = {"series": sid, "ts": float(self.ts[i]) * 1000.0,
                               "value": float(self.values[i])}  # fmt: skip
        if features:
            doc["features"] = dict(zip(features, self.cov[i].tolist(), strict=True))
        return Message(topic, partition, int(self.offsets[i]), sid.encode(), orjson.dumps(doc))

    @staticmethod
    def concat(parts: Sequence[EventBatch]) -> EventBatch:
        """One batch of ``parts`` (consecutive, in offset order)."""
        if len(parts) == 1:
            return parts[0]
        recs: list[Record] | None = []
        series: list[str] = []
        for p in parts:
            series += p.series
            if recs is not None and p.records is not None:
                recs += p.records
            else:
                recs = None
        return EventBatch(
            np.concatenate([p.offsets for p in parts]), series,
            np.concatenate([p.ts for p in parts]), np.concatenate([p.values for p in parts]),
            np.concatenate([p.cov for p in parts]), parts[-1].end,
            tuple(r for p in parts for r in p.rejected), recs,
        )  # fmt: skip


# What a poll gives per partition: messages (decoded by the partition's task), or events
# already in columns (a file source: no message per row).
Polled = Sequence[Record] | EventBatch


class ForecastColumns:
    """The model's report as named columns, for a class holding it as ``forecasts``."""

    forecasts: Update

    @property
    def series(self) -> list[str]:
        """The series of each event."""
        return self.forecasts.series

    @property
    def ts(self) -> F64Array:
        """Event times (seconds)."""
        return self.forecasts.ts

    @property
    def value(self) -> F64Array:
        """The events' values."""
        return self.forecasts.value

    @property
    def step_ts(self) -> F64Array:
        """``(m, K)`` expected times of each event's next K events."""
        return self.forecasts.step_ts

    @property
    def yhat(self) -> F64Array:
        """``(m, K)`` the forecasts."""
        return self.forecasts.yhat

    @property
    def lower(self) -> F64Array:
        """``(m, K)`` lower interval bounds."""
        return self.forecasts.lower

    @property
    def upper(self) -> F64Array:
        """``(m, K)`` upper interval bounds."""
        return self.forecasts.upper

    @property
    def model_version(self) -> I64Array:
        """The weights version that issued each forecast."""
        return self.forecasts.model_version

    @property
    def errors(self) -> F64Array:
        """``(m, K)`` value - the forecast issued k events earlier (NaN where none)."""
        return self.forecasts.errors

    @property
    def covered(self) -> BoolArray:
        """``(m, K)`` whether the value was inside that earlier forecast's interval."""
        return self.forecasts.covered

    @property
    def anomaly(self) -> Judgement | None:
        """Each event's anomaly judgement (None from a report made without one)."""
        return self.forecasts.anomaly


@dataclass(frozen=True)
class ForecastBatch(ForecastColumns):
    """The forecasts a partition's model issued for a batch of its events.

    ``forecasts`` is the model's own report, one row per accepted event: the forecast
    issued after it for its next K events, with interval and step times, and the
    errors of the forecasts issued earlier for it (``forecasts.errors``, scored by the
    model). ``issued_at`` is the wall clock when the loop wrote them out.
    """

    topic: str
    partition: int
    offsets: I64Array
    forecasts: Update
    issued_at: float = math.nan
    model_id: str | None = None  # the model file the partition's model started from

    def __len__(self) -> int:
        return len(self.forecasts.series)

    def issued(self, at: float) -> ForecastBatch:
        """The same forecasts, issued at wall-clock time ``at`` (seconds)."""
        return replace(self, issued_at=at)

    @cached_property
    def messages(self) -> list[tuple[bytes, bytes]]:
        """(key, value) of each forecast message, encoded on first use (see :mod:`.encode`)."""
        from pipelines.engine.encode import encode_forecasts

        return encode_forecasts(self)

    @cached_property
    def anomaly_messages(self) -> list[tuple[bytes, bytes]]:
        """(key, value) of an anomaly message per flagged event, encoded on first use."""
        from pipelines.engine.encode import encode_anomalies

        return encode_anomalies(self)
