"""The service against a real broker (acceptance of issue 4): end to end, crash, hand-over,
dead letters. The broker comes from tests/pipelines/broker.py."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from forecaster import OnlineForecaster
from pipelines.engine.checkpoint import CheckpointStore
from pipelines.engine.encode import decode_dead_letter
from pipelines.engine.loop import Runner
from pipelines.engine.memory import ListDeadLetters, ListSink, MemorySource
from pipelines.engine.records import Message
from pipelines.engine.runstate import LoopSettings
from pipelines.service.assemble import Service, build_service
from pipelines.service.settings import Settings, load_settings
from tests.pipelines.broker import PARTITIONS, Broker, EndOffsets
from tests.pipelines.streams import MODEL, sensor_events, write_settings

pytestmark = pytest.mark.kafka


def settings_for(broker: Broker, work: Path, topics: dict[str, str], group_name: str,
                 every_events: int = 500, model: dict[str, Any] | None = None) -> Path:  # fmt: skip
    group = f"{group_name}-{topics['input']}"  # a group of its own, even on a shared broker
    return write_settings(work / "service.toml", {
        "model": model or MODEL,
        "kafka": broker.kafka_settings(group),
        "topics": topics,
        "checkpoint": {"dir": str(work / "ckpt"), "every_events": every_events,
                       "every_seconds": 3600.0},
        "metrics": {"port": 0},  # any free port: services run side by side
    })  # fmt: skip


def fresh_topics(broker: Broker) -> dict[str, str]:
    return {"input": broker.new_topic("in"), "output": broker.new_topic("out"),
            "dead_letter": broker.new_topic("dlq")}  # fmt: skip


def run_in_thread(service: Service) -> threading.Thread:
    th = threading.Thread(target=service.run, daemon=True)
    th.start()
    return th


def wait_for(cond: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def replay(broker: Broker, topic: str, settings: Settings) -> dict[tuple[str, str], Any]:
    """The forecasts the model gives the input topic's records, per partition, offline."""
    recs = broker.read_all(topic)
    parts: dict[tuple[str, int], list[Message]] = {}
    for r in sorted(recs, key=lambda r: (r.partition, r.offset)):
        parts.setdefault((r.topic, r.partition), []).append(
            Message(r.topic, r.partition, r.offset, r.key, r.value)
        )
    sink = ListSink()
    cfg = settings.forecaster_config()
    runner = Runner(MemorySource(parts, batch=97), sink, ListDeadLetters(),
                    CheckpointStore(Path(os.devnull).parent / "unused"),
                    lambda: OnlineForecaster(cfg),
                    LoopSettings(every_events=10**12, every_seconds=1e12))  # fmt: skip
    runner.start()
    while not runner.source.exhausted:  # type: ignore[attr-defined]
        runner.run_once()
    while any(t.backlog for t in runner.tasks.values()):
        runner.run_once()
    return by_event([orjson.loads(v) for _, v in sink.messages])


def by_event(docs: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    return {(d["series"], d["ts"]): (d["yhat"], d["lower"], d["upper"], d["model_version"])
            for d in docs}  # fmt: skip


@pytest.mark.parametrize("producer", ["librdkafka", "kafka-python"])
def test_end_to_end_forecasts_equal_replay_and_offsets_reach_the_end(
    broker: Broker, workdir: Path, producer: str
) -> None:
    topics = fresh_topics(broker)
    msgs = sensor_events(n_series=12, per_series=100, seed=1)
    broker.produce(topics["input"], msgs)
    settings = load_settings(settings_for(broker, workdir, topics, "g-e2e"),
                             env={"FORECASTER_KAFKA__PRODUCER": producer})  # fmt: skip
    assert settings.kafka.producer == producer
    service = build_service(settings)
    th = run_in_thread(service)
    out = broker.read_all(topics["output"], expect=len(msgs))
    service.stop.set()
    th.join(60)
    assert not th.is_alive()
    docs = [orjson.loads(r.value) for r in out]
    got = by_event(docs)
    assert len(got) == len(msgs)  # every (series, ts) has its forecast
    assert all(r.key == d["series"].encode() for r, d in zip(out, docs, strict=True))
    assert broker.committed(topics["input"], f"g-e2e-{topics['input']}") == broker.end_offsets(
        topics["input"]
    )
    assert got == replay(broker, topics["input"], settings)  # bit for bit, model versions too
    assert max(d["model_version"] for d in docs) >= 2  # retrains happened while consuming
    first = docs[0]
    assert set(first) == {"series", "ts", "issued_at", "horizon", "yhat", "lower", "upper",
                          "model_version", "model_id", "anomaly"}  # fmt: skip
    assert len(first["horizon"]) == len(first["yhat"]) == MODEL["horizon"]


STARTED: list[subprocess.Popen[bytes]] = []  # killed after each test (conftest)


def start_service(config: Path, log: Path) -> subprocess.Popen[bytes]:
    fh = log.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "pipelines", "run", "--config", str(config),
                             "--log-level", "debug"],
                            stdout=fh, stderr=subprocess.STDOUT)  # fmt: skip
    STARTED.append(proc)
    return proc


