"""A real Prometheus server scrapes the running service (acceptance of issue 5).

Prometheus (Debian package ``prometheus``, installed by scripts/test) runs on 127.0.0.1
on a free port with its storage in a temporary folder, and is always stopped at the end.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import urlencode, urlsplit
from urllib.request import urlopen

import orjson
import pytest

from pipelines.service.assemble import build_service
from pipelines.service.settings import load_settings
from tests.pipelines.broker import Broker
from tests.pipelines.service.test_service_kafka import fresh_topics, run_in_thread, wait_for
from tests.pipelines.streams import MODEL, sensor_events, write_settings

pytestmark = pytest.mark.kafka

StartPrometheus = Callable[[str], str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[StartPrometheus]:
    """Starts Prometheus scraping a target (host:port) every second; returns its URL."""
    exe = shutil.which("prometheus")
    assert exe, "prometheus is missing: scripts/test installs it (Debian package prometheus)"
    procs: list[subprocess.Popen[bytes]] = []

    def start(target: str) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: forecaster\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        port = free_port()
        log = (tmp_path / "prometheus.log").open("wb")
        procs.append(subprocess.Popen(
            [exe, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
        ))  # fmt: skip
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert procs[-1].poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
            try:
                with urlopen(url + "/-/ready", timeout=2) as resp:
                    return bool(resp.status == 200)
            except (URLError, OSError):
                return False

        wait_for(ready, timeout=60)
        return url

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def query(url: str, promql: str) -> list[dict[str, Any]]:
    doc = get_json(f"{url}/api/v1/query?{urlencode({'query': promql})}")
    assert doc["status"] == "success", doc
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def test_prometheus_scrapes_event_counts_and_forecast_gauges(
    broker: Broker, workdir: Path, prometheus: StartPrometheus
) -> None:
    topics = fresh_topics(broker)
    msgs = sensor_events(n_series=4, per_series=40, seed=7)
    broker.produce(topics["input"], msgs)
    watched = "sensor-002"
    config = write_settings(workdir / "service.toml", {
        "model": MODEL,
        "kafka": broker.kafka_settings(f"g-prom-{topics['input']}"),
        "topics": topics,
        "checkpoint": {"dir": str(workdir / "ckpt"), "every_events": 50},
        "metrics": {"port": 0, "forecast_series": [watched], "forecast_steps": [1, 3]},
    })  # fmt: skip
    service = build_service(load_settings(config, env={}))
    assert service.metrics_url is not None
    th = run_in_thread(service)
    try:
        out = broker.read_all(topics["output"], expect=len(msgs))
        last = [orjson.loads(r.value) for r in out if r.key == watched.encode()][-1]
        url = prometheus(urlsplit(service.metrics_url).netloc)

        def scraped(promql: str, want: float) -> Callable[[], bool]:
            def check() -> bool:
                got = query(url, promql)
                return len(got) == 1 and float(got[0]["value"][1]) == want

            return check

        consumed = 'forecaster_events_consumed_total{job="forecaster"}'
        wait_for(scraped(consumed, len(msgs)), timeout=60)
        for i, step in ((0, "1"), (2, "3")):
            gauge = f'forecaster_series_forecast{{series="{watched}", step="{step}"}}'
            wait_for(scraped(gauge, last["yhat"][i]), timeout=30)
        up = query(url, 'up{job="forecaster"}')
        assert [r["value"][1] for r in up] == ["1"]
        ready = query(url, "forecaster_ready")
        assert [r["value"][1] for r in ready] == ["1"]
        assert query(url, 'forecaster_series_value{series="sensor-000"}') == []  # not listed
    finally:
        service.stop.set()
        th.join(60)
    assert not th.is_alive()
