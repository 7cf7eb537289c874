"""The arithmetic behind `forecaster bench kafka`'s per-event budget line."""

from __future__ import annotations

import math

import pytest

from pipelines.benchmarks.kafka import budget, encode_speed


def test_budget_is_what_the_goal_leaves_and_what_json_alone_allows() -> None:
    b = budget(bare_rate=200_000.0, decode_us=2.0, encode_us=5.0, goal=0.7)
    assert b["bare_us"] == pytest.approx(5.0)
    assert b["goal_leaves_us"] == pytest.approx(5.0 / 0.7 - 5.0)  # 2.14 us
    assert b["json_us"] == pytest.approx(7.0)
    assert b["best_ratio_one_core"] == pytest.approx(5.0 / 12.0)


def test_encode_speed_times_real_forecast_messages() -> None:
    us = encode_speed(200, horizon=12)
    assert math.isfinite(us) and us > 0
