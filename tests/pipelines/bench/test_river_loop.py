"""The River loop of ``forecaster bench kafka``: what it writes is River's own forecast."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from pipelines.bench.kafka import sensor_messages
from pipelines.bench.peers import river_forecasts, snarimax
from pipelines.bench.river_loop import RIVER_LR, RiverForecaster, river_loop, river_stage_costs
from pipelines.kafka.options import KafkaSettings
from tests.pipelines.broker import Broker


def test_each_series_gets_its_own_snarimax_forecasting_after_learning() -> None:
    msgs = sensor_messages(n_series=3, per_series=40, seed=4)
    docs = [orjson.loads(v) for _, v in msgs]
    loop = RiverForecaster(horizon=5)
    got = [loop.learn_forecast(d["series"], d["value"]) for d in docs]
    assert sorted(loop.models) == ["sensor-0000", "sensor-0001", "sensor-0002"]
    for sid in loop.models:
        mine = [i for i, d in enumerate(docs) if d["series"] == sid]
        values = np.array([docs[i]["value"] for i in mine])
        want = river_forecasts(snarimax(RIVER_LR), values, 5)
        assert want is not None
        np.testing.assert_array_equal(np.array([got[i] for i in mine]), want)


def test_stage_costs_encode_one_message_per_event() -> None:
    msgs = sensor_messages(n_series=2, per_series=30, seed=1)
    costs, out = river_stage_costs(msgs, horizon=4)
    assert set(costs) == {"decode_us", "learn_us", "encode_us"}
    assert all(v >= 0 for v in costs.values()) and costs["learn_us"] > 0
    assert [k for k, _ in out] == [k for k, _ in msgs]
    doc = orjson.loads(out[-1][1])
    assert doc["series"] == "sensor-0001" and len(doc["yhat"]) == 4


@pytest.mark.kafka
def test_the_river_loop_writes_a_forecast_for_every_event(broker: Broker) -> None:
    msgs = sensor_messages(n_series=4, per_series=25, seed=2)
    topic, out = broker.new_topic("river-in"), broker.new_topic("river-out")
    broker.produce(topic, list(msgs))
    cfg = KafkaSettings(bootstrap_servers=broker.bootstrap, api_version=broker.api_version)
    seconds, stats = river_loop(cfg, topic, out, len(msgs), horizon=3)
    assert seconds > 0 and stats == {"events": 100, "series": 4}
    written = broker.read_all(out, expect=100)
    assert len(written) == 100
    # Per series, in its partition's order: River's forecasts of that series' values.
    for sid in {k for k, _ in msgs}:
        docs = [orjson.loads(r.value) for r in written if r.key == sid]
        values = np.array([orjson.loads(v)["value"] for k, v in msgs if k == sid])
        assert [d["ts"] for d in docs] == sorted(d["ts"] for d in docs)
        want = river_forecasts(snarimax(RIVER_LR), values, 3)
        np.testing.assert_array_equal(np.array([d["yhat"] for d in docs]), want)
