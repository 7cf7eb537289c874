"""Issue 7.3: SIGKILL the service at seeded random moments, over and over.

After every kill the checkpoints on disk load (never a half-written file); at the end
every input offset has its forecast, and every forecast, duplicates included, equals an
uninterrupted run's. Issue 17: the same with the checkpoints in Kafka, each life on an
empty folder (a new machine), and torn chunk sets (a death mid-chunk) at seeded lives.
"""

from __future__ import annotations

import json
import random
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipelines.engine.checkpoint import CheckpointStore
from pipelines.kafka.options import KafkaSettings
from pipelines.kafka.state import CHUNK_HEAD, CHUNK_MAGIC, KafkaStateStore, make_state_store
from pipelines.service.settings import load_settings
from tests.pipelines.broker import Broker, EndOffsets
from tests.pipelines.service.test_service_kafka import (
    count_output,
    distinct_forecasts,
    fresh_topics,
    replay,
    start_service,
    stop_service,
    wait_for,
)
from tests.pipelines.streams import MODEL, sensor_events, write_settings

pytestmark = pytest.mark.kafka
KILLS = 20


AfterKill = Callable[[int, str], None]  # the life just killed, the input topic


def kill_at_seeded_points(broker: Broker, tmp_path: Path, checkpoint: dict[str, Any],
                          after_kill: AfterKill, kafka_extra: dict[str, Any]) -> str:  # fmt: skip
    """Start, kill -9 a seeded number of forecasts later, over and over; then check it all.

    Returns the services' log.
    """
    topics = fresh_topics(broker)
    msgs = sensor_events(n_series=20, per_series=300, seed=8)
    broker.produce(topics["input"], msgs)
    group = f"g-kills-{topics['input']}"
    kafka = {**broker.kafka_settings(group), "session_timeout_ms": 1000,
             "heartbeat_interval_ms": 300, "max_poll_records": 50, **kafka_extra}  # fmt: skip
    # Small batches and frequent checkpoints and retrains: kills land mid-poll,
    # mid-retrain, mid-checkpoint-write and between flush and commit.
    config = write_settings(tmp_path / "s.toml", {
        "model": {**MODEL, "retrain_every": 100}, "kafka": kafka, "topics": topics,
        "checkpoint": {**checkpoint, "every_events": 60, "every_seconds": 0.2},
        "metrics": {"port": 0},
    })  # fmt: skip
    rng = random.Random(8)
    log = tmp_path / "service.log"
    kills = 0
    output = EndOffsets(broker, topics["output"])
    for life in range(KILLS):
        before = output.total()
        proc = start_service(config, log)
        # Each life is killed a seeded number of forecasts after its first, not after a
        # time: a faster machine gets as many kill points as a slow one.
        target = before + rng.randint(1, 300)
        deadline = time.monotonic() + 120
        while output.total() < target and proc.poll() is None:
            assert time.monotonic() < deadline, "no forecasts came out"
            time.sleep(0.01)
        proc.kill()
        proc.wait(30)
        kills += 1
        after_kill(life, topics["input"])
        if len(distinct_forecasts(broker, topics["output"])) == len(msgs):
            break  # all done before this kill: the rest would find nothing to do
    output.consumer.close()
    assert kills >= KILLS // 2, "the stream ended before half the kill points"
    lives = log.read_text().count("pipelines.engine.loop: assigned [")
    proc = start_service(config, log)
    ends = broker.end_offsets(topics["input"])
    wait_for(lambda: log.read_text().count("pipelines.engine.loop: assigned [") > lives)
    wait_for(lambda: broker.committed(topics["input"], group) == ends, 240)  # caught up
    assert len(distinct_forecasts(broker, topics["output"])) == len(msgs)
    assert stop_service(proc) == 0, log.read_text()[-3000:]
    out = broker.read_all(topics["output"], expect=count_output(broker, topics["output"]))
    docs = [orjson.loads(r.value) for r in out]
    expected = replay(broker, topics["input"], load_settings(config))
    assert {(d["series"], d["ts"]) for d in docs} == set(expected)  # none lost
    for d in docs:  # before, after and duplicated: all equal to an uninterrupted run
        assert (d["yhat"], d["lower"], d["upper"], d["model_version"]) == expected[
            (d["series"], d["ts"])
        ]
    return log.read_text()


def test_kill_9_at_random_points_never_loses_or_changes_a_forecast(
    broker: Broker, tmp_path: Path
) -> None:
    store = CheckpointStore(tmp_path / "ckpt")

    def files_are_whole(life: int, topic: str) -> None:
        for p in range(4):  # whatever moment it died at, the files on disk are whole
            store.load(topic, p)

    kill_at_seeded_points(broker, tmp_path, {"dir": str(tmp_path / "ckpt")}, files_are_whole, {})


def tear(store: KafkaStateStore, topic: str, partition: int, rng: random.Random) -> bool:
    """Leave what a death mid-chunk leaves: the first chunks of a newer checkpoint in the
    slot the manifest does not use, and no manifest for them. False: no checkpoint yet."""
    latest = store.read(topic, partition)
    value = latest.get(store.manifest_key(topic, partition))
    if value is None:
        return False
    meta = json.loads(value)
    n = int(meta["chunks"]) + 1
    ident = uuid.uuid4().bytes
    for i in range(rng.randint(1, n - 1)):
        head = CHUNK_MAGIC + CHUNK_HEAD.pack(ident, i, n)
        store._send(store.chunk_key(topic, partition, 1 - int(meta["slot"]), i),
                    head + rng.randbytes(store.state.chunk_bytes),
                    store.state_partition(topic, partition))  # fmt: skip
    store._flush()
    return True


def test_kill_9_with_checkpoints_in_kafka_restores_on_an_empty_folder(
    broker: Broker, tmp_path: Path
) -> None:
    state_topic = broker.new_topic("state", {"cleanup.policy": "compact"})
    folder = tmp_path / "ckpt"
    rng = random.Random(17)
    torn = 0

    def restorable_from_kafka_alone(life: int, topic: str) -> None:
        nonlocal torn
        shutil.rmtree(folder, ignore_errors=True)  # the next life is a new machine
        cfg = KafkaSettings(bootstrap_servers=broker.bootstrap, api_version=broker.api_version,
                            group_id=f"g-kills-{topic}", max_message_bytes=10_000)  # fmt: skip
        store = make_state_store(cfg, state_topic)
        try:
            for p in range(4):  # whatever moment it died at, the latest whole checkpoint loads
                store.load(topic, p)
            if life % 3 == 1:  # seeded lives end mid-chunk, whatever the kill hit
                torn += sum(tear(store, topic, p, rng) for p in range(4))
        finally:
            store.close()

    # 10 kB messages: a model's checkpoint is several chunks, so kills land between them.
    log = kill_at_seeded_points(broker, tmp_path,
                          {"store": "kafka", "topic": state_topic, "dir": str(folder)},
                          restorable_from_kafka_alone, {"max_message_bytes": 10_000})  # fmt: skip
    assert torn > 0  # torn chunk sets were really there for the lives after them
    assert log.count(f"from state topic {state_topic!r}") >= 4  # later lives restored from it
    assert "starts with a new model" not in log and "its model state is lost" not in log
