"""Issue 7.5 through the service: a sensor gone wild, then normal again, over Kafka.

The retrain on the fault's windows is rejected and counted in the metrics, forecasts
keep coming (finite) from the last good weights, and once the values are normal again
the +1 errors are back at their level within a few hundred events.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from forecaster.schedule import REASONS
from pipelines.bench.faults import BEFORE, FAULT, fault_stream
from pipelines.configs import read_toml
from pipelines.service.assemble import build_service
from pipelines.service.settings import load_settings
from tests.conftest import needs_compiled_speed
from tests.forecaster.test_faults import SEES_THE_FAULT
from tests.pipelines.broker import Broker
from tests.pipelines.service.test_service_kafka import fresh_topics, run_in_thread
from tests.pipelines.streams import T0_MS, write_settings

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parents[3]


@needs_compiled_speed
def test_a_fault_is_survived_counted_and_forgotten(broker: Broker, tmp_path: Path) -> None:
    y = fault_stream("alternating", after=1200)
    msgs = [(b"pump", orjson.dumps({"series": "pump", "ts": T0_MS + 600_000 * i,
                                    "value": float(v)}))
            for i, v in enumerate(y)]  # fmt: skip
    topics = fresh_topics(broker)
    broker.produce(topics["input"], msgs)
    # Windows that are sure to draw from the fault (tests/forecaster/test_faults.py), so
    # a retrain is rejected and the metric has something to count.
    model = {**read_toml(ROOT / "config" / "sensors.toml")["model"], **SEES_THE_FAULT}
    config = write_settings(tmp_path / "s.toml", {
        "model": model, "kafka": broker.kafka_settings(f"g-fault-{topics['input']}"),
        "topics": topics, "checkpoint": {"dir": str(tmp_path / "ckpt")},
        "metrics": {"enabled": False},
    })  # fmt: skip
    registry = CollectorRegistry()
    service = build_service(load_settings(config), registry=registry)
    th = run_in_thread(service)
    out = broker.read_all(topics["output"], expect=len(msgs))
    service.stop.set()
    th.join(60)
    assert not th.is_alive()
    docs = sorted((orjson.loads(r.value) for r in out), key=lambda d: d["ts"])
    assert len(docs) == len(msgs)  # one partition key: every event in order, none lost
    yhat = np.array([d["yhat"][0] for d in docs])
    assert np.isfinite(yhat).all()
    assert np.isfinite([d["lower"] + d["upper"] for d in docs]).all()
    err = np.abs(y[1:] - yhat[:-1])  # forecast issued at event i for event i + 1
    before = float(np.mean(err[BEFORE - 500 : BEFORE - 1]))
    end = BEFORE + FAULT
    assert float(np.mean(err[end + 200 : end + 500])) < 1.5 * before
    rejected = sum(
        registry.get_sample_value("forecaster_retrains_total",
                                  {"outcome": "rejected", "reason": reason}) or 0
        for reason in REASONS
    )  # fmt: skip
    assert rejected >= 1
