"""deploy/: the Prometheus config and alerts pass promtool (and fire on synthetic series),
and every query of the Grafana dashboard and the alerts names a metric the service exports.

promtool comes with the Debian package ``prometheus``, installed by scripts/test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from pipelines.service.settings import MetricsSettings, load_settings
from pipelines.service.telemetry import Telemetry
from tests.pipelines.service.test_telemetry import drain, make_runner
from tests.pipelines.streams import MODEL, sensor_events

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
METRIC = re.compile(r"\bforecaster_[a-zA-Z0-9_]+")


def promtool(*args: str) -> str:
    exe = shutil.which("promtool")
    assert exe, "promtool is missing: scripts/test installs it (Debian package prometheus)"
    proc = subprocess.run([exe, *args], cwd=PROMETHEUS, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return out


def test_prometheus_config_and_rules_are_valid() -> None:
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")
    n_rules = len(re.findall(r"- alert: ", (PROMETHEUS / "alerts.yml").read_text()))
    assert f"SUCCESS: {n_rules} rules found" in promtool("check", "rules", "alerts.yml")


def test_alerts_fire_on_synthetic_series() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")
    tests = (PROMETHEUS / "alerts_test.yml").read_text()
    rules = re.findall(r"- alert: (\w+)", (PROMETHEUS / "alerts.yml").read_text())
    assert "ForecasterConsumerLagGrowing" in rules and "ForecasterErrorAboveNorm" in rules
    for name in rules:  # each alert has a case where it fires (a non-empty exp_alerts)
        assert re.search(rf"alertname: {name}\n\s+exp_alerts:\n\s+- exp_labels", tests), name


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Names of every sample the telemetry exports after a stream with retrains."""
    msgs = sensor_events(n_series=3, per_series=110, seed=6)
    model = {**MODEL, "retrain_on": ["schedule", "drift"]}  # the drift statistic too
    runner, _, _ = make_runner(msgs, model, tmp_path_factory.mktemp("run"), batch=40)
    registry = CollectorRegistry()
    settings = MetricsSettings(forecast_series=["sensor-001"], forecast_steps=[1, 3])
    telemetry = Telemetry(registry, settings, horizon=MODEL["horizon"], coverage=0.9)
    telemetry.warm_up_seconds = 0.1
    telemetry.attach(runner)
    runner.start()
    drain(runner)
    return {s.name for fam in registry.collect() for s in fam.samples}


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


def test_every_dashboard_query_names_an_exported_metric(exported: set[str]) -> None:
    dash = json.loads((GRAFANA / "dashboards" / "forecaster.json").read_text())
    used: set[str] = set()
    for panel in panels(dash["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "prometheus"
        for target in panel["targets"]:
            names = set(METRIC.findall(target["expr"]))
            assert names, (panel["title"], target["expr"])
            assert names <= exported, (panel["title"], names - exported)
            used |= names
    for var in dash["templating"]["list"]:
        assert set(METRIC.findall(var["definition"])) <= exported
    # What the issue asks the dashboard to show: throughput, latency, lag, error by step,
    # coverage, training loss, forecast against actual.
    assert {
        "forecaster_events_consumed_total", "forecaster_batch_processing_seconds_bucket",
        "forecaster_event_processing_seconds_bucket", "forecaster_consumer_lag_records",
        "forecaster_forecast_abs_error_sum", "forecaster_interval_coverage_ratio",
        "forecaster_retrain_train_loss", "forecaster_series_value",
        "forecaster_series_forecast_of_latest", "forecaster_series_forecast",
    } <= used  # fmt: skip
    datasource = (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    assert re.search(r"uid: prometheus\b", datasource)


def test_every_alert_names_an_exported_metric(exported: set[str]) -> None:
    names = set(METRIC.findall((PROMETHEUS / "alerts.yml").read_text()))
    assert names and names <= exported, names - exported


def test_container_settings_load_with_the_shipped_model() -> None:
    """deploy/k8s/forecaster.env on top of config/sensors.toml: valid, metrics on all
    interfaces inside the container, forecast steps within the model's horizon."""
    env = {}
    for line in (ROOT / "deploy" / "k8s" / "forecaster.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    settings = load_settings(ROOT / "config" / "sensors.toml", env=env)
    settings.metrics.check_horizon(settings.forecaster_config().horizon)
    assert settings.metrics.host == "0.0.0.0"
    assert settings.metrics.forecast_series == ["sensor-000", "sensor-001"]
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    for key in ("FORECAST_SERIES", "FORECAST_STEPS"):  # the same allow-list in both
        assert f"FORECASTER_METRICS__{key}: '{env[f'FORECASTER_METRICS__{key}']}'" in compose


def test_dashboard_panels_have_unique_ids_and_do_not_overlap() -> None:
    dash = json.loads((GRAFANA / "dashboards" / "forecaster.json").read_text())
    items = list(panels(dash["panels"]))
    ids = [p["id"] for p in items]
    assert len(ids) == len(set(ids)), sorted(ids)
    cells: dict[tuple[int, int], str] = {}
    for p in items:
        g = p["gridPos"]
        for y in range(g["y"], g["y"] + g["h"]):
            for x in range(g["x"], g["x"] + g["w"]):
                assert (x, y) not in cells, (p["title"], cells.get((x, y)))
                cells[(x, y)] = p["title"]
