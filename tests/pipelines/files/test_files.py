"""Files: the one table reader, columns found by name, times and numbers of a column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.engine.recorded import Columns, InputError
from pipelines.files.read import numbers, read_frame, times
from pipelines.files.source import parse_file


def test_columns_are_found_for_the_common_layouts(tmp_path: Path) -> None:
    month = tmp_path / "air.csv"
    month.write_text('"month","passengers"\n"1949-01",112\n"1949-02",118\n')
    got = parse_file(month)
    assert (got.columns.time, got.columns.value) == ("month", "passengers")
    assert got.batch.ts.tolist() == [-662688000.0, -660009600.0]  # 1949-01-01, 1949-02-01 UTC
    ett = tmp_path / "ett.csv"
    ett.write_text("date,HUFL,OT\n2016-07-01 00:00:00,5.8,30.5\n2016-07-01 01:00:00,5.6,27.7\n")
    got = parse_file(ett, Columns(covariates=("HUFL",)))
    assert (got.columns.time, got.columns.value) == ("date", "OT")
    assert got.batch.cov.tolist() == [[5.8], [5.6]] and got.batch.series == ["ett", "ett"]


def test_the_reader_takes_csv_or_parquet_and_the_first_rows_only(tmp_path: Path) -> None:
    frame = pd.DataFrame({" timestamp": ["2024-01-01T00:00", "2024-01-01T01:00"], "value": [1, 2]})
    frame.to_parquet(tmp_path / "t.parquet")
    (tmp_path / "t.csv").write_text("timestamp, value\n2024-01-01T00:00, 1\n2024-01-01T01:00, 2\n")
    for name in ("t.parquet", "t.csv"):
        df = read_frame(tmp_path / name, rows=1)
        assert list(df.columns) == ["timestamp", "value"] and len(df) == 1, name
        assert times(df, "timestamp", tmp_path / name).tolist() == [1704067200.0]
        assert numbers(df, "value", tmp_path / name).tolist() == [1.0]


def test_a_column_error_names_the_file_row_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("timestamp,value\n2024-01-01,1\nlater,x\n")
    df = read_frame(path)
    with pytest.raises(InputError, match=r"s\.csv: row 2 \(line 3\), column 'timestamp': 'later'"):
        times(df, "timestamp", path)
    with pytest.raises(InputError, match=r"row 2 \(line 3\), column 'value': 'x' is not a number"):
        numbers(df, "value", path)
    np.testing.assert_array_equal(numbers(pd.DataFrame({"v": ["1", ""]}), "v", path), [1.0, np.nan])
