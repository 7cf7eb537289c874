"""The arithmetic behind `forecaster bench kafka`'s per-event account, and its parts."""

from __future__ import annotations

import math

import orjson
import pytest

from forecaster import ForecasterConfig
from pipelines.bench.kafka import (
    budget,
    encode_speed,
    forecast_messages,
    model_speed,
)


def test_budget_adds_every_stage_and_shares_the_sum_over_the_cores() -> None:
    stages = {"read_us": 5.0, "decode_us": 2.0, "learn_us": 3.0, "retrain_us": 4.0,
              "encode_us": 5.0, "produce_us": 6.0}  # fmt: skip
    b = budget(bare_rate=200_000.0, stages=stages, goal=0.7, cores=2)
    assert b["bare_us"] == pytest.approx(5.0)
    assert b["cpu_us"] == pytest.approx(25.0)
    assert b["goal_allows_cpu_us"] == pytest.approx(2 * 5.0 / 0.7)  # 14.3 us
    assert b["best_ratio_one_core"] == pytest.approx(5.0 / 25.0)
    assert b["best_ratio_all_cores"] == pytest.approx(10.0 / 25.0)
    assert b["best_ratio_all_cores_free_producer"] == pytest.approx(10.0 / 19.0)
    assert b["best_ratio_all_cores_free_producer_no_retrain"] == pytest.approx(10.0 / 15.0)
    assert "best_ratio_all_cores_other_producer" not in b
    c = budget(bare_rate=200_000.0, stages=stages, goal=0.7, cores=2, other_produce_us=1.0)
    assert c["best_ratio_all_cores_other_producer"] == pytest.approx(10.0 / 20.0)
    assert c["best_ratio_all_cores_other_producer_no_retrain"] == pytest.approx(10.0 / 16.0)
    # a ratio above the bare rate would mean the service reads faster than reading
    assert budget(200_000.0, dict.fromkeys(stages, 0.0), 0.7, 4)["best_ratio_all_cores"] == 1.0


def test_encode_speed_times_real_forecast_messages() -> None:
    us, msgs = encode_speed(forecast_messages(200, horizon=12))
    assert math.isfinite(us) and us > 0
    assert len(msgs) == 200
    key, value = msgs[7]
    doc = orjson.loads(value)
    assert key == doc["series"].encode() == b"sensor-0007"
    assert len(doc["yhat"]) == len(doc["horizon"]) == 12


def test_model_speed_times_learning_and_one_retrain_over_its_schedule() -> None:
    cfg = ForecasterConfig(horizon=3, hidden_size=4, window=8, burn_in=2, batch_windows=2,
                           train_steps=2, history=16, rebuild_steps=4,
                           retrain_every=500)  # fmt: skip
    m = model_speed(cfg, n_series=5, batch=10)
    assert m["learn_us"] > 0 and m["retrain_seconds"] > 0
    assert m["retrain_us"] == pytest.approx(m["retrain_seconds"] / 500 * 1e6)
    # no room for both a training and a validation window
    short = ForecasterConfig(horizon=3, hidden_size=4, window=8, burn_in=2, history=9,
                             rebuild_steps=4)  # fmt: skip
    with pytest.raises(RuntimeError, match=r"history \(9\) is too short"):
        model_speed(short, n_series=5, batch=10)
