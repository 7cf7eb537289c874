"""Issue 7.2: the broker goes away mid-stream and comes back; the service rides it out.

This test needs a broker it may stop, so it always runs its own local one, also when
FORECASTER_TEST_BOOTSTRAP names another.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from pipelines.kafka.local import LOCAL_API_VERSION, LocalBroker
from pipelines.service.settings import load_settings
from tests.pipelines.broker import PARTITIONS, Broker
from tests.pipelines.service.test_service_kafka import (
    by_event,
    count_output,
    distinct_forecasts,
    replay,
    start_service,
    stop_service,
    wait_for,
)
from tests.pipelines.streams import MODEL, sensor_events, write_settings

pytestmark = pytest.mark.kafka


def test_a_broker_outage_loses_nothing(tmp_path: Path) -> None:
    local = LocalBroker(tmp_path / "kafka", PARTITIONS)
    broker = Broker(local.start(), LOCAL_API_VERSION)
    try:
        topics = {"input": broker.new_topic("in"), "output": broker.new_topic("out"),
                  "dead_letter": broker.new_topic("dlq")}  # fmt: skip
        msgs = sensor_events(n_series=8, per_series=120, seed=7)
        half = len(msgs) // 2
        broker.produce(topics["input"], msgs[:half])
        kafka = {**broker.kafka_settings(f"g-outage-{topics['input']}"),
                 "delivery_timeout_ms": 3000}  # fmt: skip
        config = write_settings(tmp_path / "s.toml", {
            "model": MODEL, "kafka": kafka, "topics": topics,
            "checkpoint": {"dir": str(tmp_path / "ckpt"), "every_events": 150,
                           "every_seconds": 1.0},
            "metrics": {"port": 0},
        })  # fmt: skip
        log = tmp_path / "service.log"
        proc = start_service(config, log)
        wait_for(lambda: count_output(broker, topics["output"]) >= half // 2)
        local.stop()
        for _ in range(40):  # 8 s without a broker
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        local.start(keep_data=True)
        broker.produce(topics["input"], msgs[half:])
        wait_for(lambda: len(distinct_forecasts(broker, topics["output"])) == len(msgs), 180)
        assert stop_service(proc) == 0, log.read_text()[-3000:]
        text = log.read_text()
        assert "Traceback" not in text
        out = broker.read_all(topics["output"], expect=count_output(broker, topics["output"]))
        got = by_event([orjson.loads(r.value) for r in out])
        assert len(got) == len(msgs)  # every input offset has its forecast: none lost
        assert got == replay(broker, topics["input"], load_settings(config))  # and the same numbers
        group = f"g-outage-{topics['input']}"
        assert broker.committed(topics["input"], group) == broker.end_offsets(topics["input"])
    finally:
        local.stop()
