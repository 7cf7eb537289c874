"""The run loop with an in-memory source: what the service does, without a broker."""

from __future__ import annotations

import csv
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from forecaster import OnlineForecaster
from forecaster.retrain import RetrainJob
from pipelines.engine.batches import TP, ForecastBatch
from pipelines.engine.checkpoint import Checkpoint, CheckpointStore
from pipelines.engine.loop import Runner
from pipelines.engine.memory import FanOut, ListDeadLetters, ListSink, MemorySource
from pipelines.engine.ports import SinkError
from pipelines.engine.records import Message, Record, Rejected
from pipelines.engine.runstate import Clocks, LoopSettings
from pipelines.engine.task import RetrainNews
from pipelines.files.sinks import CsvSink, JsonlSink
from pipelines.service.settings import MetricsSettings
from pipelines.service.telemetry import Telemetry
from tests.pipelines.streams import MODEL, sensor_events

CLOCK = 1.7e9


def partitions(msgs: list[tuple[bytes, bytes]], n: int = 2) -> dict[TP, list[Record]]:
    """Messages spread over ``n`` partitions by key, as a keyed producer would."""
    out: dict[TP, list[Record]] = {("in", p): [] for p in range(n)}
    for key, value in msgs:
        p = sum(key) % n
        out[("in", p)].append(Message("in", p, len(out[("in", p)]), key, value))
    return out


def runner(source: MemorySource, sink: Any, store: Any, dead: Any = None, **loop: Any) -> Runner:
    settings = LoopSettings(**{"every_events": 10**9, "every_seconds": 1e9, **loop})
    return Runner(source, sink, dead or ListDeadLetters(), store, lambda: OnlineForecaster(MODEL),
                  settings, Clocks(wall=lambda: CLOCK))  # fmt: skip


def drain(r: Runner) -> None:
    if not r.started:
        r.start()
    src = r.source
    assert isinstance(src, MemorySource)
    while not src.exhausted or any(t.backlog for t in r.tasks.values()):
        r.run_once()


def test_forecasts_do_not_depend_on_the_poll_batch_size(tmp_path: Path) -> None:
    msgs = sensor_events(n_series=5, per_series=90, seed=0)
    outputs = []
    for batch in (1, 37, 10_000):
        sink = ListSink()
        r = runner(
            MemorySource(partitions(msgs), batch), sink, CheckpointStore(tmp_path / str(batch))
        )
        drain(r)
        r.close()
        outputs.append(sorted(sink.messages))
    assert outputs[0] == outputs[1] == outputs[2]  # whole messages, model versions included
    assert len(outputs[0]) == len(msgs)
    assert max(orjson.loads(v)["model_version"] for _, v in outputs[0]) >= 1


class Recorder:
    """Sink, dead-letter sink, store and source wrappers that log what happens, in order."""

    def __init__(self, source: MemorySource, root: Path) -> None:
        self.log: list[tuple[str, Any]] = []
        self.inner_source, self.store = source, CheckpointStore(root)
        self.saved: dict[TP, int] = {}

    # sink
    def write(self, batch: ForecastBatch) -> None:
        self.log.append(("write", (batch.partition, int(batch.offsets[-1]))))

    def flush(self) -> None:
        self.log.append(("flush", None))

    def close(self) -> None:
        pass

    # store
    def save(self, ckpt: Checkpoint) -> Path:
        self.log.append(("save", ((ckpt.topic, ckpt.partition), ckpt.next_offset)))
        self.saved[(ckpt.topic, ckpt.partition)] = ckpt.next_offset
        return self.store.save(ckpt)

    def save_all(self, ckpts: Sequence[Checkpoint]) -> None:
        for ckpt in ckpts:
            self.save(ckpt)

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        return self.store.load(topic, partition)

    def where(self, topic: str, partition: int) -> str:
        return self.store.where(topic, partition)

    def set_aside(self, topic: str, partition: int) -> Path:
        return self.store.set_aside(topic, partition)


def test_offsets_are_committed_only_after_flush_and_a_durable_checkpoint(tmp_path: Path) -> None:
    msgs = sensor_events(n_series=4, per_series=80, seed=1)
    source = MemorySource(partitions(msgs), batch=25)
    rec = Recorder(source, tmp_path)
    commits: list[dict[TP, int]] = []
    inner_commit = source.commit

    def commit(offsets: dict[TP, int], wait: bool = True) -> bool:
        rec.log.append(("commit", dict(offsets)))
        commits.append(dict(offsets))
        return inner_commit(offsets, wait)

    source.commit = commit  # type: ignore[method-assign]
    r = runner(source, rec, rec, every_events=60)
    drain(r)
    r.close()
    assert len(commits) >= 2
    written: dict[int, int] = {}  # partition -> last offset written to the sink
    flushed: dict[int, int] = {}
    saved: dict[TP, int] = {}
    for what, arg in rec.log:
        if what == "write":
            written[arg[0]] = arg[1]
        elif what == "flush":
            flushed = dict(written)
        elif what == "save":
            saved[arg[0]] = arg[1]
        elif what == "commit":
            for tp, off in arg.items():
                assert saved[tp] == off  # the checkpoint on disk holds exactly this offset
                assert flushed.get(tp[1], -1) >= off - 1  # every forecast before it flushed
    ends = {tp: len(recs) for tp, recs in source.partitions.items()}
    assert source.committed == ends  # everything committed at the end
    for tp, off in ends.items():
        loaded = rec.store.load(*tp)
        assert loaded is not None and loaded.next_offset == off


