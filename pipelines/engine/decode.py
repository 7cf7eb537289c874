"""Messages in, events out: the wire format of the input topic.

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

A record that breaks a rule is rejected with one of
:data:`~pipelines.engine.records.REASONS`; the stream goes on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from forecaster.core import F64Array
from pipelines.engine.batches import EventBatch
from pipelines.engine.records import (
    BAD_SERIES,
    BAD_TIMESTAMP,
    MAX_ABS_VALUE,
    MAX_SERIES_BYTES,
    MISSING_FEATURE,
    MISSING_FIELD,
    NON_FINITE,
    OUT_OF_RANGE,
    SERIES_MISMATCH,
    UNDECODABLE,
    UNKNOWN_FEATURE,
    WRONG_TYPE,
    Record,
    Rejected,
)
from pipelines.engine.times import MAX_TS, MIN_TS, iso_datetime


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
    """Seconds since the epoch from ISO-8601 text or epoch milliseconds (:mod:`.times`)."""
    if isinstance(v, str):
        try:
            when = iso_datetime(v)
        except ValueError:
            raise _Reject(BAD_TIMESTAMP, f"'ts' {v[:40]!r} is not ISO-8601") from None
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
