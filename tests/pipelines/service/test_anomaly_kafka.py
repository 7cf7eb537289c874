"""Anomalies through the real broker (acceptance 2 of issue 18): injected spikes land on
the anomaly topic with their series, time, value and the band they broke; normal events
do not. The broker comes from tests/pipelines/broker.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from pipelines.engine.encode import iso_times
from pipelines.service.assemble import build_service
from pipelines.service.settings import load_settings
from tests.pipelines.broker import Broker
from tests.pipelines.service.test_service_kafka import run_in_thread, settings_for
from tests.pipelines.streams import MODEL, T0_MS, sensor_events

pytestmark = pytest.mark.kafka

HOUR_MS = 3_600_000
# (series, hour) -> the jump added to its value: 40 times the scale of its hourly changes,
# after the model has counted 5,000 errors. (A 99.9% band of 1,000 errors, the least
# that gives one, is their largest: the first spike, counted, would set the next one's.)
SPIKES = {("sensor-001", 850): 8.0, ("sensor-004", 900): -8.0, ("sensor-002", 920): 8.0}


def spiked_events() -> list[tuple[bytes, bytes]]:
    out = []
    for key, value in sensor_events(n_series=6, per_series=1000, seed=7):
        doc = orjson.loads(value)
        hour = (doc["ts"] - T0_MS) // HOUR_MS
        doc["value"] += SPIKES.get((doc["series"], hour), 0.0)
        out.append((key, orjson.dumps(doc)))
    return out


def test_injected_spikes_and_only_they_land_on_the_anomaly_topic(
    broker: Broker, workdir: Path
) -> None:
    topics = {"input": broker.new_topic("in"), "output": broker.new_topic("out"),
              "dead_letter": broker.new_topic("dlq"),
              "anomalies": broker.new_topic("anomalies")}  # fmt: skip
    msgs = spiked_events()
    # One partition, so one model counts every series' errors (a model per partition
    # of four would count too few by the spikes for a 99.9% band).
    broker.produce_to_partition(topics["input"], msgs, 0)
    config = settings_for(broker, workdir, topics, "g-anomaly", every_events=1000,
                          model={**MODEL, "anomaly_steps": [1, 2]})  # fmt: skip
    service = build_service(load_settings(config))
    th = run_in_thread(service)
    out = broker.read_all(topics["output"], expect=len(msgs))
    service.stop.set()
    th.join(60)
    assert not th.is_alive()
    anomalies = broker.read_all(topics["anomalies"], expect=len(SPIKES))
    got = {(d["series"], d["ts"]): d for d in (orjson.loads(r.value) for r in anomalies)}
    docs = [orjson.loads(v) for _, v in msgs]
    inputs = {(d["series"], iso_times(np.float64(d["ts"] / 1000))): d["value"] for d in docs}
    expected = {(sid, iso_times(np.float64((T0_MS + hour * HOUR_MS) / 1000 + int(sid[-3:]))))
                for sid, hour in SPIKES}  # fmt: skip
    assert set(got) == expected  # the spikes, and no normal event
    assert all(r.key == orjson.loads(r.value)["series"].encode() for r in anomalies)
    forecasts = {(d["series"], d["ts"]): d for d in (orjson.loads(r.value) for r in out)}
    for key, doc in got.items():
        assert doc["value"] == inputs[key]
        assert not doc["lower"] <= doc["value"] <= doc["upper"]  # the band it broke...
        assert doc["lower"] < doc["yhat"] < doc["upper"]  # ...around its forecast
        assert doc["score"] >= 0.999 and doc["step"] in (1, 2)
        assert forecasts[key]["anomaly"] == {"flag": True, "score": doc["score"],
                                             "step": doc["step"]}  # fmt: skip
    flagged = [k for k, d in forecasts.items() if d["anomaly"]["flag"]]
    assert sorted(flagged) == sorted(expected)