def stop_service(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


def count_output(broker: Broker, topic: str) -> int:
    return sum(broker.end_offsets(topic).values())


def distinct_forecasts(broker: Broker, topic: str) -> dict[tuple[str, str], Any]:
    out = broker.read_all(topic, expect=count_output(broker, topic))
    return by_event([orjson.loads(r.value) for r in out])


def test_kill_9_and_restart_loses_nothing_and_changes_nothing(
    broker: Broker, workdir: Path
) -> None:
    topics = fresh_topics(broker)
    msgs = sensor_events(n_series=12, per_series=150, seed=2)
    broker.produce(topics["input"], msgs)
    every, batch = 300, 100
    config = settings_for(broker, workdir, topics, "g-crash", every_events=every)
    text = config.read_text().replace("[kafka]\n", f"[kafka]\nmax_poll_records = {batch}\n")
    config.write_text(text)
    log = workdir / "service.log"
    output = EndOffsets(broker, topics["output"])
    proc = start_service(config, log)
    while output.total() < len(msgs) // 2:  # polled often: a fast machine would finish
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.01)
    proc.kill()  # SIGKILL: no flush, no checkpoint, no commit
    output.consumer.close()
    proc.wait(30)
    first_run = count_output(broker, topics["output"])
    assert first_run < len(msgs)  # it really died mid-stream
    proc = start_service(config, log)
    wait_for(lambda: len(distinct_forecasts(broker, topics["output"])) == len(msgs))
    assert stop_service(proc) == 0, log.read_text()[-3000:]
    out = broker.read_all(topics["output"], expect=count_output(broker, topics["output"]))
    docs = [orjson.loads(r.value) for r in out]
    keys = Counter((d["series"], d["ts"]) for d in docs)
    assert len(keys) == len(msgs)  # every input offset has its forecast
    duplicates = len(docs) - len(msgs)
    # Re-read after the restart: what came after the last checkpoint. At most one
    # checkpoint interval and the poll batch that crossed it; a partition whose retrain
    # is running when a checkpoint falls due is saved once the retrain is done (its
    # state needs the result), meanwhile learning up to swap_delay events and holding a
    # poll's records, while the others are saved at every poll (one batch more). A loop
    # that never checkpointed would re-read all of the first run: at least half the input.
    bound = every + 3 * batch + PARTITIONS * MODEL["swap_delay"]
    assert bound < len(msgs) // 2
    assert 0 <= duplicates <= bound
    expected = replay(broker, topics["input"], load_settings(config))
    for d in docs:  # before, after and duplicated: all equal to an uninterrupted run
        key = (d["series"], d["ts"])
        assert (d["yhat"], d["lower"], d["upper"], d["model_version"]) == expected[key]
    assert broker.committed(topics["input"], f"g-crash-{topics['input']}") == broker.end_offsets(
        topics["input"]
    )


def held(log: Path) -> set[int]:
    """The partitions a service holds, from its latest "assigned" / "revoked" log line."""
    parts: set[int] = set()
    for line in log.read_text().splitlines():
        if "pipelines.engine.loop: assigned [" in line:
            parts |= {int(p) for p in re.findall(r", (\d+)\)", line)}
        elif "pipelines.engine.loop: revoked [" in line:
            parts -= {int(p) for p in re.findall(r", (\d+)\)", line)}
    return parts


Life = tuple[subprocess.Popen[bytes], Path]  # a service process and its log


