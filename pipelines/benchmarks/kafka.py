"""``forecaster bench kafka``: the full service against a bare consumer, on one broker.

Both read the same topic of sensor events from its start. The bare consumer only polls
(kafka-python, the same batch size), which is the most any consumer built on it can do.
The service consumes, decodes, learns, forecasts, produces every forecast, checkpoints
and commits; its time runs until its last forecast is flushed and its offsets are
committed. Rounds alternate between the two, and medians are reported.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipelines.localkafka import LOCAL_API_VERSION, local_broker
from pipelines.records import Decoder, Message
from pipelines.settings import KafkaSettings, Settings, load_settings

# A thousand series is a fleet: sensors.toml's long histories (tuned on single
# recordings) would make every checkpoint hold gigabytes here.
FLEET = Path(__file__).resolve().parents[2] / "config" / "fleet.toml"


def sensor_messages(n_series: int, per_series: int, seed: int) -> list[tuple[bytes, bytes]]:
    """Noisy daily cycles, five minutes apart, interleaved across series."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, n_series)
    t = np.arange(per_series)[:, None]
    values = (
        20 + np.sin(2 * np.pi * t / 288 + phase) + 0.1 * rng.standard_normal((per_series, n_series))
    )
    t0 = 1_700_000_000_000
    out = []
    for i in range(per_series):
        for s in range(n_series):
            sid = f"sensor-{s:04d}"
            doc = {"series": sid, "ts": t0 + i * 300_000, "value": float(values[i, s])}
            out.append((sid.encode(), orjson.dumps(doc)))
    return out


def _produce(opts: dict[str, Any], topic: str, msgs: list[tuple[bytes, bytes]]) -> None:
    prod = KafkaProducer(**opts, linger_ms=20, batch_size=512 * 1024)
    for key, value in msgs:
        prod.send(topic, key=key, value=value)
    prod.flush()
    prod.close()


def bare_consumer(opts: dict[str, Any], topic: str, n: int, max_poll_records: int) -> float:
    """Seconds a plain consumer takes to read ``n`` records of ``topic`` from the start."""
    cons = KafkaConsumer(**opts, group_id=None, enable_auto_commit=False,
                         max_poll_records=max_poll_records,
                         max_partition_fetch_bytes=8 * 1024 * 1024,
                         receive_message_max_bytes=2**31 - 1)  # as the service's  # fmt: skip
    tps = [TopicPartition(topic, p) for p in sorted(cons.partitions_for_topic(topic) or ())]
    cons.assign(tps)
    cons.seek_to_beginning(*tps)
    seen = 0
    while not seen:  # the clock starts with the first records, as for the service
        for recs in cons.poll(timeout_ms=200).values():
            seen += len(recs)
    start = time.perf_counter()
    while seen < n:
        for recs in cons.poll(timeout_ms=200).values():
            seen += len(recs)
    took = time.perf_counter() - start
    cons.close()
    return took


def full_service(base: Settings, topic: str, n: int, work: Path) -> tuple[float, dict[str, Any]]:
    """Seconds the service takes from its first records to ``n`` events committed."""
    from pipelines.service import build_service

    run = uuid.uuid4().hex[:8]
    settings = base.model_copy(update={
        "topics": base.topics.model_copy(update={"input": topic, "output": f"bench-out-{run}",
                                                 "dead_letter": f"bench-dlq-{run}"}),
        "kafka": base.kafka.model_copy(update={"group_id": f"bench-{run}"}),
        "checkpoint": base.checkpoint.model_copy(update={"dir": work / run}),
    })  # fmt: skip
    service = build_service(settings)
    runner = service.runner
    th = threading.Thread(target=service.run, daemon=True)
    th.start()
    while runner.last_record_at is None and th.is_alive():  # joined the group, first poll
        time.sleep(0.001)
    start = time.perf_counter()
    while runner.stats.events + sum(runner.stats.rejected.values()) < n and th.is_alive():
        time.sleep(0.01)
    service.stop.set()
    th.join()
    took = time.perf_counter() - start
    stats = runner.stats
    return took, {"events": stats.events, "forecasts": stats.forecasts,
                  "checkpoints": stats.checkpoints, "commits": stats.commits}  # fmt: skip


