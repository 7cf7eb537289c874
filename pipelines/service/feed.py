"""``forecaster feed``: play recordings into the input topic, in the service's wire format.

Each CSV file (``timestamp,value``, the NAB layout) is one series named after the file's
stem. The series are interleaved so that they progress together (each in its own time
order, which is all the model needs), and sent at a fixed rate with their recorded times
in the payload: a day of sensor data replays in seconds and is forecast as if live.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
from kafka import KafkaProducer

from pipelines.files.read import numbers, read_frame, times
from pipelines.kafka.producers import DeliveryError


@dataclass(frozen=True)
class Events:
    """Events in sending order."""

    series: list[str]
    ts_ms: list[int]  # epoch milliseconds
    values: list[float]

    def __len__(self) -> int:
        return len(self.series)

    def messages(self, start: int, stop: int) -> list[tuple[bytes, bytes]]:
        """(key, value) of events ``start:stop`` in the input topic's format."""
        out = []
        for sid, ts, value in zip(self.series[start:stop], self.ts_ms[start:stop],
                                  self.values[start:stop], strict=True):  # fmt: skip
            out.append((sid.encode(), orjson.dumps({"series": sid, "ts": ts, "value": value})))
        return out


def load_recordings(paths: Sequence[Path], limit: int | None = None) -> Events:
    """Read ``timestamp,value`` CSV files and interleave them by progress through each file.

    Raises ``ValueError`` naming the file for one that lacks those columns or has a bad row.
    """
    ids, times_ms, values, progress = [], [], [], []
    for path in paths:
        df = read_frame(path)
        if "timestamp" not in df or "value" not in df:
            msg = f"{path}: needs the columns timestamp and value, has {list(df.columns)}"
            raise ValueError(msg)
        ts = times(df, "timestamp", path)
        val = numbers(df, "value", path)
        n = len(val)
        ids += [path.stem] * n
        times_ms.append(np.rint(ts * 1000.0).astype(np.int64))
        values.append(val)
        progress.append((np.arange(n) + 0.5) / max(n, 1))
    if not ids:
        return Events([], [], [])
    order = np.argsort(np.concatenate(progress), kind="stable")[:limit]
    ts_all, val_all = np.concatenate(times_ms)[order], np.concatenate(values)[order]
    return Events([ids[i] for i in order.tolist()], ts_all.tolist(), val_all.tolist())


def feed(
    send: Callable[[bytes, bytes], None],
    flush: Callable[[], None],
    events: Events,
    rate: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send ``events`` at ``rate`` per second (0: as fast as possible); returns the count."""
    chunk = 200 if rate <= 0 else max(1, int(rate / 20))  # about 20 sends a second
    start = clock()
    sent = 0
    while sent < len(events):
        stop = min(sent + chunk, len(events))
        for key, value in events.messages(sent, stop):
            send(key, value)
        sent = stop
        if rate > 0:
            ahead = sent / rate - (clock() - start)
            if ahead > 0:
                flush()
                sleep(ahead)
    flush()
    return sent


def kafka_feed(
    producer: KafkaProducer, topic: str
) -> tuple[Callable[[bytes, bytes], None], Callable[[], None]]:
    """``send`` and ``flush`` through a kafka-python producer; a failed send raises on flush."""
    failures: list[BaseException] = []

    def send(key: bytes, value: bytes) -> None:
        producer.send(topic, key=key, value=value).add_errback(failures.append)

    def flush() -> None:
        producer.flush()
        if failures:
            msg = f"{len(failures)} event(s) to {topic!r} were not delivered: {failures[0]!r}"
            raise DeliveryError(msg)

    return send, flush
