"""The one reader of tables: CSV or Parquet files into pandas, checked, errors naming the file.

Every file the pipelines read goes through :func:`read_frame`: replay inputs, the
recordings ``forecaster feed`` plays, the benchmarks' public datasets. Numbers and
times in a column are read by :func:`numbers` and
:func:`~pipelines.engine.times.column_seconds`; an error names the file, the row and
the column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecaster.core import F64Array
from pipelines.engine.recorded import InputError
from pipelines.engine.times import NotATime, column_seconds

PARQUET = (".parquet", ".pq")
SUFFIXES = (".csv", *PARQUET)


def read_frame(path: Path, rows: int | None = None) -> pd.DataFrame:
    """The table in ``path`` (CSV, or Parquet by its suffix), as read by pandas.

    Column names are stripped of spaces; ``rows`` keeps only the first rows. Raises
    :class:`~pipelines.engine.recorded.InputError` naming the file when it cannot be
    read or holds no data row.
    """
    try:
        if path.suffix.lower() in PARQUET:
            df = pd.read_parquet(path)
            df = df if rows is None else df.head(rows)
        else:
            df = pd.read_csv(path, skipinitialspace=True, nrows=rows)
    except pd.errors.EmptyDataError:
        msg = f"{path}: the file is empty (no header row)"
        raise InputError(msg) from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        text = " ".join(str(exc).split())
        msg = f"{path}: cannot be read as {'Parquet' if path.suffix != '.csv' else 'CSV'}: {text}"
        raise InputError(msg) from None
    df.columns = [str(c).strip() for c in df.columns]
    if df.shape[0] == 0:
        msg = f"{path}: no data rows (columns: {', '.join(df.columns)})"
        raise InputError(msg)
    return df


def where(path: Path, row: int, col: str) -> str:
    """``<file>: row R (line L), column 'c'``: the place an error points at."""
    line = f" (line {row + 2})" if path.suffix.lower() == ".csv" else ""
    return f"{path}: row {row + 1}{line}, column {col!r}"


def numbers(df: pd.DataFrame, col: str, path: Path) -> F64Array:
    """A column as float64 (NaN where empty); text that is not a number is an error."""
    s = df[col]
    if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
        num = pd.to_numeric(s, errors="coerce")
        bad = np.flatnonzero(num.isna().to_numpy() & s.notna().to_numpy())
        if bad.size:
            i = int(bad[0])
            text = str(s.iloc[i])
            if text.strip():
                msg = f"{where(path, i, col)}: {text[:40]!r} is not a number"
                raise InputError(msg)
        s = num
    return np.asarray(s.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def times(df: pd.DataFrame, col: str, path: Path) -> F64Array:
    """A column of times as epoch seconds (:mod:`pipelines.engine.times`); NaN where empty."""
    try:
        return column_seconds(df[col])
    except NotATime as exc:
        msg = f"{where(path, exc.row, col)}: {exc.text[:40]!r} is not a date"
        raise InputError(msg) from None
