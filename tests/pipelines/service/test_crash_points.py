"""Issue 7.3: SIGKILL the service at seeded random moments, over and over.

After every kill the checkpoints on disk load (never a half-written file); at the end
every input offset has its forecast, and every forecast, duplicates included, equals an
uninterrupted run's.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import orjson
import pytest

from pipelines.engine.checkpoint import CheckpointStore
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


def test_kill_9_at_random_points_never_loses_or_changes_a_forecast(
    broker: Broker, tmp_path: Path
) -> None:
    topics = fresh_topics(broker)
    msgs = sensor_events(n_series=20, per_series=300, seed=8)
    broker.produce(topics["input"], msgs)
    group = f"g-kills-{topics['input']}"
    kafka = {**broker.kafka_settings(group), "session_timeout_ms": 1000,
             "heartbeat_interval_ms": 300, "max_poll_records": 50}  # fmt: skip
    # Small batches and frequent checkpoints and retrains: kills land mid-poll,
    # mid-retrain, mid-checkpoint-write and between flush and commit.
    config = write_settings(tmp_path / "s.toml", {
        "model": {**MODEL, "retrain_every": 100}, "kafka": kafka, "topics": topics,
        "checkpoint": {"dir": str(tmp_path / "ckpt"), "every_events": 60, "every_seconds": 0.2},
        "metrics": {"port": 0},
    })  # fmt: skip
    store = CheckpointStore(tmp_path / "ckpt")
    rng = random.Random(8)
    log = tmp_path / "service.log"
    kills = 0
    output = EndOffsets(broker, topics["output"])
    for _ in range(KILLS):
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
        for p in range(4):  # whatever moment it died at, the files on disk are whole
            store.load(topics["input"], p)
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
