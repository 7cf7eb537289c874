"""``forecaster bench kafka``: the full service against a bare consumer and a River loop.

All three read the same topic of sensor events from its start; the River loop is what a
user would otherwise write (:mod:`pipelines.bench.river_loop`). The bare consumer only polls
(kafka-python, the same batch size), which is the most any consumer built on it can do.
The service consumes, decodes, learns, forecasts, produces every forecast, checkpoints
and commits; its time runs until its last forecast is flushed and its offsets are
committed. Rounds alternate between the two, and medians are reported.

Each stage's cost per event is then measured on its own in the same run (decoding,
learning, retraining spread over its schedule, encoding, producing), and
:func:`budget` sets their sum beside the CPU time the goal leaves on this machine's
cores: a bound no split of the service over processes could beat.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from forecaster import ForecasterConfig, OnlineForecaster
from forecaster.stream import Update
from pipelines.bench.river_loop import river_loop, river_stage_costs
from pipelines.configs import ConfigFile, shipped
from pipelines.engine.batches import ForecastBatch
from pipelines.engine.decode import Decoder
from pipelines.engine.encode import encode_forecasts
from pipelines.engine.records import Message
from pipelines.kafka.local import LOCAL_API_VERSION, local_broker
from pipelines.kafka.options import KafkaSettings, consumer_options, producer_options
from pipelines.kafka.producers import (
    KafkaPythonProducer,
    OutProducer,
    make_output_producer,
    make_producer,
)
from pipelines.kafka.sinks import Producing
from pipelines.service.settings import Settings, load_settings

# A thousand series is a fleet: sensors.toml's long histories (tuned on single
# recordings) would make every checkpoint hold gigabytes here.
FLEET = shipped("fleet.toml")


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


def _produce(cfg: KafkaSettings, topic: str, msgs: list[tuple[bytes, bytes]]) -> None:
    prod = KafkaProducer(**producer_options(cfg, linger_ms=20, batch_size=512 * 1024))
    for key, value in msgs:
        prod.send(topic, key=key, value=value)
    prod.flush()
    prod.close()


def bare_consumer(
    cfg: KafkaSettings, topic: str, n: int, max_poll_records: int
) -> tuple[float, float, int]:
    """Seconds a plain consumer takes to read ``n`` records of ``topic`` from the start.

    Also returns the CPU seconds this process spent on it (all its threads; waiting on
    the broker is not CPU time) and the topic's number of partitions.
    """
    cons = KafkaConsumer(**consumer_options(
        cfg, group_id=None, enable_auto_commit=False, max_poll_records=max_poll_records,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        receive_message_max_bytes=2**31 - 1,  # as the service's
    ))  # fmt: skip
    tps = [TopicPartition(topic, p) for p in sorted(cons.partitions_for_topic(topic) or ())]
    cons.assign(tps)
    cons.seek_to_beginning(*tps)
    seen = 0
    while not seen:  # the clock starts with the first records, as for the service
        for recs in cons.poll(timeout_ms=200).values():
            seen += len(recs)
    start, cpu = time.perf_counter(), time.process_time()
    while seen < n:
        for recs in cons.poll(timeout_ms=200).values():
            seen += len(recs)
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    cons.close()
    return took, cpu, len(tps)


def full_service(base: Settings, topic: str, n: int, work: Path) -> tuple[float, dict[str, Any]]:
    """Seconds the service takes from its first records to ``n`` events committed."""
    from pipelines.service.assemble import build_service

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
    """Microseconds per message: our decoder (orjson) and the standard library's parser.

    Each is the best of three passes, as for encoding: a pass can be caught by a
    garbage collection of everything the run before it left behind.
    """
    recs = [Message("t", 0, i, k, v) for i, (k, v) in enumerate(msgs)]
    dec = Decoder()

    def ours() -> None:
        dec.decode(recs)

    def stdlib() -> None:
        for r in recs:
            json.loads(r.value or b"")

    def parse() -> None:
        for r in recs:
            orjson.loads(r.value or b"")

    def best(work: Callable[[], None]) -> float:
        took = math.inf
        for _ in range(3):
            start = time.perf_counter()
            work()
            took = min(took, time.perf_counter() - start)
        return took / len(recs) * 1e6

    return {"decoder_us": best(ours), "orjson_parse_us": best(parse),
            "json_parse_us": best(stdlib)}  # fmt: skip


def forecast_messages(n: int, horizon: int) -> ForecastBatch:
    """A batch of ``n`` forecasts of ``horizon`` steps, for the encoder and the producer."""
    rng = np.random.default_rng(0)
    t = 1.7e9 + np.arange(n, dtype=np.float64)
    steps = t[:, None] + 60.0 * np.arange(1, horizon + 1)
    nan = np.full((n, horizon), np.nan)
    upd = Update(np.ones(n, bool), [f"sensor-{i % 1000:04d}" for i in range(n)], t,
                 rng.normal(size=n), rng.normal(size=(n, horizon)), rng.normal(size=(n, horizon)),
                 rng.normal(size=(n, horizon)), steps, nan, np.zeros((n, horizon), bool),
                 np.zeros(n, dtype=np.int64))  # fmt: skip
    return ForecastBatch("t", 0, np.arange(n), upd, issued_at=1.7e9)


def encode_speed(batch: ForecastBatch) -> tuple[float, list[tuple[bytes, bytes]]]:
    """Microseconds to encode one forecast message (the wire format), and the messages."""
    best, out = math.inf, []
    for _ in range(5):
        start = time.perf_counter()
        out = encode_forecasts(batch)
        best = min(best, time.perf_counter() - start)
    return best / len(batch.series) * 1e6, out


OTHER_PRODUCER = {"librdkafka": "kafka-python", "kafka-python": "librdkafka"}


def _name(what: str) -> str:
    """A fresh topic for one timing."""
    return f"bench-{what}-{uuid.uuid4().hex[:8]}"


def produce_speed(
    producer: OutProducer, topic: str, msgs: list[tuple[bytes, bytes]], keyed: bool = True
) -> dict[str, float]:
    """Microseconds a message takes through ``producer``, until flushed.

    ``keyed``: as the forecast sink sends (each message to its key's partition, one call
    a batch); otherwise one send a message, as the River loop does. Wall time, and the
    CPU time of this process (the caller's thread and the producer's own threads; the
    broker's work is not in it).
    """
    out = Producing(producer, topic)
    out.send(*msgs[0])  # metadata and connection first
    out.flush()
    start, cpu = time.perf_counter(), time.process_time()
    if keyed:
        out.send_keyed(msgs)
    else:
        for key, value in msgs:
            out.send(key, value)
    out.flush()
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    producer.close()
    return {"wall_us": took / len(msgs) * 1e6, "cpu_us": cpu / len(msgs) * 1e6}


def model_speed(cfg: ForecasterConfig, n_series: int, batch: int) -> dict[str, float]:
    """The model's share of an event: learning and forecasting, and retraining.

    Each series learns a full history (retraining off, in batches of ``batch``); one
    retrain is timed and spread over its schedule's ``retrain_every`` events. Kernels are
    compiled (or loaded) on one series first, so no figure times their compilation.
    """
    msgs = sensor_messages(n_series, cfg.history, seed=1)
    ev = Decoder().decode_batch([Message("t", 0, i, k, v) for i, (k, v) in enumerate(msgs)])
    quiet = replace(cfg, retrain_every=0, first_retrain=0, retrain_interval=0.0,
                    background=False, swap_delay=0)  # fmt: skip
    one = [i for i, sid in enumerate(ev.series) if sid == ev.series[0]]
    (warm := OnlineForecaster(quiet)).learn([ev.series[0]] * len(one), ev.ts[one], ev.values[one])
    warm.retrain_now()
    model = OnlineForecaster(quiet)
    start = time.perf_counter()
    for i in range(0, len(ev), batch):
        model.learn(ev.series[i : i + batch], ev.ts[i : i + batch], ev.values[i : i + batch])
    learn_us = (time.perf_counter() - start) / len(ev) * 1e6
    start = time.perf_counter()
    if not model.retrain_now():  # a history this short holds no training window
        msg = f"history ({cfg.history}) is too short for a retrain"
        raise RuntimeError(msg)
    retrain_s = time.perf_counter() - start
    every = cfg.retrain_every or math.inf
    return {"learn_us": learn_us, "retrain_seconds": retrain_s,
            "retrain_us": retrain_s / every * 1e6}  # fmt: skip


def budget(
    bare_rate: float,
    stages: dict[str, float],
    goal: float,
    cores: int,
    other_produce_us: float | None = None,
) -> dict[str, Any]:
    """What the goal leaves per event beside what each stage of the service costs.

    ``stages`` are CPU microseconds an event: reading it (as the bare consumer does),
    decoding it, learning, retraining (spread over its schedule), encoding and producing
    its forecast. At ``goal`` times the bare rate an event may take ``bare_us / goal``
    of wall time, so ``cores`` cores give ``cores * bare_us / goal`` of CPU time an
    event. The best ratio any split of the stages over processes could reach is
    ``cores * bare_us / (sum of the stages)``. With ``other_produce_us`` (the CPU time a
    message of the producer ``[kafka] producer`` did not choose) the best ratios with that
    producer instead are added.
    """
    bare_us = 1e6 / bare_rate
    cpu_us = sum(stages.values())
    free_producer = cpu_us - stages["produce_us"]

    def ratio(work_us: float, n_cores: int) -> float:  # never above the bare rate itself
        return 1.0 if work_us <= 0 else min(1.0, n_cores * bare_us / work_us)

    out = {
        "bare_us": bare_us, "stages_us": stages, "cpu_us": cpu_us, "cores": cores,
        "goal_allows_cpu_us": cores * bare_us / goal,
        "best_ratio_one_core": ratio(cpu_us, 1),
        "best_ratio_all_cores": ratio(cpu_us, cores),
        "best_ratio_all_cores_free_producer": ratio(free_producer, cores),
        "best_ratio_all_cores_free_producer_no_retrain":
            ratio(free_producer - stages["retrain_us"], cores),
    }  # fmt: skip
    if other_produce_us is not None:
        out["best_ratio_all_cores_other_producer"] = ratio(free_producer + other_produce_us, cores)
        out["best_ratio_all_cores_other_producer_no_retrain"] = ratio(
            free_producer - stages["retrain_us"] + other_produce_us, cores
        )
    return out


def run(
    bootstrap: str | None = None,
    api_version: str = "auto",
    n_series: int = 1000,
    per_series: int = 100,
    rounds: int = 3,
    config: ConfigFile = FLEET,
) -> dict[str, Any]:
    """Produce one topic, then time the bare consumer, the service and the River loop on it.

    The producers are timed on the service's forecast messages: the service's own
    (``[kafka] producer``) and the other one, for the budget; the River loop's messages
    through kafka-python's, as that loop sends them.
    """
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
        topic = f"bench-in-{uuid.uuid4().hex[:8]}"
        _produce(settings.kafka, topic, msgs)
        *_, partitions = bare_consumer(settings.kafka, topic, n, settings.kafka.max_poll_records)
        bare: list[float] = []
        bare_cpu: list[float] = []
        full: list[float] = []
        river: list[float] = []
        details: dict[str, Any] = {}
        cfg = settings.forecaster_config()
        for _ in range(rounds):
            took, cpu, _ = bare_consumer(settings.kafka, topic, n, settings.kafka.max_poll_records)
            bare.append(took)
            bare_cpu.append(cpu)
            took, details = full_service(settings, topic, n, work / "ckpt")
            full.append(took)
            out_topic = f"bench-river-{uuid.uuid4().hex[:8]}"
            river.append(river_loop(settings.kafka, topic, out_topic, n, cfg.horizon)[0])
        encode_us, forecasts = encode_speed(forecast_messages(20_000, cfg.horizon))
        kc = settings.kafka
        other = kc.model_copy(update={"producer": OTHER_PRODUCER[kc.producer]})
        produce = produce_speed(make_output_producer(kc), _name("produce"), forecasts)
        other_produce = produce_speed(make_output_producer(other), _name("other"), forecasts)
        river_stages, river_msgs = river_stage_costs(msgs[:20_000], cfg.horizon)
        river_produce = produce_speed(KafkaPythonProducer(make_producer(kc)), _name("rp"),
                                      river_msgs, keyed=False)  # fmt: skip
    bare_rate, river_rate = n / statistics.median(bare), n / statistics.median(river)
    full_rate = n / statistics.median(full)
    decode = decode_speed(msgs[:20_000])
    model = model_speed(cfg, n_series, max(1, settings.kafka.max_poll_records // partitions))
    stages = {"read_us": statistics.median(bare_cpu) / n * 1e6,
              "decode_us": decode["decoder_us"], "learn_us": model["learn_us"],
              "retrain_us": model["retrain_us"], "encode_us": encode_us,
              "produce_us": produce["cpu_us"]}  # fmt: skip
    return {
        "events": n, "series": n_series, "rounds": rounds, "partitions": partitions,
        "bootstrap": bootstrap, "api_version": api_version, "config": str(config),
        "bare_events_per_s": bare_rate, "service_events_per_s": full_rate,
        "service_over_bare": full_rate / bare_rate, "goal": 0.7,
        "river_events_per_s": river_rate, "service_over_river": full_rate / river_rate,
        "river_goal": 4.0, "river_stages_us": {
            "read_us": stages["read_us"], **river_stages, "produce_us": river_produce["cpu_us"]},
        "service_run": details, "decode": decode,
        "encode_us": encode_us, "producer": settings.kafka.producer, "produce": produce,
        "other_producer": other.producer, "other_produce": other_produce, "model": model,
        "budget": budget(bare_rate, stages, 0.7, len(os.sched_getaffinity(0)),
                         other_produce["cpu_us"]),
    }  # fmt: skip
