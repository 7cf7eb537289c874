"""The service started from a model file, through the real broker (issue 16, acceptance 2).

Partitions without a checkpoint start from ``[model] init``: their first forecasts are
the file's, equal to an offline run from the same file; messages and metrics name the
file's id; a restart with checkpoints keeps them and ignores the file (even another one).
A bad file stops the service in one line before anything is consumed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import orjson
import pytest
from click.testing import CliRunner

from forecaster import ForecasterConfig, OnlineForecaster
from forecaster.transfer import warm_start
from pipelines.cli import main
from pipelines.engine.checkpoint import CheckpointStore
from pipelines.engine.loop import Runner
from pipelines.engine.memory import ListDeadLetters, ListSink, MemorySource
from pipelines.engine.records import Message
from pipelines.engine.runstate import LoopSettings
from pipelines.models.file import encode_model, read_model, write_model
from pipelines.replay.run import read_input
from pipelines.service.assemble import build_service
from pipelines.service.settings import load_settings
from pipelines.train.train import merge, train
from tests.pipelines.broker import Broker
from tests.pipelines.service.test_service_kafka import (
    by_event,
    fresh_topics,
    run_in_thread,
    settings_for,
)
from tests.pipelines.streams import MODEL, sensor_events, write_settings

pytestmark = pytest.mark.kafka


def model_file(work: Path, seed: int) -> Path:
    """A model file trained on a recording of the same kind of stream (a CSV file)."""
    from pipelines.engine.recorded import Columns

    rows = ["series,timestamp,value"]
    for key, value in sensor_events(n_series=4, per_series=300, seed=seed):
        doc = orjson.loads(value)
        rows.append(f"{key.decode()},{doc['ts'] / 1000.0},{doc['value']}")
    data = work / f"history-{seed}.csv"
    data.write_text("\n".join(rows) + "\n")
    files, _ = read_input(data, Columns(series="series"))
    raw, _ = train([merge(files)], ForecasterConfig.from_dict(MODEL), 0.2)
    path = work / f"model-{seed}.fcm"
    write_model(path, raw)
    return path


def topic_model_file(broker: Broker, config: Path, seed: int) -> Path:
    """A model file trained by ``forecaster train --topic`` on a recorded topic."""
    topic = broker.new_topic("history")
    broker.produce(topic, sensor_events(n_series=4, per_series=300, seed=seed))
    path = config.parent / f"topic-model-{seed}.fcm"
    res = CliRunner().invoke(main, ["train", "--config", str(config), "--topic", topic,
                                    "--out", str(path), "--quiet"])  # fmt: skip
    assert res.exit_code == 0, res.output + res.stderr
    assert res.output.strip() == read_model(path).id
    return path


def offline(broker: Broker, topic: str, cfg: ForecasterConfig, init: Path | None) -> Any:
    """The forecasts of every input record, each partition from the file (or untrained)."""
    recs = broker.read_all(topic)
    parts: dict[tuple[str, int], list[Message]] = {}
    for r in sorted(recs, key=lambda r: (r.partition, r.offset)):
        parts.setdefault((r.topic, r.partition), []).append(
            Message(r.topic, r.partition, r.offset, r.key, r.value)
        )
    state = read_model(init).arrays if init is not None else None
    sink = ListSink()
    runner = Runner(MemorySource(parts, batch=97), sink, ListDeadLetters(),
                    CheckpointStore(Path("/nonexistent")),
                    lambda: OnlineForecaster(cfg) if state is None else warm_start(cfg, state),
                    LoopSettings(every_events=10**12, every_seconds=1e12))  # fmt: skip
    runner.start()
    while not runner.source.exhausted or any(t.backlog for t in runner.tasks.values()):  # type: ignore[attr-defined]
        runner.run_once()
    return by_event([orjson.loads(v) for _, v in sink.messages])


def with_init(config: Path, init: Path) -> Path:
    text = config.read_text().replace("[model]\n", f'[model]\ninit = "{init}"\n', 1)
    config.write_text(text)
    return config


def run_until(broker: Broker, settings: Any, topic: str, expect: int) -> tuple[list[Any], str]:
    """Run the service until the output topic holds ``expect`` records; also its metrics."""
    service = build_service(settings)
    th = run_in_thread(service)
    out = broker.read_all(topic, expect=expect)
    assert service.metrics_url is not None
    with urlopen(service.metrics_url, timeout=10) as resp:
        metrics = resp.read().decode()
    service.stop.set()
    th.join(60)
    assert not th.is_alive()
    return [orjson.loads(r.value) for r in out], metrics


def test_a_service_with_init_forecasts_from_the_file_and_a_restart_keeps_its_checkpoints(
    broker: Broker, workdir: Path
) -> None:
    topics = fresh_topics(broker)
    config = settings_for(broker, workdir, topics, "g-warm")
    first_file, other_file = topic_model_file(broker, config, 7), model_file(workdir, 8)
    first_id, other_id = read_model(first_file).id, read_model(other_file).id
    assert read_model(first_file).header["data"]["events"] == 1200
    msgs = sensor_events(n_series=6, per_series=160, seed=1)
    broker.produce(topics["input"], msgs[:600])
    config = with_init(config, first_file)
    settings = load_settings(config)
    cfg = settings.forecaster_config()
    docs, metrics = run_until(broker, settings, topics["output"], 600)
    assert {d["model_id"] for d in docs} == {first_id}
    assert f'forecaster_model_file_info{{id="{first_id}"}} 1.0' in metrics
    got = by_event(docs)
    assert got == offline(broker, topics["input"], cfg, first_file)  # the file's forecasts
    cold = offline(broker, topics["input"], cfg, None)
    early = sorted(got, key=lambda k: k[1])[6:12]  # each series' second event
    assert all(got[k] != cold[k] for k in early)  # not an untrained model's forecasts
    # A restart with checkpoints and another file: the checkpoints win, the file is ignored.
    broker.produce(topics["input"], msgs[600:])
    settings = load_settings(with_init(settings_for(broker, workdir, topics, "g-warm"),
                                       other_file))  # fmt: skip
    docs, metrics = run_until(broker, settings, topics["output"], len(msgs))
    new = [d for d in docs if (d["series"], d["ts"]) not in got]
    later = by_event(new)
    assert len(later) == len(msgs) - 600 and {d["model_id"] for d in new} == {first_id}
    whole = offline(broker, topics["input"], cfg, first_file)
    assert later == {k: whole[k] for k in later}  # as if it had never stopped
    assert f'forecaster_model_file_info{{id="{other_id}"}} 1.0' in metrics  # what was loaded


def test_a_bad_init_file_stops_the_service_in_one_line_before_consuming(
    broker: Broker, workdir: Path
) -> None:
    topics = fresh_topics(broker)
    broker.produce(topics["input"], sensor_events(n_series=2, per_series=20, seed=2))
    good = workdir / "h4.fcm"
    other = ForecasterConfig.from_dict({**MODEL, "horizon": 4})
    info = {"data": {}, "scores": {}, "retrains": {}}
    from forecaster.transfer import transferable

    write_model(good, encode_model(other, transferable(OnlineForecaster(other)), info))
    mismatch = "trained for another config (file != this one: horizon 4 != 3)"
    for init, says in ((workdir / "missing.fcm", "cannot read the model file"), (good, mismatch)):
        config = settings_for(broker, workdir, topics, "g-bad")
        config = write_settings(config, {**_tables(config), "model": {**MODEL, "init": init}})
        proc = subprocess.run([sys.executable, "-m", "pipelines", "run", "--config", str(config)],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0].startswith(f"error: [model] init {init}: ") and says in lines[0]
        group = f"g-bad-{topics['input']}"
        assert set(broker.committed(topics["input"], group).values()) == {None}
        assert sum(broker.end_offsets(topics["output"]).values()) == 0


def _tables(config: Path) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(config.read_text())
