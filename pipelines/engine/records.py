"""Messages in, events out: the wire format of the input topic, and why a record is rejected.

A message value is a JSON object (UTF-8)::

    {"series": "pump-7", "ts": "2024-05-01T12:00:00Z", "value": 3.25,
     "features": {"load": 0.8}}

- ``series``: the series id (a string of 1 to 512 bytes). It may be left out when the
  message key holds it; when both are given they must agree.
- ``ts``: the event time, ISO-8601 (a time without an offset is read as UTC) or an
  integer or float of milliseconds since the Unix epoch, in the years 1 to 9999.
- ``value``: a finite number, at most 1e100 in magnitude (features likewise).
- ``features``: the model's configured covariates by name, all of them, and no others
  (omit it when none are configured).

A record that breaks a rule is rejected with one of :data:`REASONS`; the stream goes on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import orjson

from forecaster.core import F64Array
from forecaster.core.params import I64Array

# Why a record was rejected: the label of the dead letter and of the rejected counter.
UNDECODABLE = "undecodable"  # not UTF-8 JSON, or not a JSON object
MISSING_FIELD = "missing_field"  # no series (and no key), ts or value
WRONG_TYPE = "wrong_type"  # a field of the wrong JSON type
BAD_TIMESTAMP = "bad_timestamp"  # a ts string that is not ISO-8601
NON_FINITE = "non_finite"  # NaN or infinity in value, ts or a feature
UNKNOWN_FEATURE = "unknown_feature"  # a feature the model is not configured with
MISSING_FEATURE = "missing_feature"  # a configured feature left out
SERIES_MISMATCH = "series_mismatch"  # the key and the "series" field disagree
OUT_OF_ORDER = "out_of_order"  # older than the series' latest event (decided by the model)
BAD_SERIES = "bad_series"  # an empty series id, or one over MAX_SERIES_BYTES
OUT_OF_RANGE = "out_of_range"  # a value or feature beyond MAX_ABS_VALUE
REASONS = (UNDECODABLE, MISSING_FIELD, WRONG_TYPE, BAD_TIMESTAMP, NON_FINITE, UNKNOWN_FEATURE,
           MISSING_FEATURE, SERIES_MISMATCH, OUT_OF_ORDER, BAD_SERIES, OUT_OF_RANGE)  # fmt: skip

MAX_SERIES_BYTES = 512  # a key, a label and a file name all stay small
# No sensor reads 1e100; beyond it, squares in training and interval bounds would overflow.
MAX_ABS_VALUE = 1e100
# Event times from 0001-01-01 to 9999-12-31 (what ISO-8601 and datetime64[ms] can hold).
MIN_TS, MAX_TS = -62135596800.0, 253402300799.999


class Record(Protocol):
    """What the loop needs of a message (kafka-python's ``ConsumerRecord`` has it)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True)
class Message:
    """A record not from Kafka (files, tests): the same fields as a ``ConsumerRecord``."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Rejected:
    """A record that is not an event, with the reason (one of :data:`REASONS`)."""

    record: Record
    reason: str
    detail: str


@dataclass
class Decoded:
    """The events of a batch, as arrays, and the records rejected on the way."""

    records: list[Record] = field(default_factory=list)  # one per event
    series: list[str] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    features: list[list[float]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def arrays(self, n_features: int) -> tuple[F64Array, F64Array, F64Array]:
        """Times (seconds), values, and covariates ``(n, C)``."""
        cov = np.array(self.features, dtype=np.float64).reshape(len(self.values), n_features)
        return np.array(self.ts), np.array(self.values), cov


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
        """Event ``i`` as a message: the original, or its JSON equivalent (:mod:`records`)."""
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


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def _number(obj: dict[str, Any], name: str) -> float:
    v = obj.get(name)
    if v is None:
        raise _Reject(MISSING_FIELD, f"no {name!r}")
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _Reject(WRONG_TYPE, f"{name!r} is {type(v).__name__}, not a number")
    try:
        x = float(v)
    except OverflowError:  # an integer beyond any float
        raise _Reject(OUT_OF_RANGE, f"{name!r} is beyond ±{MAX_ABS_VALUE:g}") from None
    if not math.isfinite(x):
        raise _Reject(NON_FINITE, f"{name!r} is {x}")
    if abs(x) > MAX_ABS_VALUE:
        raise _Reject(OUT_OF_RANGE, f"{name!r} {x:g} is beyond ±{MAX_ABS_VALUE:g}")
    return x


def parse_ts(v: Any) -> float:
    """Seconds since the epoch from ISO-8601 text or epoch milliseconds."""
    if isinstance(v, str):
        try:
            when = datetime.fromisoformat(v)
        except ValueError:
            raise _Reject(BAD_TIMESTAMP, f"'ts' {v[:40]!r} is not ISO-8601") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        try:
            seconds = when.timestamp()
        except (OverflowError, ValueError):  # year 1 with a negative offset, and the like
            raise _Reject(BAD_TIMESTAMP, f"'ts' {v[:40]!r} is out of range") from None
        return _in_range(seconds, v)
    if v is None:
        raise _Reject(MISSING_FIELD, "no 'ts'")
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _Reject(WRONG_TYPE, f"'ts' is {type(v).__name__}, not text or a number")
    try:
        seconds = float(v) / 1000.0
    except OverflowError:  # an integer beyond any float
        raise _Reject(BAD_TIMESTAMP, "'ts' is outside the years 1 to 9999") from None
    if not math.isfinite(seconds):
        raise _Reject(NON_FINITE, f"'ts' is {v}")
    return _in_range(seconds, v)


def _in_range(seconds: float, raw: Any) -> float:
    if not MIN_TS <= seconds <= MAX_TS:
        text = repr(raw)[:40]
        raise _Reject(BAD_TIMESTAMP, f"'ts' {text} is outside the years 1 to 9999")
    return seconds


def _load(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson refuses NaN and Infinity; the standard parser reads them, so such a record
        # is reported as non-finite rather than as undecodable.
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise _Reject(UNDECODABLE, f"not JSON: {exc}") from None


class Decoder:
    """Turns records into events; ``features`` are the model's covariates, in order."""

    def __init__(self, features: Sequence[str] = ()) -> None:
        self.features = tuple(features)
        self._known = frozenset(self.features)

    def decode_batch(self, records: Sequence[Record]) -> EventBatch:
        """Decode a partition's records (in offset order) into an :class:`EventBatch`."""
        dec = self.decode(records)
        ts, values, cov = dec.arrays(len(self.features))
        offsets = np.array([r.offset for r in dec.records], dtype=np.int64)
        end = records[-1].offset + 1 if records else 0
        return EventBatch(offsets, dec.series, ts, values, cov, end, tuple(dec.rejected),
                          dec.records)  # fmt: skip

    def decode(self, records: Sequence[Record]) -> Decoded:
        """Decode a batch; never raises for bad data."""
        out = Decoded()
        for rec in records:
            try:
                sid, ts, value, feats = self._one(rec)
            except _Reject as rej:
                out.rejected.append(Rejected(rec, rej.reason, rej.detail))
                continue
            out.records.append(rec)
            out.series.append(sid)
            out.ts.append(ts)
            out.values.append(value)
            out.features.append(feats)
        return out

    def _one(self, rec: Record) -> tuple[str, float, float, list[float]]:
        if rec.value is None:
            raise _Reject(UNDECODABLE, "empty message (null value)")
        obj = _load(rec.value)
        if not isinstance(obj, dict):
            raise _Reject(UNDECODABLE, f"a JSON {type(obj).__name__}, not an object")
        sid = obj.get("series")
        key = rec.key
        if sid is None:
            if key is None:
                raise _Reject(MISSING_FIELD, "no 'series' and no message key")
            try:
                sid = key.decode()
            except UnicodeDecodeError:
                raise _Reject(UNDECODABLE, "the key is not UTF-8") from None
        elif not isinstance(sid, str):
            raise _Reject(WRONG_TYPE, f"'series' is {type(sid).__name__}, not text")
        try:
            size = len(sid.encode())
        except UnicodeEncodeError:  # a lone surrogate escape ("\ud800") read by the fallback
            raise _Reject(BAD_SERIES, "the series id is not valid Unicode") from None
        if not 0 < size <= MAX_SERIES_BYTES:
            raise _Reject(BAD_SERIES, f"a series id must have 1 to {MAX_SERIES_BYTES} bytes, "
                                      f"not {size}")  # fmt: skip
        if key is not None and key != sid.encode():
            raise _Reject(SERIES_MISMATCH, f"key {key[:40]!r} but series {sid[:40]!r}")
        ts = parse_ts(obj.get("ts"))
        value = _number(obj, "value")
        feats = obj.get("features")
        if feats is None:
            feats = {}
        if not isinstance(feats, dict):
            raise _Reject(WRONG_TYPE, f"'features' is {type(feats).__name__}, not an object")
        unknown = [k for k in feats if k not in self._known]
        if unknown:
            raise _Reject(UNKNOWN_FEATURE, f"{unknown[0][:40]!r} is not a configured feature")
        if len(feats) != len(self.features):
            gone = [f for f in self.features if f not in feats]
            raise _Reject(MISSING_FEATURE, f"no feature {gone[0]!r}")
        return sid, ts, value, [_number(feats, f) for f in self.features]