def hand_over(broker: Broker, topics: dict[str, str], msgs: list[tuple[bytes, bytes]],
              a: Life, b: Life) -> None:  # fmt: skip
    """Half the events, stop A; the other half, B takes over all; stop B."""
    half = len(msgs) // 2
    broker.produce(topics["input"], msgs[:half])
    wait_for(lambda: count_output(broker, topics["output"]) >= half)
    assert stop_service(a[0]) == 0, a[1].read_text()[-3000:]
    broker.produce(topics["input"], msgs[half:])
    wait_for(lambda: len(distinct_forecasts(broker, topics["output"])) == len(msgs))
    assert held(b[1]) == {0, 1, 2, 3}  # B took over A's partitions
    assert stop_service(b[0]) == 0, b[1].read_text()[-3000:]


def test_two_instances_split_partitions_and_hand_over_state(broker: Broker, workdir: Path) -> None:
    topics = fresh_topics(broker)
    msgs = sensor_events(n_series=16, per_series=120, seed=3)
    config = settings_for(broker, workdir, topics, "g-pair", every_events=200)
    log_a, log_b = workdir / "a.log", workdir / "b.log"
    a = start_service(config, log_a)
    b = start_service(config, log_b)
    # Both in the group, each with a share: the partitions are split, none held twice.
    wait_for(lambda: held(log_a) and held(log_b) and held(log_a) | held(log_b) == {0, 1, 2, 3})
    assert not held(log_a) & held(log_b)
    hand_over(broker, topics, msgs, (a, log_a), (b, log_b))
    docs = [orjson.loads(r.value) for r in broker.read_all(
        topics["output"], expect=count_output(broker, topics["output"]))]  # fmt: skip
    got = by_event(docs)
    assert len(got) == len(msgs)  # no event lost across the hand-over
    # B continued A's partitions from A's checkpoints: a fresh model would differ.
    assert got == replay(broker, topics["input"], load_settings(config))


BAD = {
    "undecodable": (b"k", b"\xff\xfe not json"),
    "undecodable-array": (None, b"[1, 2, 3]"),
    "missing_field": (None, b'{"ts": 1700000000000, "value": 1.0}'),
    "wrong_type": (b"s-bad", b'{"series": "s-bad", "ts": 1700000000000, "value": "1.0"}'),
    "bad_timestamp": (None, b'{"series": "s-bad", "ts": "yesterday", "value": 1.0}'),
    "non_finite": (None, b'{"series": "s-bad", "ts": 1700000000000, "value": NaN}'),
    "unknown_feature": (None, b'{"series": "s-bad", "ts": 1700000000000, "value": 1.0, '
                              b'"features": {"pressure": 2.0}}'),
    "series_mismatch": (b"other", b'{"series": "s-bad", "ts": 1700000000000, "value": 1.0}'),
}  # fmt: skip


def test_malformed_messages_go_to_the_dead_letter_topic_and_the_stream_goes_on(
    broker: Broker, workdir: Path
) -> None:
    topics = fresh_topics(broker)
    good = sensor_events(n_series=1, per_series=40, seed=4)
    late = (b"sensor-000", orjson.dumps({"series": "sensor-000", "ts": 1_600_000_000_000,
                                         "value": 1.0}))  # fmt: skip
    msgs = good[:20] + list(BAD.values()) + [late] + good[20:]
    producer_msgs = list(msgs)
    # One partition for all, so the late event really is older than its series' latest.
    broker.produce_to_partition(topics["input"], producer_msgs, partition=0)
    settings = load_settings(settings_for(broker, workdir, topics, "g-dlq"))
    service = build_service(settings)
    th = run_in_thread(service)
    dead = broker.read_all(topics["dead_letter"], expect=len(BAD) + 1)
    wait_for(lambda: count_output(broker, topics["output"]) >= len(good))
    service.stop.set()
    th.join(60)
    letters = [decode_dead_letter(r.value) for r in dead]
    reasons = Counter(d["reason"] for d in letters)
    want = Counter(name.split("-")[0] for name in BAD) + Counter(out_of_order=1)
    assert reasons == want
    assert service.runner.stats.rejected == want  # counted by reason
    sent = {v for _, v in producer_msgs}
    for d in letters:
        assert d["value"] in sent  # the original bytes
        assert d["topic"] == topics["input"] and d["partition"] == 0
        assert producer_msgs[d["offset"]][1] == d["value"]  # and where they came from
        assert d["detail"]
    assert service.runner.stats.forecasts == len(good)  # the stream went on
    assert broker.committed(topics["input"], f"g-dlq-{topics['input']}")[0] == len(msgs)
