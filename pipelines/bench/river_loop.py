"""The loop a user would otherwise write, as the third contender of ``forecaster bench kafka``.

A kafka-python consumer reads the topic; each event is parsed with orjson, the series'
River SNARIMAX (the accuracy benchmark's peer, :func:`pipelines.bench.peers.snarimax`)
learns it (``learn_one``) and forecasts the next K values (``forecast(K)``), and a
kafka-python producer writes the forecast as a JSON message keyed by the series. Its
time runs, like the service's, from its first records until its last forecast is
flushed. River is a benchmark dependency, never imported by the library.

Each stage's CPU time per event is measured on its own too, as for the service:
decoding, learning and forecasting, encoding (producing is timed by the caller with the
same producer function as the service's messages).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipelines.bench.peers import snarimax
from pipelines.kafka.options import KafkaSettings, consumer_options, producer_options

RIVER_LR = 0.001  # SNARIMAX's SGD step: the middle of the accuracy benchmark's grid


class RiverForecaster:
    """Per-series River SNARIMAX: learn an event, then forecast its next ``horizon`` values."""

    def __init__(self, horizon: int, lr: float = RIVER_LR) -> None:
        self.horizon, self.lr = horizon, lr
        self.models: dict[str, Any] = {}

    def learn_forecast(self, series: str, value: float) -> list[float]:
        """``learn_one(value)`` then ``forecast(horizon)`` (the last value until it can)."""
        model = self.models.get(series)
        if model is None:
            model = self.models[series] = snarimax(self.lr)
        model.learn_one(value)
        try:
            return [float(v) for v in model.forecast(self.horizon)]
        except (ValueError, IndexError, ZeroDivisionError):  # too few values yet
            return [value] * self.horizon


def forecast_message(doc: dict[str, Any], yhat: list[float]) -> bytes:
    """The River loop's forecast message: the event's series and time, when, the forecasts."""
    return orjson.dumps({"series": doc["series"], "ts": doc["ts"], "issued_at": time.time(),
                         "yhat": yhat, "model_version": 0})  # fmt: skip


def river_loop(
    cfg: KafkaSettings, topic: str, out_topic: str, n: int, horizon: int
) -> tuple[float, dict[str, int]]:
    """Seconds the loop takes from its first records until ``n`` forecasts are flushed."""
    cons = KafkaConsumer(**consumer_options(
        cfg, group_id=None, enable_auto_commit=False, max_poll_records=cfg.max_poll_records,
        max_partition_fetch_bytes=8 * 1024 * 1024, receive_message_max_bytes=2**31 - 1,
    ))  # fmt: skip
    prod = KafkaProducer(**producer_options(cfg))
    tps = [TopicPartition(topic, p) for p in sorted(cons.partitions_for_topic(topic) or ())]
    cons.assign(tps)
    cons.seek_to_beginning(*tps)
    model = RiverForecaster(horizon)
    seen, start = 0, 0.0
    while seen < n:
        for recs in cons.poll(timeout_ms=200).values():
            if not seen:
                start = time.perf_counter()  # the clock starts with the first records
            for rec in recs:
                doc = orjson.loads(rec.value)
                yhat = model.learn_forecast(doc["series"], float(doc["value"]))
                prod.send(out_topic, key=rec.key, value=forecast_message(doc, yhat))
            seen += len(recs)
    prod.flush()
    took = time.perf_counter() - start
    prod.close()
    cons.close()
    return took, {"events": seen, "series": len(model.models)}


def river_stage_costs(
    msgs: list[tuple[bytes, bytes]], horizon: int
) -> tuple[dict[str, float], list[tuple[bytes, bytes]]]:
    """CPU microseconds per event of the loop's stages, each measured on its own.

    Returns decoding (``orjson.loads``), learning and forecasting (SNARIMAX per series,
    ``msgs`` in order from fresh models), encoding the message, and the messages encoded
    (for the caller to time producing them).
    """
    docs: list[dict[str, Any]] = []
    model = RiverForecaster(horizon)
    forecasts: list[list[float]] = []
    out: list[tuple[bytes, bytes]] = []

    def decode() -> None:
        docs.extend(orjson.loads(v) for _, v in msgs)

    def learn() -> None:
        forecasts.extend(model.learn_forecast(d["series"], float(d["value"])) for d in docs)

    def encode() -> None:
        out.extend((k, forecast_message(d, f)) for (k, _), d, f in zip(msgs, docs, forecasts,
                                                                      strict=True))  # fmt: skip

    def cpu_us(work: Callable[[], None]) -> float:
        start = time.process_time()
        work()
        return (time.process_time() - start) / len(msgs) * 1e6

    costs = {"decode_us": cpu_us(decode), "learn_us": cpu_us(learn), "encode_us": cpu_us(encode)}
    return costs, out
