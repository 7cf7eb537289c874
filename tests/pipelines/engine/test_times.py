"""One set of rules for every time: messages, files and options agree on every instant."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.engine.decode import Decoder
from pipelines.engine.records import Message
from pipelines.engine.times import (
    MAX_TS,
    MIN_TS,
    NotATime,
    column_seconds,
    iso_datetime,
    iso_milliseconds,
)


def test_a_column_of_times_whatever_the_resolution() -> None:
    col = pd.Series(["1970-01-01 00:00:00", "2014-01-07 02:05:00"])
    np.testing.assert_array_equal(column_seconds(col), [0.0, 1389060300.0])


def test_numbers_in_a_column_are_seconds_or_milliseconds_above_1e11() -> None:
    np.testing.assert_array_equal(column_seconds(pd.Series([1.0, 2.5])), [1.0, 2.5])
    np.testing.assert_array_equal(column_seconds(pd.Series([1.5e11, np.nan])), [1.5e8, np.nan])


def test_a_column_of_another_format_is_read_whole_and_bad_text_is_named() -> None:
    got = column_seconds(pd.Series(["01/02/2024 10:00", "01/03/2024 10:00"]))
    np.testing.assert_array_equal(got, [1704189600.0, 1704276000.0])
    with pytest.raises(NotATime) as err:
        column_seconds(pd.Series(["2024-01-01", "soon", ""]))
    assert (err.value.row, err.value.text) == (1, "soon")


@given(st.integers(int(MIN_TS * 1000) + 86_400_000, int(MAX_TS * 1000) - 86_400_000))
def test_text_milliseconds_and_a_file_column_give_the_same_float(ms: int) -> None:
    text = pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()
    decoded = Decoder().decode_batch([
        Message("t", 0, 0, b"s", orjson.dumps({"series": "s", "ts": text, "value": 1.0})),
        Message("t", 0, 1, b"s", orjson.dumps({"series": "s", "ts": ms, "value": 1.0})),
    ])  # fmt: skip
    from_column = column_seconds(pd.Series([text]))[0]
    assert decoded.ts[0] == decoded.ts[1] == from_column == iso_datetime(text).timestamp()


def test_iso_text_without_an_offset_is_utc() -> None:
    assert iso_milliseconds("2024-05-01T12:00:00") == iso_milliseconds("2024-05-01T12:00:00Z")
    with pytest.raises(ValueError, match="isoformat"):
        iso_datetime("not a time")
