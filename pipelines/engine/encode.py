"""What the service writes: forecast messages and dead letters (UTF-8 JSON).

A forecast message (value; key: the series id)::

    {"series": "pump-7", "ts": "2024-05-01T12:00:00Z",
     "issued_at": "2024-05-01T12:00:00.153Z", "horizon": ["2024-05-01T12:05:00Z", ...],
     "yhat": [...], "lower": [...], "upper": [...], "model_version": 3,
     "model_id": "3f9a0c1d2e4b5a69", "anomaly": {"flag": false, "score": 0.62, "step": 1}}

``ts`` is the event's time and ``horizon`` the expected times of the next K events
(RFC 3339, UTC, to the millisecond; fractions of a second only where not zero);
``issued_at`` is the wall clock when the service wrote it. Delivery is at-least-once:
after a restart a forecast may come again, identical but for ``issued_at``, so
(series, ts, model_version) identifies it. ``model_id`` is the id of the model file the
partition's model started from (``forecaster train``), or null for an untrained start.
``anomaly`` is the event's judgement against
the forecasts issued for it (:mod:`forecaster.anomaly`): flagged or not, its score (one
minus the p-value of its error among the model's past ones; null where no forecast was
judged) and the step it was judged at (0: none).

An anomaly message (value; key: the series id), only for a flagged event::

    {"series": "pump-7", "ts": "2024-05-01T12:00:00Z", "value": 97.1, "step": 1,
     "yhat": 41.2, "lower": 30.4, "upper": 52.0, "score": 0.99986, "model_version": 3}

``yhat`` is the forecast issued ``step`` events before for this event, and ``lower`` and
``upper`` the anomaly band (``anomaly_level``) around it, which the value broke.

A dead letter (value; key: the original key)::

    {"reason": "non_finite", "detail": "'value' is nan", "topic": "sensor-events",
     "partition": 0, "offset": 1234, "size": 52, "truncated": false,
     "value_b64": "<the original bytes>"}

A record too large for the topic keeps its first bytes (``truncated``, and ``size``
says how large it was).
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson

from forecaster.core import F64Array
from pipelines.engine.batches import ForecastBatch
from pipelines.engine.records import Rejected

MAX_KEY_BYTES = 512
_NUMPY_JSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z

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


def encode_forecasts(batch: ForecastBatch) -> list[tuple[bytes, bytes]]:
    """(key, value) of each forecast message, ``issued_at`` from the batch.

    orjson writes the NumPy rows and times in C (times as RFC 3339, UTC, with
    microseconds only where they are not zero), with no Python object per number.
    """
    issued_at = iso_times(np.float64(batch.issued_at))
    if _fast(batch.ts) and _fast(batch.step_ts):
        ts, steps = as_datetimes(batch.ts), as_datetimes(batch.step_ts)
    else:  # times orjson cannot write, which a fuzzed stream found
        ts, steps = iso_times(batch.ts), iso_times(batch.step_ts)
    yhat, lower, upper = (np.ascontiguousarray(a) for a in (batch.yhat, batch.lower, batch.upper))
    version = batch.model_version.tolist()
    judged = _judgements(batch)
    dumps = orjson.dumps
    out = []
    for i, sid in enumerate(batch.series):
        doc = {"series": sid, "ts": ts[i], "issued_at": issued_at, "horizon": steps[i],
               "yhat": yhat[i], "lower": lower[i], "upper": upper[i],
               "model_version": version[i], "model_id": batch.model_id,
               "anomaly": judged[i]}  # fmt: skip
        out.append((sid.encode(), dumps(doc, option=_NUMPY_JSON)))
    return out


def _judgements(batch: ForecastBatch) -> list[dict[str, Any] | None]:
    """Each event's ``anomaly`` object (None for a report without judgements)."""
    a = batch.anomaly
    if a is None:
        return [None] * len(batch)
    score = [None if math.isnan(x) else x for x in a.score.tolist()]
    return [{"flag": f, "score": sc, "step": st}
            for f, sc, st in zip(a.flag.tolist(), score, a.step.tolist(), strict=True)]  # fmt: skip


def encode_anomalies(batch: ForecastBatch) -> list[tuple[bytes, bytes]]:
    """(key, value) of an anomaly message for each flagged event of ``batch``."""
    a = batch.anomaly
    if a is None or not a.flag.any():
        return []
    out = []
    for i in np.flatnonzero(a.flag).tolist():
        sid = batch.series[i]
        doc = {"series": sid, "ts": iso_times(batch.ts[i]), "value": float(batch.value[i]),
               "step": int(a.step[i]), "yhat": float(a.yhat[i]), "lower": float(a.lower[i]),
               "upper": float(a.upper[i]), "score": float(a.score[i]),
               "model_version": int(batch.model_version[i])}  # fmt: skip
        out.append((sid.encode(), orjson.dumps(doc)))
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