def decode_speed(msgs: list[tuple[bytes, bytes]]) -> dict[str, float]:
    """Microseconds per message: our decoder (orjson) and the standard library's parser."""
    recs = [Message("t", 0, i, k, v) for i, (k, v) in enumerate(msgs)]
    dec = Decoder()
    start = time.perf_counter()
    dec.decode(recs)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    for r in recs:
        json.loads(r.value or b"")
    stdlib = time.perf_counter() - start
    start = time.perf_counter()
    for r in recs:
        orjson.loads(r.value or b"")
    parse = time.perf_counter() - start
    n = len(recs) / 1e6
    return {"decoder_us": ours / n, "orjson_parse_us": parse / n, "json_parse_us": stdlib / n}


def encode_speed(n: int, horizon: int) -> float:
    """Microseconds to encode one forecast message (the wire format, ``horizon`` steps)."""
    from pipelines.sinks import ForecastBatch, encode_forecasts

    rng = np.random.default_rng(0)
    t = 1.7e9 + np.arange(n, dtype=np.float64)
    steps = t[:, None] + 60.0 * np.arange(1, horizon + 1)
    batch = ForecastBatch("t", 0, np.arange(n), [f"sensor-{i % 1000:04d}" for i in range(n)], t,
                          rng.normal(size=n), steps, rng.normal(size=(n, horizon)),
                          rng.normal(size=(n, horizon)), rng.normal(size=(n, horizon)),
                          np.zeros(n, dtype=np.int64))  # fmt: skip
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        encode_forecasts(batch, "2026-01-01T00:00:00Z")
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def budget(bare_rate: float, decode_us: float, encode_us: float, goal: float) -> dict[str, float]:
    """What the goal leaves per event, and the best ratio JSON in and out alone allow.

    The service reads every record as the bare consumer does, then decodes it and
    encodes its forecast; the rest (model, producer, commits) is counted as free here.
    """
    bare_us = 1e6 / bare_rate
    return {
        "bare_us": bare_us, "goal_leaves_us": bare_us / goal - bare_us,
        "json_us": decode_us + encode_us,
        "best_ratio_one_core": bare_us / (bare_us + decode_us + encode_us),
    }  # fmt: skip


def run(
    bootstrap: str | None = None,
    api_version: str = "auto",
    n_series: int = 1000,
    per_series: int = 100,
    rounds: int = 3,
    config: Path = FLEET,
) -> dict[str, Any]:
    """Produce one topic, then time the bare consumer and the service on it, alternating."""
    msgs = sensor_messages(n_series, per_series, seed=0)
    n = len(msgs)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-kafka-")))
        if bootstrap is None:
            bootstrap = stack.enter_context(local_broker(work / "kafka"))
            api_version = LOCAL_API_VERSION
        env = {"FORECASTER_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
               "FORECASTER_KAFKA__API_VERSION": api_version}  # fmt: skip
        settings = load_settings(config, env=env)
        from pipelines.kafka_io import client_options

        opts = client_options(KafkaSettings(bootstrap_servers=bootstrap, api_version=api_version))
        topic = f"bench-in-{uuid.uuid4().hex[:8]}"
        _produce(opts, topic, msgs)
        bare_consumer(opts, topic, n, settings.kafka.max_poll_records)  # connections, caches
        bare: list[float] = []
        full: list[float] = []
        details: dict[str, Any] = {}
        for _ in range(rounds):
            bare.append(bare_consumer(opts, topic, n, settings.kafka.max_poll_records))
            took, details = full_service(settings, topic, n, work / "ckpt")
            full.append(took)
    bare_rate = n / statistics.median(bare)
    full_rate = n / statistics.median(full)
    decode = decode_speed(msgs[:20_000])
    encode_us = encode_speed(20_000, settings.forecaster_config().horizon)
    return {
        "events": n, "series": n_series, "rounds": rounds, "partitions": 4,
        "bootstrap": bootstrap, "api_version": api_version, "config": str(config),
        "bare_events_per_s": bare_rate, "service_events_per_s": full_rate,
        "service_over_bare": full_rate / bare_rate, "goal": 0.7,
        "service_run": details, "decode": decode,
        "encode_us": encode_us,
        "budget": budget(bare_rate, decode["decoder_us"], encode_us, 0.7),
    }  # fmt: skip
