"""Issue 7.7: loopback by default, secrets stay secret, series ids inject nothing."""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from forecaster import OnlineForecaster
from pipelines.engine.checkpoint import CheckpointStore
from pipelines.engine.loop import Runner
from pipelines.engine.memory import ListDeadLetters, ListSink, MemorySource
from pipelines.engine.runstate import LoopSettings
from pipelines.service.assemble import build_service
from pipelines.service.http import MetricsServer
from pipelines.service.settings import MetricsSettings, load_settings
from pipelines.service.telemetry import Telemetry
from tests.pipelines.broker import Broker
from tests.pipelines.streams import MODEL, write_settings

NASTY = [
    'a"b\nc{d="e"}',
    "../../etc/passwd",
    "x} 1\nforecaster_events_consumed_total 9e9",
    "☃ snow",
]
SECRET = "hunter2-do-not-log-7f3a"


def test_the_metrics_server_listens_on_loopback_only_by_default() -> None:
    settings = load_settings(None, env={})
    server = MetricsServer(CollectorRegistry(), settings.metrics.host, 0, lambda: {"ok": True})
    try:
        assert server.httpd.server_address[0] == "127.0.0.1"
    finally:
        server.stop()


def test_series_ids_cannot_inject_labels_metrics_or_paths(tmp_path: Path) -> None:
    msgs = []
    for t in range(30):
        for sid in NASTY:
            doc = {"series": sid, "ts": 1_700_000_000_000 + t * 60_000, "value": float(t % 7)}
            msgs.append((sid.encode(), orjson.dumps(doc)))
    registry = CollectorRegistry()
    telemetry = Telemetry(registry, MetricsSettings(forecast_series=NASTY, forecast_steps=[1, 3]),
                          MODEL["horizon"], 0.9)  # fmt: skip
    source = MemorySource.from_values("in", msgs, batch=50)
    store = CheckpointStore(tmp_path / "ckpt")
    r = Runner(source, ListSink(), ListDeadLetters(), store, lambda: OnlineForecaster(MODEL),
               LoopSettings(every_events=40))  # fmt: skip
    telemetry.warm_up_seconds = 0.0
    telemetry.attach(r)
    r.start()
    while not source.exhausted:
        r.run_once()
    r.close()
    server = MetricsServer(registry, "127.0.0.1", 0, telemetry.readiness)
    try:
        with urllib.request.urlopen(server.url) as resp:
            text = resp.read().decode()
    finally:
        server.stop()
    families = list(text_string_to_metric_families(text))
    consumed = [
        s for f in families for s in f.samples if s.name == "forecaster_events_consumed_total"
    ]
    assert [s.value for s in consumed] == [len(msgs)]  # the injected sample did not land
    series_labels = {
        s.labels["series"] for f in families for s in f.samples if "series" in s.labels
    }
    assert series_labels == set(NASTY)  # each id one label value, exactly as given
    names = {name for f in families for s in f.samples for name in s.labels}
    assert names <= {
        "le",
        "numba",
        "numpy",
        "outcome",
        "partition",
        "python",
        "reason",
        "series",
        "step",
        "topic",
        "version",
        "bound",
        "quantile",
        "id",  # the loaded model file's: one value per instance
    }  # a fixed, bounded set
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["ckpt/in/0.ckpt"]  # one file per partition; no id ever names a path


@pytest.mark.kafka
def test_no_secret_reaches_the_logs_or_the_metrics(
    broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    topic = broker.new_topic("in")
    broker.produce(topic, [(b"s", orjson.dumps({"series": "s", "ts": 1_700_000_000_000 + i,
                                                "value": 1.0})) for i in range(20)])  # fmt: skip
    kafka = {**broker.kafka_settings(f"g-sec-{topic}"), "client": {"sasl_plain_username": "svc"}}
    config = write_settings(tmp_path / "s.toml", {
        "model": MODEL, "kafka": kafka,
        "topics": {"input": topic, "output": topic + "-o", "dead_letter": topic + "-d"},
        "checkpoint": {"dir": str(tmp_path / "ckpt")}, "metrics": {"port": 0},
    })  # fmt: skip
    env = {"FORECASTER_KAFKA__CLIENT__SASL_PLAIN_PASSWORD": SECRET}
    caplog.set_level(logging.DEBUG)
    service = build_service(load_settings(config, env=env))
    assert service.metrics_url is not None
    th = threading.Thread(target=service.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 60
    while service.runner.stats.events < 20:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with urllib.request.urlopen(service.metrics_url) as resp:
        metrics = resp.read().decode()
    service.stop.set()
    th.join(60)
    assert SECRET not in metrics
    assert SECRET not in caplog.text
    assert "svc" not in metrics