def test_a_restart_from_checkpoints_continues_exactly(tmp_path: Path) -> None:
    msgs = sensor_events(n_series=6, per_series=100, seed=2)
    parts = partitions(msgs)
    whole = ListSink()
    drain(r := runner(MemorySource(parts, 50), whole, CheckpointStore(tmp_path / "a")))
    r.close()
    # First life: the first 60% of each partition, then a clean stop (checkpoint + commit).
    first = ListSink()
    head = {tp: recs[: len(recs) * 6 // 10] for tp, recs in parts.items()}
    store = CheckpointStore(tmp_path / "b")
    drain(r := runner(MemorySource(head, 50), first, store))
    r.close()
    # Second life: the whole topic; each partition is restored and read from its offset.
    second = ListSink()
    r = runner(MemorySource(parts, 50), second, store)
    drain(r)
    r.close()
    assert r.stats.restored == len(parts)
    assert sorted(first.messages + second.messages) == sorted(whole.messages)


def test_the_loop_never_waits_for_a_retrain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    gate = threading.Event()
    run = RetrainJob._run

    def slow_run(job: RetrainJob) -> None:  # a retrain that takes as long as the test likes
        gate.wait(60)
        run(job)

    monkeypatch.setattr(RetrainJob, "_run", slow_run)
    msgs = sensor_events(n_series=1, per_series=200, seed=3)
    source = MemorySource(partitions(msgs, 1), batch=50)
    r = runner(source, ListSink(), CheckpointStore(tmp_path), every_events=10)
    r.start()
    for _ in range(5):
        r.run_once()
    task = r.tasks[("in", 0)]
    # Learned up to the event where the running retrain's weights are due, then paused.
    assert task.model.retrain_running
    assert task.model.events_before_wait() == 0
    assert 0 < task.model.n_events < 200
    assert source.paused == {("in", 0)}
    stopped_at = task.model.n_events
    for _ in range(3):
        assert r.run_once() == 0  # returns at once, learns nothing, checkpoints nothing
    assert task.model.n_events == stopped_at
    saved = store_offset(tmp_path)
    assert saved is not None and saved < stopped_at  # nothing saved while it trains
    gate.set()
    drain(r)
    r.close()
    assert task.model.n_events == 200 and not source.paused
    assert store_offset(tmp_path) == 200


def store_offset(root: Path) -> int | None:
    ckpt = CheckpointStore(root).load("in", 0)
    return None if ckpt is None else ckpt.next_offset


def test_file_sinks_hold_what_the_topic_gets(tmp_path: Path) -> None:
    msgs = sensor_events(n_series=3, per_series=30, seed=4)
    topic = ListSink()
    sinks = FanOut([topic, JsonlSink(tmp_path / "f.jsonl"), CsvSink(tmp_path / "f.csv")])
    dead = ListDeadLetters()
    bad = [(b"x", b"{nope")]
    drain(
        r := runner(
            MemorySource(partitions(bad + msgs, 1), 40), sinks, CheckpointStore(tmp_path), dead
        )
    )
    r.close()
    lines = (tmp_path / "f.jsonl").read_bytes().splitlines()
    assert lines == [v for _, v in topic.messages] and len(lines) == len(msgs)
    rows = list(csv.DictReader((tmp_path / "f.csv").open()))
    assert len(rows) == len(msgs) * MODEL["horizon"]
    first = orjson.loads(lines[0])
    assert [float(row["yhat"]) for row in rows[: MODEL["horizon"]]] == first["yhat"]
    assert rows[0]["series"] == first["series"] and rows[0]["step_ts"] == first["horizon"][0]
    assert [(d.reason, d.record.offset) for d in dead.rejected] == [("undecodable", 0)]
    assert isinstance(dead.rejected[0], Rejected) and r.stats.rejected["undecodable"] == 1


class FlakySink(ListSink):
    """Delivers nothing between the ``fail_from``-th and ``fail_to``-th flush (an outage)."""

    def __init__(self, fail_from: int, fail_to: int) -> None:
        super().__init__()
        self.flushes, self.fail_from, self.fail_to = 0, fail_from, fail_to
        self.delivered: list[tuple[bytes, bytes]] = []
        self.pending: list[tuple[bytes, bytes]] = []

    def write(self, batch: ForecastBatch) -> None:
        self.pending.extend(batch.messages)

    def flush(self) -> None:
        self.flushes += 1
        if self.fail_from <= self.flushes <= self.fail_to:
            # Some got through before the outage; the rest are lost.
            self.delivered.extend(self.pending[: len(self.pending) // 2])
            self.pending.clear()
            msg = "broker away"
            raise SinkError(msg)
        self.delivered.extend(self.pending)
        self.pending.clear()


def test_a_sink_outage_sends_partitions_back_to_their_checkpoints(tmp_path: Path) -> None:
    msgs = sensor_events(n_series=4, per_series=120, seed=5)
    parts = partitions(msgs)
    whole = ListSink()
    drain(r := runner(MemorySource(parts, 40), whole, CheckpointStore(tmp_path / "a")))
    r.close()
    sink = FlakySink(fail_from=3, fail_to=5)
    # Inline retrains: a checkpoint skips a partition whose retrain still runs, so with
    # background ones the number of flushes (which the outage is counted in) depended on
    # the thread's timing, and the outage sometimes outlasted the stream (1 run in 6).
    model = {**MODEL, "background": False}
    sleeps: list[float] = []
    source = MemorySource(parts, 40)
    ready: list[bool] = []
    registry = CollectorRegistry()
    telemetry = Telemetry(registry, MetricsSettings(), MODEL["horizon"], 0.9)

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        ready.append(telemetry.ready())

    clocks = Clocks(wall=lambda: CLOCK, sleep=sleep)
    r = Runner(source, sink, ListDeadLetters(), CheckpointStore(tmp_path / "b"),
               lambda: OnlineForecaster(model), LoopSettings(every_events=100, every_seconds=1e9),
               clocks)  # fmt: skip
    telemetry.warm_up_seconds = 0.0
    telemetry.attach(r)
    drain(r)
    assert telemetry.ready()  # delivering again
    r.close()
    assert ready == [False, False, False]  # not ready while backing off
    assert registry.get_sample_value("forecaster_sink_failures_total") == 3
    assert r.stats.sink_failures == 3
    assert sleeps == [0.5, 1.0, 2.0]  # doubling while the outage lasts
    delivered = set(sink.delivered)
    assert delivered == set(whole.messages)  # every forecast delivered, all equal
    assert len(sink.delivered) > len(whole.messages)  # some twice: at least once
    assert source.committed == {tp: len(recs) for tp, recs in parts.items()}


def test_records_returned_twice_are_learned_once(tmp_path: Path) -> None:
    msgs = sensor_events(n_series=2, per_series=30, seed=9)
    recs = partitions(msgs, 1)[("in", 0)]
    again = {("in", 0): recs[:20] + recs[10:40] + recs[35:]}  # overlapping deliveries
    sink, once = ListSink(), ListSink()
    drain(r := runner(MemorySource(again, 7), sink, CheckpointStore(tmp_path / "a")))
    r.close()
    drain(r2 := runner(MemorySource({("in", 0): recs}, 7), once, CheckpointStore(tmp_path / "b")))
    r2.close()
    assert sink.messages == once.messages and len(sink.messages) == len(msgs)
    assert r.stats.rejected == {}  # no duplicate mistaken for a late event


class NewsObserver:
    """A loop observer that keeps what each poll said about retraining."""

    def __init__(self) -> None:
        self.news: list[tuple[TP, RetrainNews]] = []

    def on_assigned(self, tps: Sequence[TP]) -> None:
        pass

    def on_poll(self, timings: Sequence[Any], retrains: Mapping[TP, RetrainNews]) -> None:
        self.news += list(retrains.items())


@pytest.mark.parametrize("background", [True, False])
def test_retrains_reach_the_observer_as_news_from_the_partition_task(
    tmp_path: Path, background: bool
) -> None:
    msgs = sensor_events(n_series=3, per_series=110, seed=5)
    model = {**MODEL, "background": background}
    r = Runner(MemorySource(partitions(msgs, 1), 40), ListSink(), ListDeadLetters(),
               CheckpointStore(tmp_path), lambda: OnlineForecaster(model),
               LoopSettings(every_events=10**9, every_seconds=1e9))  # fmt: skip
    observer = NewsObserver()
    r.observer = observer
    drain(r)
    while any(t.model.retrain_running for t in r.tasks.values()):
        r.run_once()
    m = r.tasks[("in", 0)].model
    news = [n for _, n in observer.news]
    assert m.retrains_started == 2
    assert sum(n.started for n in news) == m.retrains_started
    assert sum(n.accepted for n in news) == m.retrains_accepted
    assert sum(n.rejected for n in news) == m.retrains_rejected
    assert sum(n.failed for n in news) == 0
    assert not news[-1].training and not r.tasks[("in", 0)].training
    # Inline retrains end in the batch that starts them; background ones train on after it.
    assert any(n.training for n in news) == background
