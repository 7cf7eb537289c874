"""Forecast messages: every time an event can carry is written, fast path or not."""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import given
from hypothesis import strategies as st

from forecaster.stream import Update
from pipelines.engine.batches import ForecastBatch
from pipelines.engine.encode import encode_forecasts, iso_times
from pipelines.engine.times import MAX_TS, MIN_TS

# orjson writes datetime64 up to 9999-12-30T22:00; beyond, the text comes from datetime.
ORJSON_MAX_TS = 253_402_207_200.0


@given(st.lists(st.floats(MIN_TS, ORJSON_MAX_TS), min_size=1, max_size=20))
def test_the_slow_path_writes_the_same_text_as_orjson(seconds: list[float]) -> None:
    times = np.array(seconds)
    fast = iso_times(times)
    slow = iso_times(np.append(times, MAX_TS))[:-1]  # one late time sends all the slow way
    assert slow == fast


def test_forecasts_of_an_event_late_in_year_9999_are_written() -> None:
    ts = np.array([253_402_293_600.0])  # 9999-12-31T22:00:00
    nan = np.full((1, 3), np.nan)
    upd = Update(
        np.array([True]), ["s"], ts, np.array([1.5]), np.array([[1.0, 2.0, 3.0]]),
        np.array([[0.0, 1.0, 2.0]]), np.array([[2.0, 3.0, 4.0]]),
        ts[:, None] + np.array([[1800.0, 3600.0, 7200.0]]),  # the last step is in year 10000
        nan, np.zeros((1, 3), bool), np.array([4]),
    )  # fmt: skip
    batch = ForecastBatch("in", 0, np.array([7]), upd, issued_at=1795478400.0)
    [(key, value)] = encode_forecasts(batch)
    assert batch.messages == [(key, value)]
    doc = orjson.loads(value)
    assert key == b"s" and doc["ts"] == "9999-12-31T22:00:00Z"
    assert doc["issued_at"] == "2026-11-24T00:00:00Z"
    assert doc["horizon"] == ["9999-12-31T22:30:00Z", "9999-12-31T23:00:00Z", None]
    assert doc["yhat"] == [1.0, 2.0, 3.0] and doc["model_version"] == 4


def test_times_outside_the_years_1_to_9999_are_null() -> None:
    assert iso_times(np.array([MIN_TS, MIN_TS - 1.0, np.nan, MAX_TS + 1.0])) == [
        "0001-01-01T00:00:00Z", None, None, None,
    ]  # fmt: skip
