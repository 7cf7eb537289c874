"""Recorded events from CSV or Parquet files: each file parsed once into a recorded partition.

A file is one input partition (:class:`~pipelines.engine.recorded.RecordedPartition`):
its rows are its records (offset = the data row, from 0) and the loop learns them
exactly as it learns a Kafka partition, but from
:class:`~pipelines.engine.batches.EventBatch` columns, with no message per row.

Columns are found by name unless given: the time is the first of ``timestamp``,
``time``, ``ts``, ``date``, ``datetime`` (any case), else the first text column that
holds ISO dates (``month``: ``1949-01``); the value is ``value``, else the
only other column, else the last one (the ``date,...,OT`` layout); the series is the
``series`` column if there is one, else the file's stem. Rows are events in file order.

A row the live service would reject (no value, no time, a non-finite number) is a
rejected record with the same reason, and the replay goes on. Text where a date or a
number belongs, a missing column or an empty file is an :class:`InputError` naming the
file, the row and the column.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from pipelines.engine.batches import EventBatch
from pipelines.engine.recorded import Columns, InputError, RecordedPartition
from pipelines.engine.records import MISSING_FEATURE, MISSING_FIELD, NON_FINITE, Message, Rejected
from pipelines.engine.times import all_iso
from pipelines.files.read import SUFFIXES, numbers, read_frame, times, where

TIME_NAMES = ("timestamp", "time", "ts", "date", "datetime")
SERIES_NAMES = ("series",)


def input_files(path: Path) -> list[Path]:
    """``path`` itself, or the CSV and Parquet files in the folder ``path``, by name."""
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
        if not found:
            msg = f"{path}: no .csv or .parquet files in this folder"
            raise InputError(msg)
        return found
    if not path.exists():
        msg = f"{path}: no such file or folder"
        raise InputError(msg)
    return [path]


def _find(df: pd.DataFrame, names: Sequence[str]) -> str | None:
    lower = {c.lower(): c for c in df.columns}
    return next((lower[n] for n in names if n in lower), None)


def _first_dates(df: pd.DataFrame) -> str | None:
    """The first text column whose first rows all parse as dates (``month``, ``period``...)."""
    for col in df.columns:
        if all_iso(df[col].head(20)):
            return str(col)
    return None


def resolve_columns(df: pd.DataFrame, cols: Columns, path: Path) -> Columns:
    """Fill in the columns not given; errors name the file and the missing column."""
    have = ", ".join(df.columns)
    for role, name in (("time", cols.time), ("value", cols.value), ("series", cols.series)):
        if name is not None and name not in df.columns:
            msg = f"{path}: no {role} column {name!r} (columns: {have})"
            raise InputError(msg)
    for name in cols.covariates:
        if name not in df.columns:
            msg = f"{path}: no covariate column {name!r} (columns: {have})"
            raise InputError(msg)
    time = cols.time or _find(df, TIME_NAMES) or _first_dates(df)
    if time is None:
        msg = f"{path}: no time column (looked for {', '.join(TIME_NAMES)}; columns: {have}); "
        msg += "name it with --time-col"
        raise InputError(msg)
    series = cols.series or _find(df, SERIES_NAMES)
    value = cols.value
    if value is None:
        value = "value" if "value" in df.columns else None
        rest = [c for c in df.columns if c not in (time, series, *cols.covariates)]
        if value is None and rest:
            value = rest[0] if len(rest) == 1 else rest[-1]
        if value is None:
            msg = f"{path}: no value column (columns: {have}); name it with --value-col"
            raise InputError(msg)
    return Columns(time, value, series, cols.covariates)


def parse_file(path: Path, cols: Columns | None = None) -> RecordedPartition:
    """Read and check one file; its events as one :class:`EventBatch` (offset = row)."""
    df = read_frame(path)
    cols = resolve_columns(df, cols or Columns(), path)
    assert cols.time is not None and cols.value is not None
    n = df.shape[0]
    ts = times(df, cols.time, path)
    values = numbers(df, cols.value, path)
    cov = np.zeros((n, len(cols.covariates)))
    for j, name in enumerate(cols.covariates):
        cov[:, j] = numbers(df, name, path)
    if cols.series is not None:
        raw = df[cols.series]
        if raw.isna().any():
            i = int(np.flatnonzero(raw.isna().to_numpy())[0])
            msg = f"{where(path, i, cols.series)}: no series id"
            raise InputError(msg)
        series: list[str] = raw.astype(str).tolist()
    else:
        series = [path.stem] * n
    # The rows the live decoder would reject, with its reasons.
    reason = np.full(n, "", dtype=object)
    for arr in (values, ts):
        reason[np.isnan(arr) & (reason == "")] = MISSING_FIELD
        reason[np.isinf(arr) & (reason == "")] = NON_FINITE
    if cov.shape[1]:
        reason[np.isnan(cov).any(axis=1) & (reason == "")] = MISSING_FEATURE
        reason[np.isinf(cov).any(axis=1) & (reason == "")] = NON_FINITE
    bad = np.flatnonzero(reason != "")
    topic = path.name
    rejected = tuple(
        Rejected(_row_message(df, topic, int(i), series[i]), str(reason[i]),
                 _detail(str(reason[i]), cols, values[i], ts[i]))
        for i in bad.tolist()
    )  # fmt: skip
    good = np.flatnonzero(reason == "")
    batch = EventBatch(good.astype(np.int64), series if not bad.size else [series[i] for i in
                       good.tolist()], ts[good], values[good], cov[good], n, rejected)  # fmt: skip
    return RecordedPartition(str(path), topic, 0, batch, n, cols)


def _detail(reason: str, cols: Columns, value: float, ts: float) -> str:
    if reason == MISSING_FIELD:
        return f"no {'value' if np.isnan(value) else 'time'} ({cols.value!r} / {cols.time!r})"
    if reason == MISSING_FEATURE:
        return "a covariate is missing"
    return "a non-finite number"


def _row_message(df: pd.DataFrame, topic: str, row: int, sid: str) -> Message:
    """A rejected row as a message: its cells as text, keyed by series (dead letters)."""
    cells = {str(k): (None if pd.isna(v) else str(v)) for k, v in df.iloc[row].items()}
    return Message(topic, 0, row, sid.encode(), orjson.dumps(cells))
