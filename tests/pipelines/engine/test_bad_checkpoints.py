"""Issue 7.4: a damaged or incompatible checkpoint is a clear error naming the file and the
mismatch, or, when asked, is set aside (never overwritten) and the partition starts afresh."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from forecaster import OnlineForecaster
from pipelines.engine.checkpoint import CheckpointError, CheckpointStore, StateStore
from pipelines.engine.loop import Runner
from pipelines.engine.memory import ListDeadLetters, ListSink, MemorySource
from pipelines.engine.runstate import Clocks, LoopSettings
from tests.pipelines.broker import Broker
from tests.pipelines.engine.test_loop import CLOCK, drain, partitions
from tests.pipelines.streams import MODEL, sensor_events, write_settings

MSGS = sensor_events(n_series=3, per_series=40, seed=6)


def run_once_through(store: StateStore, model: dict[str, object], on_error: str = "fail") -> Runner:
    r = Runner(MemorySource(partitions(MSGS, 1), 50), ListSink(), ListDeadLetters(), store,
               lambda: OnlineForecaster(model), LoopSettings(on_bad_checkpoint=on_error),
               Clocks(wall=lambda: CLOCK))  # fmt: skip
    drain(r)
    r.close()
    return r


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:40])


def foreign_snapshot(path: Path) -> None:
    store = CheckpointStore(path.parents[1])
    ckpt = store.load("in", 0)
    assert ckpt is not None
    store.save(replace(ckpt, snapshot=b"PK\x03\x04 not a model"))


DAMAGE: dict[str, tuple[Callable[[Path], None], dict[str, object], str]] = {
    "truncated": (truncate, MODEL, "damaged checkpoint header"),
    "garbage": (lambda p: p.write_bytes(b"\x00" * 100), MODEL, "not a forecaster checkpoint"),
    "foreign snapshot": (foreign_snapshot, MODEL, "the model snapshot cannot be restored"),
    "another model shape": (lambda p: None, {**MODEL, "hidden_size": 9}, "differs in hidden_size"),
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_an_unusable_checkpoint_stops_the_loop_naming_the_file(tmp_path: Path, kind: str) -> None:
    damage, model, message = DAMAGE[kind]
    store = CheckpointStore(tmp_path)
    run_once_through(store, MODEL)
    path = store.path("in", 0)
    damage(path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=message) as info:
        run_once_through(store, model)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before  # not overwritten
    assert sorted(p.name for p in path.parent.iterdir()) == ["0.ckpt"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_start_fresh_sets_the_file_aside_and_starts_a_new_model(tmp_path: Path, kind: str) -> None:
    damage, model, _ = DAMAGE[kind]
    store = CheckpointStore(tmp_path)
    run_once_through(store, MODEL)
    path = store.path("in", 0)
    damage(path)
    before = path.read_bytes()
    r = run_once_through(store, model, on_error="start_fresh")
    assert r.stats.bad_checkpoints == 1 and r.stats.restored == 0
    assert (path.parent / "0.ckpt.bad-1").read_bytes() == before  # kept for inspection
    ckpt = store.load("in", 0)
    assert ckpt is not None and ckpt.next_offset == len(MSGS)  # a new, good checkpoint
    r = run_once_through(store, model, on_error="start_fresh")
    assert r.stats.restored == 1 and r.stats.bad_checkpoints == 0


@pytest.mark.kafka
def test_the_service_refuses_a_bad_checkpoint_with_one_line_and_exit_code_2(
    broker: Broker, tmp_path: Path
) -> None:
    topic = broker.new_topic("in")
    broker.produce_to_partition(topic, MSGS, partition=0)
    ckpt_dir = tmp_path / "ckpt"
    bad = ckpt_dir / topic / "0.ckpt"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"FCKPT\x00\x00\x01\x00\x00")
    config = write_settings(tmp_path / "s.toml", {
        "model": MODEL, "kafka": broker.kafka_settings(f"g-bad-{topic}"),
        "topics": {"input": topic, "output": topic + "-out", "dead_letter": topic + "-dlq"},
        "checkpoint": {"dir": str(ckpt_dir)}, "metrics": {"port": 0},
    })  # fmt: skip
    cmd = [sys.executable, "-m", "pipelines", "run", "--config", str(config), "--log-level",
           "error", "--exit-when-idle", "2"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error: ")]
    assert errors == [f"error: {bad}: not a forecaster checkpoint"]
    assert "Traceback" not in out.stderr
    assert bad.read_bytes() == b"FCKPT\x00\x00\x01\x00\x00"
    text = config.read_text().replace("[checkpoint]\n", '[checkpoint]\non_error = "start_fresh"\n')
    config.write_text(text)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"stopped: {len(MSGS)} events" in out.stdout
    assert (bad.parent / "0.ckpt.bad-1").read_bytes() == b"FCKPT\x00\x00\x01\x00\x00"
