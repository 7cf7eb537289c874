"""``forecaster bench checkpoints``: the folder store and the Kafka store, side by side.

For each fleet size a model of the given config learns every series' full history
(``history`` events each, retraining off: this measures state, not training). Its
checkpoint is then written and restored through both stores, ``rounds`` times each:
write time (the folder's fsyncs; the topic's chunks and manifest, acknowledged by all
in-sync replicas), bytes per checkpoint (the file; the live chunks and the manifest with
their keys) and restore time (load and ``OnlineForecaster.restore``; for Kafka by a new
store, as a new owner would, reading the state partition from its start). The local
broker is started unless ``bootstrap`` is given.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from forecaster import ForecasterConfig, OnlineForecaster
from pipelines.configs import ConfigFile, load_model_config
from pipelines.engine.checkpoint import Checkpoint, CheckpointStore, StateStore
from pipelines.kafka.local import LOCAL_API_VERSION, LocalBroker
from pipelines.kafka.options import KafkaSettings
from pipelines.kafka.state import KafkaStateStore, make_state_store

SIZES = (1_000, 10_000)
TOPIC = "bench-in"


def filled_model(cfg: ForecasterConfig, n_series: int, batch: int = 20_000) -> OnlineForecaster:
    """A model whose every series holds ``history`` events (retraining off)."""
    model = OnlineForecaster(replace(cfg, background=False, first_retrain=0, retrain_every=0,
                                     retrain_interval=0.0, swap_delay=0))  # fmt: skip
    rng = np.random.default_rng(n_series)
    names = np.array([f"sensor-{i:06d}" for i in range(n_series)])
    phase = rng.uniform(0, 2 * np.pi, n_series)
    events = cfg.history * n_series
    step = np.arange(events) // n_series
    ts = np.asarray(1.7e9 + step * 300.0, dtype=np.float64)
    who = np.arange(events) % n_series
    values = np.sin(2 * np.pi * step / 288 + phase[who]) + 0.1 * rng.standard_normal(events)
    for lo in range(0, events, batch):
        sel = slice(lo, lo + batch)
        model.learn(names[who[sel]], ts[sel], np.asarray(values[sel], dtype=np.float64))
    return model


def _kafka_bytes(store: KafkaStateStore) -> int:
    """The live records of the checkpoint: the manifest and the chunks it names, with keys."""
    latest = store.read(TOPIC, 0)
    key = store.manifest_key(TOPIC, 0)
    meta = json.loads(latest[key])
    live = [store.chunk_key(TOPIC, 0, meta["slot"], i) for i in range(meta["chunks"])]
    return sum(len(k) + len(latest[k]) for k in [key, *live])


def _time_store(store: StateStore, ckpt: Checkpoint, rounds: int) -> list[float]:
    took = []
    for i in range(rounds):
        start = time.perf_counter()
        store.save_all([replace(ckpt, next_offset=ckpt.next_offset + i)])
        took.append(time.perf_counter() - start)
    return took


def _restore(store: StateStore) -> float:
    start = time.perf_counter()
    got = store.load(TOPIC, 0)
    assert got is not None
    OnlineForecaster.restore(got.snapshot)
    return time.perf_counter() - start


def measure(cfg: ForecasterConfig, n_series: int, rounds: int, work: Path,
            kafka: KafkaSettings, local: LocalBroker | None) -> dict[str, Any]:  # fmt: skip
    """Both stores' write, size and restore figures for one fleet size."""
    model = filled_model(cfg, n_series)
    start = time.perf_counter()
    snapshot = model.snapshot()
    snapshot_s = time.perf_counter() - start
    ckpt = Checkpoint(TOPIC, 0, 1, cfg.to_dict(), time.time(), snapshot)
    folder = CheckpointStore(work / f"ckpt-{n_series}")
    folder_write = _time_store(folder, ckpt, rounds)
    folder_restore = [_restore(CheckpointStore(folder.root)) for _ in range(rounds)]
    topic = f"bench-state-{uuid.uuid4().hex[:8]}"
    if local is not None:  # as users create it; another broker auto-creates it
        local.create_topic(topic, 4, {"cleanup.policy": "compact"})
    out = {"series": n_series, "snapshot_bytes": len(snapshot), "snapshot_seconds": snapshot_s,
           "folder": {"write_seconds": statistics.median(folder_write),
                      "bytes": folder.path(TOPIC, 0).stat().st_size,
                      "restore_seconds": statistics.median(folder_restore)}}  # fmt: skip
    writer = make_state_store(kafka, topic)
    try:
        kafka_write = _time_store(writer, ckpt, rounds)
        kafka_bytes = _kafka_bytes(writer)
    finally:
        writer.close()
    restores = []
    for _ in range(rounds):
        reader = make_state_store(kafka, topic)  # a new owner: nothing cached
        try:
            restores.append(_restore(reader))
        finally:
            reader.close()
    out["kafka"] = {"write_seconds": statistics.median(kafka_write), "bytes": kafka_bytes,
                    "restore_seconds": statistics.median(restores), "topic": topic,
                    "chunk_bytes": writer.state.chunk_bytes}  # fmt: skip
    return out


def run(config: ConfigFile, sizes: tuple[int, ...] = SIZES, rounds: int = 3,
        bootstrap: str | None = None, api_version: str = "auto") -> dict[str, Any]:  # fmt: skip
    """Every size through both stores; the median of ``rounds`` writes and restores."""
    cfg = load_model_config(config, background=False)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ckpt-")))
        local = None
        if bootstrap is None:
            local = LocalBroker(work / "kafka", partitions=4)
            bootstrap, api_version = local.start(), LOCAL_API_VERSION
            stack.callback(local.stop)
        kafka = KafkaSettings(bootstrap_servers=bootstrap, api_version=api_version,
                              group_id="bench-checkpoints")  # fmt: skip
        rows = [measure(cfg, n, rounds, work, kafka, local) for n in sizes]
    return {"config": str(config), "rounds": rounds, "bootstrap": bootstrap,
            "max_message_bytes": kafka.max_message_bytes, "rows": rows}  # fmt: skip
