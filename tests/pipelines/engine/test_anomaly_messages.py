"""The anomaly judgement on the wire: in every forecast message, and flagged events alone."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import orjson
from prometheus_client import CollectorRegistry

from forecaster.anomaly import Judgement
from forecaster.stream import Update
from pipelines.engine.batches import ForecastBatch
from pipelines.files.sinks import CsvSink
from pipelines.service.settings import MetricsSettings
from pipelines.service.telemetry import Telemetry

T0 = 1714564800.0  # 2024-05-01T12:00:00Z


def batch(judged: bool = True) -> ForecastBatch:
    """Three events of two series, the second flagged at step 2, the first not judged."""
    n, k = 3, 2
    yhat = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    judgement = Judgement(
        flag=np.array([False, True, False]), score=np.array([math.nan, 0.9995, 0.25]),
        step=np.array([0, 2, 1]), yhat=np.array([math.nan, 40.0, 5.5]),
        lower=np.array([math.nan, 38.0, 4.0]), upper=np.array([math.nan, 42.0, 7.0]),
    )  # fmt: skip
    upd = Update(
        np.ones(n, bool), ["a", "b", "a"], T0 + np.arange(n) * 60.0, np.array([1.0, 97.5, 5.0]),
        yhat, yhat - 1.0, yhat + 1.0, T0 + 60.0 * (np.arange(n)[:, None] + [[1, 2]]),
        np.full((n, k), np.nan), np.zeros((n, k), bool), np.array([3, 3, 3]),
        judgement if judged else None,
    )  # fmt: skip
    return ForecastBatch("in", 0, np.arange(n), upd, issued_at=T0 + 1.0)


def test_every_forecast_message_carries_its_events_judgement() -> None:
    docs = [orjson.loads(v) for _, v in batch().messages]
    assert [d["anomaly"] for d in docs] == [
        {"flag": False, "score": None, "step": 0},
        {"flag": True, "score": 0.9995, "step": 2},
        {"flag": False, "score": 0.25, "step": 1},
    ]
    assert [orjson.loads(v)["anomaly"] for _, v in batch(judged=False).messages] == [None] * 3


def test_only_flagged_events_become_anomaly_messages() -> None:
    [(key, value)] = batch().anomaly_messages
    assert key == b"b"
    assert orjson.loads(value) == {
        "series": "b", "ts": "2024-05-01T12:01:00Z", "value": 97.5, "step": 2, "yhat": 40.0,
        "lower": 38.0, "upper": 42.0, "score": 0.9995, "model_version": 3,
    }  # fmt: skip
    assert batch(judged=False).anomaly_messages == []


def test_the_csv_copy_has_the_judgement_on_each_row_of_its_event(tmp_path: Path) -> None:
    sink = CsvSink(tmp_path / "f.csv")
    sink.write(batch())
    sink.close()
    rows = list(csv.DictReader((tmp_path / "f.csv").open()))
    got = [(r["series"], r["step"], r["anomaly"], r["anomaly_score"], r["anomaly_step"])
           for r in rows]  # fmt: skip
    assert got == [
        ("a", "1", "0", "", "0"), ("a", "2", "0", "", "0"),
        ("b", "1", "1", "0.9995", "2"), ("b", "2", "1", "0.9995", "2"),
        ("a", "1", "0", "0.25", "1"), ("a", "2", "0", "0.25", "1"),
    ]  # fmt: skip


def test_anomalies_are_counted_by_step_and_the_allow_listed_score_is_a_gauge() -> None:
    registry = CollectorRegistry()
    settings = MetricsSettings(forecast_series=["a", "b"])
    telemetry = Telemetry(registry, settings, horizon=2, coverage=0.9)
    telemetry.on_forecasts(batch())
    telemetry.on_forecasts(batch())

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("forecaster_anomalies_flagged_total", step="2") == 2.0
    assert value("forecaster_anomalies_flagged_total", step="1") == 0.0
    assert value("forecaster_series_anomaly_score", series="a") == 0.25  # its latest event
    assert value("forecaster_series_anomaly_score", series="b") == 0.9995
