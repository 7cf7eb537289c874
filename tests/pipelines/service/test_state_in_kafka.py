"""Issue 17: the service with ``[checkpoint] store = "kafka"`` against the real broker.

Two instances on separate folders hand partitions over through the state topic; a
partition that starts with no checkpoint although its group committed offsets is
warned about and counted, with either store; and a bad chunk set stops the service with
one line and exit code 2.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from pipelines.kafka.options import KafkaSettings
from pipelines.kafka.state import make_state_store
from pipelines.service.assemble import build_service
from pipelines.service.settings import load_settings
from tests.pipelines.broker import Broker
from tests.pipelines.service.test_service_kafka import (
    by_event,
    count_output,
    fresh_topics,
    hand_over,
    held,
    replay,
    run_in_thread,
    start_service,
    wait_for,
)
from tests.pipelines.streams import MODEL, sensor_events, write_settings

pytestmark = pytest.mark.kafka


def config_for(broker: Broker, path: Path, topics: dict[str, str], group: str,
               checkpoint: dict[str, Any]) -> Path:  # fmt: skip
    return write_settings(path, {
        "model": MODEL,
        "kafka": {**broker.kafka_settings(group), "max_message_bytes": 10_000},
        "topics": topics,
        "checkpoint": {"every_events": 200, "every_seconds": 3600.0, **checkpoint},
        "metrics": {"port": 0},
    })  # fmt: skip


def test_a_partition_moves_to_an_instance_with_its_own_folder_through_the_state_topic(
    broker: Broker, tmp_path: Path
) -> None:
    topics = fresh_topics(broker)
    state = broker.new_topic("state", {"cleanup.policy": "compact"})
    msgs = sensor_events(n_series=16, per_series=120, seed=3)
    group = f"g-pair-{topics['input']}"
    configs = [
        config_for(broker, tmp_path / f"{n}.toml", topics, group,
                   {"store": "kafka", "topic": state, "dir": str(tmp_path / f"ckpt-{n}")})
        for n in ("a", "b")
    ]  # fmt: skip
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a = start_service(configs[0], log_a)
    b = start_service(configs[1], log_b)
    wait_for(lambda: held(log_a) and held(log_b) and held(log_a) | held(log_b) == {0, 1, 2, 3})
    moved = held(log_a)
    hand_over(broker, topics, msgs, (a, log_a), (b, log_b))
    assert not (tmp_path / "ckpt-a").exists() and not (tmp_path / "ckpt-b").exists()
    text = log_b.read_text()
    for p in moved:  # restored from A's checkpoints in the topic, and timed
        assert f"restored ('{topics['input']}', {p}) at offset" in text
    assert f"from state topic {state!r}" in text and "its model state is lost" not in text
    docs = [orjson.loads(r.value) for r in broker.read_all(
        topics["output"], expect=count_output(broker, topics["output"]))]  # fmt: skip
    got = by_event(docs)
    assert len(got) == len(msgs)  # no input offset without its forecast
    # Every forecast, before and after the hand-over, equals an uninterrupted run's: B
    # continued A's partitions from their state (a fresh model would differ).
    assert got == replay(broker, topics["input"], load_settings(configs[1]))
    for d in docs:
        assert (d["yhat"], d["lower"], d["upper"], d["model_version"]) == got[
            (d["series"], d["ts"])
        ]


def consume_all(config: Path, registry: CollectorRegistry, events: int) -> Any:
    """Run a service until it has all four partitions and ``events`` events; stop it."""
    service = build_service(load_settings(config), registry=registry)
    th = run_in_thread(service)
    r = service.runner
    wait_for(lambda: r.started and len(r.tasks) == 4 and r.stats.polls > 2
             and r.stats.events == events)  # fmt: skip
    service.stop.set()
    th.join(60)
    assert not th.is_alive()
    return service


def test_a_lost_checkpoint_of_a_committed_partition_is_warned_and_counted_with_either_store(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    topics = fresh_topics(broker)
    msgs = sensor_events(n_series=8, per_series=40, seed=5)
    broker.produce(topics["input"], msgs)
    group = f"g-lost-{topics['input']}"
    ends = broker.end_offsets(topics["input"])
    first = config_for(broker, tmp_path / "a.toml", topics, group, {"dir": str(tmp_path / "a")})
    service = consume_all(first, CollectorRegistry(), len(msgs))
    assert service.runner.stats.state_missing == 0  # nothing committed before it
    assert broker.committed(topics["input"], group) == ends
    empty_topic = broker.new_topic("state", {"cleanup.policy": "compact"})
    for name, checkpoint in {
        "kafka": {"store": "kafka", "topic": empty_topic},
        "folder": {"dir": str(tmp_path / "empty")},
    }.items():
        caplog.clear()
        registry = CollectorRegistry()
        config = config_for(broker, tmp_path / f"{name}.toml", topics, group, checkpoint)
        service = consume_all(config, registry, 0)
        assert service.runner.stats.state_missing == 4, name
        assert registry.get_sample_value("forecaster_state_missing_total") == 4, name
        warned = [r for r in caplog.records if "its model state is lost" in r.getMessage()]
        assert len(warned) == 4 and all(r.levelname == "WARNING" for r in warned), name


def test_a_bad_chunk_set_stops_the_service_with_one_line_and_exit_code_2(
    broker: Broker, tmp_path: Path
) -> None:
    topics = fresh_topics(broker)
    state = broker.new_topic("state", {"cleanup.policy": "compact"})
    msgs = sensor_events(n_series=3, per_series=40, seed=6)
    broker.produce_to_partition(topics["input"], msgs, partition=0)
    group = f"g-bad-{topics['input']}"
    checkpoint = {"store": "kafka", "topic": state, "dir": str(tmp_path / "ckpt")}
    config = config_for(broker, tmp_path / "s.toml", topics, group, checkpoint)
    cmd = [sys.executable, "-m", "pipelines", "run", "--config", str(config), "--log-level",
           "error", "--exit-when-idle", "2"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    store = make_state_store(KafkaSettings(**{**broker.kafka_settings(group),
                                              "max_message_bytes": 10_000}), state)  # fmt: skip
    try:
        store.load(topics["input"], 0)  # whole
        slot = store._known[(topics["input"], 0)].slot
        prod = KafkaProducer(**broker.client_opts())
        prod.send(state, key=store.chunk_key(topics["input"], 0, slot, 1), value=None,
                  partition=store.state_partition(topics["input"], 0))  # fmt: skip
        prod.close()
        chunks = store.read(topics["input"], 0)[store.manifest_key(topics["input"], 0)]
    finally:
        store.close()
    n = orjson.loads(chunks)["chunks"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert out.returncode == 2, out.stderr[-2000:]
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error: ")]
    assert errors == [f"error: state topic {state!r} ({topics['input']} partition 0): "
                      f"chunk 1 of {n} (slot {slot}) is missing"]  # fmt: skip
    assert "Traceback" not in out.stderr
