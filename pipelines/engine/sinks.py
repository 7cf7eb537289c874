"""Where forecasts and rejected records go: Kafka topics, JSONL and CSV files.

A forecast message (value, UTF-8 JSON; key: the series id)::

    {"series": "pump-7", "ts": "2024-05-01T12:00:00Z",
     "issued_at": "2024-05-01T12:00:00.153Z", "horizon": ["2024-05-01T12:05:00Z", ...],
     "yhat": [...], "lower": [...], "upper": [...], "model_version": 3}

``ts`` is the event's time and ``horizon`` the expected times of the next K events
(RFC 3339, UTC, to the millisecond; fractions of a second only where not zero);
``issued_at`` is the wall clock when the service wrote it. Delivery is at-least-once:
after a restart a forecast may come again, identical but for ``issued_at``, so
(series, ts, model_version) identifies it.

A dead letter (value, JSON; key: the original key)::

    {"reason": "non_finite", "detail": "'value' is nan", "topic": "sensor-events",
     "partition": 0, "offset": 1234, "size": 52, "truncated": false,
     "value_b64": "<the original bytes>"}

A record too large for the topic keeps its first bytes (``truncated``, and ``size``
says how large it was).
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import orjson

from forecaster.core import F64Array
from forecaster.core.params import I64Array
from forecaster.stream import BoolArray
from pipelines.engine.records import Rejected


class SinkError(RuntimeError):
    """A sink could not make its output durable (for example the broker is away).

    The run loop answers by going back to the last checkpoint: nothing after it has been
    committed, so the forecasts not delivered are issued again.
    """


MAX_KEY_BYTES = 512
_NUMPY_JSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


@dataclass(frozen=True)
class ForecastBatch:
    """Forecasts issued for a batch of events of one partition; arrays are per event."""

    topic: str
    partition: int
    offsets: I64Array
    series: list[str]
    ts: F64Array  # event times, seconds
    value: F64Array  # the events' values
    step_ts: F64Array  # (m, K) expected times of the next K events
    yhat: F64Array
    lower: F64Array
    upper: F64Array
    model_version: I64Array
    # (m, K) value - the forecast issued k events earlier (NaN where none), and whether
    # the value was inside that forecast's interval; for metrics, never written out.
    errors: F64Array | None = None
    covered: BoolArray | None = None

    def __len__(self) -> int:
        return len(self.series)


# orjson writes datetime64 from year 1 up to 9999-12-30T22:00 only. Times past that (an
# event late in year 9999, or forecast steps beyond it) take the slow path: text through
# datetime, and null for a time outside the years 1 to 9999, which no text can hold.
_FAST_MS = (-62_135_596_800_000, 253_402_207_200_000)
_TEXT_MS = (-62_135_596_800_000, 253_402_300_799_999)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def as_datetimes(seconds: F64Array | np.float64) -> np.ndarray:
    """Epoch seconds as ``datetime64[ms]`` (what the forecast messages carry)."""
    return np.rint(np.asarray(seconds) * 1000.0).astype(np.int64).astype("datetime64[ms]")


def _fast(seconds: F64Array | np.float64) -> bool:
    """Whether orjson can write all these times (NaN cannot)."""
    ms = np.asarray(seconds) * 1000.0
    return bool(np.all((ms >= _FAST_MS[0]) & (ms <= _FAST_MS[1])))


def _iso(seconds: float) -> str | None:
    if not np.isfinite(seconds):
        return None
    ms = int(np.rint(seconds * 1000.0))
    if not _TEXT_MS[0] <= ms <= _TEXT_MS[1]:
        return None
    return (_EPOCH + timedelta(milliseconds=ms)).replace(tzinfo=None).isoformat() + "Z"


def iso_times(seconds: F64Array | np.float64) -> Any:
    """Epoch seconds as the RFC 3339 UTC text of the forecast messages (nested lists).

    A time outside the years 1 to 9999 is ``None``.

    >>> iso_times(np.array([1714564800.0, 1714564800.25]))
    ['2024-05-01T12:00:00Z', '2024-05-01T12:00:00.250000Z']
    >>> iso_times(np.float64(1714564800.0))
    '2024-05-01T12:00:00Z'
    >>> iso_times(np.array([253402300799.0, 253402300800.0]))  # the last second, then none
    ['9999-12-31T23:59:59Z', None]
    """
    if _fast(seconds):
        return orjson.loads(orjson.dumps(as_datetimes(seconds), option=_NUMPY_JSON))
    return np.vectorize(_iso, otypes=[object])(np.asarray(seconds, dtype=np.float64)).tolist()


def encode_forecasts(batch: ForecastBatch, issued_at: str) -> list[tuple[bytes, bytes]]:
    """(key, value) of each forecast message.

    orjson writes the NumPy rows and times in C (times as RFC 3339, UTC, with
    microseconds only where they are not zero), with no Python object per number.
    """
    if _fast(batch.ts) and _fast(batch.step_ts):
        ts, steps = as_datetimes(batch.ts), as_datetimes(batch.step_ts)
    else:  # times orjson cannot write, which a fuzzed stream found
        ts, steps = iso_times(batch.ts), iso_times(batch.step_ts)
    yhat, lower, upper = (np.ascontiguousarray(a) for a in (batch.yhat, batch.lower, batch.upper))
    version = batch.model_version.tolist()
    dumps = orjson.dumps
    out = []
    for i, sid in enumerate(batch.series):
        doc = {"series": sid, "ts": ts[i], "issued_at": issued_at, "horizon": steps[i],
               "yhat": yhat[i], "lower": lower[i], "upper": upper[i],
               "model_version": version[i]}  # fmt: skip
        out.append((sid.encode(), dumps(doc, option=_NUMPY_JSON)))
    return out


def encode_dead_letter(rej: Rejected, max_bytes: int = 1_000_000) -> tuple[bytes | None, bytes]:
    """(key, value) of a dead letter: the reason, where it came from, its original bytes.

    A record too large to fit in ``max_bytes`` as base64 keeps its first bytes, with
    ``"truncated": true`` and its full ``size``; a key over 512 bytes is cut likewise.
    """
    rec = rej.record
    raw = rec.value if rec.value is not None else b""
    key = rec.key
    doc: dict[str, Any] = {"reason": rej.reason, "detail": rej.detail, "topic": rec.topic,
                           "partition": rec.partition, "offset": rec.offset, "size": len(raw),
                           "truncated": False}  # fmt: skip
    if key is not None and len(key) > MAX_KEY_BYTES:
        key, doc["key_truncated"] = key[:MAX_KEY_BYTES], True
    room = max_bytes - len(orjson.dumps(doc)) - MAX_KEY_BYTES - 64  # JSON and framing
    keep = max(0, room) // 4 * 3  # base64 turns 3 bytes into 4 characters
    if len(raw) > keep:
        raw, doc["truncated"] = raw[:keep], True
    doc["value_b64"] = base64.b64encode(raw).decode()
    return key, orjson.dumps(doc)


def decode_dead_letter(value: bytes) -> dict[str, Any]:
    """A dead letter's fields, with ``value`` holding the original bytes."""
    doc: dict[str, Any] = orjson.loads(value)
    doc["value"] = base64.b64decode(doc.pop("value_b64"))
    return doc


class ForecastSink(Protocol):
    """Receives forecasts; ``flush`` returns once everything written is durable."""

    def write(self, batch: ForecastBatch, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """Take a batch and its encoded messages."""

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


class JsonlSink:
    """One forecast message per line (the same JSON as the Kafka topic)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("ab")

    def write(self, batch: ForecastBatch, messages: Sequence[tuple[bytes, bytes]]) -> None:
        self._fh.write(b"".join(value + b"\n" for _, value in messages))

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class CsvSink:
    """One row per forecast step: series, ts, step, step_ts, yhat, lower, upper, version."""

    HEADER = ("series", "ts", "step", "step_ts", "yhat", "lower", "upper", "model_version")

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists() or path.stat().st_size == 0
        self._fh = path.open("a", newline="", encoding="utf-8")
        if fresh:
            csv.writer(self._fh).writerow(self.HEADER)

    def write(self, batch: ForecastBatch, messages: Sequence[tuple[bytes, bytes]]) -> None:
        buf = io.StringIO()
        w = csv.writer(buf)
        ts, steps = iso_times(batch.ts), iso_times(batch.step_ts)
        k = batch.yhat.shape[1] if batch.yhat.ndim == 2 else 0
        for i, sid in enumerate(batch.series):
            for j in range(k):
                w.writerow((sid, ts[i], j + 1, steps[i][j], repr(float(batch.yhat[i, j])),
                            repr(float(batch.lower[i, j])), repr(float(batch.upper[i, j])),
                            int(batch.model_version[i])))  # fmt: skip
        self._fh.write(buf.getvalue())

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class FanOut:
    """Several forecast sinks as one."""

    def __init__(self, sinks: Sequence[ForecastSink]) -> None:
        self.sinks = list(sinks)

    def write(self, batch: ForecastBatch, messages: Sequence[tuple[bytes, bytes]]) -> None:
        for sink in self.sinks:
            sink.write(batch, messages)

    def flush(self) -> None:
        for sink in self.sinks:
            sink.flush()

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class ListSink:
    """Keeps forecasts in memory: replays and tests that read results back."""

    def __init__(self) -> None:
        self.batches: list[ForecastBatch] = []
        self.messages: list[tuple[bytes, bytes]] = []

    def write(self, batch: ForecastBatch, messages: Sequence[tuple[bytes, bytes]]) -> None:
        self.batches.append(batch)
        self.messages.extend(messages)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class ListDeadLetters:
    """Keeps rejected records in memory."""

    def __init__(self) -> None:
        self.rejected: list[Rejected] = []

    def write(self, rejected: Sequence[Rejected]) -> None:
        self.rejected.extend(rejected)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
