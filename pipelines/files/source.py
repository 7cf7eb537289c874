"""Recorded events from CSV or Parquet files: parsed once, fed to the run loop as columns.

A file is one input partition: its rows are its records (offset = the data row, from 0)
and the loop learns them exactly as it learns a Kafka partition, but from
:class:`~pipelines.engine.records.EventBatch` columns, with no message per row.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from forecaster.core import F64Array
from pipelines.engine.records import (
    MISSING_FEATURE,
    MISSING_FIELD,
    NON_FINITE,
    EventBatch,
    Message,
    Rejected,
)
from pipelines.engine.sources import TP, Listener, LocalPartitions

SUFFIXES = (".csv", ".parquet", ".pq")
TIME_NAMES = ("timestamp", "time", "ts", "date", "datetime")
SERIES_NAMES = ("series",)
_US = np.int64(1_000_000)


class InputError(ValueError):
    """A file that cannot be replayed; the message names the file, row and column."""


@dataclass(frozen=True)
class Columns:
    """Which columns hold what; ``None`` means "find it by name" (see the module doc)."""

    time: str | None = None
    value: str | None = None
    series: str | None = None
    covariates: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedFile:
    """One file's events (a whole partition) and the columns they came from."""

    path: Path
    batch: EventBatch
    columns: Columns  # as resolved
    rows: int
    source_topic: str | None = None  # read from Kafka: the topic, and its partition
    partition: int = 0

    @property
    def topic(self) -> str:
        """The partition's topic in the loop: the file's name, or the Kafka topic."""
        return self.source_topic or self.path.name


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


def read_frame(path: Path) -> pd.DataFrame:
    """The table in ``path`` (CSV, or Parquet by its suffix), as read by pandas."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, skipinitialspace=True)
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


def _find(df: pd.DataFrame, names: Sequence[str]) -> str | None:
    lower = {c.lower(): c for c in df.columns}
    return next((lower[n] for n in names if n in lower), None)


def _first_dates(df: pd.DataFrame) -> str | None:
    """The first text column whose first rows all parse as dates (``month``, ``period``...)."""
    for col in df.columns:
        head = df[col].head(20)
        if pd.api.types.is_numeric_dtype(head.dtype) or head.isna().any():
            continue
        parsed = pd.to_datetime(head.astype(str), errors="coerce", format="ISO8601")
        if not parsed.isna().any():
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


def _where(path: Path, row: int, col: str) -> str:
    line = f" (line {row + 2})" if path.suffix.lower() == ".csv" else ""
    return f"{path}: row {row + 1}{line}, column {col!r}"


def _numbers(df: pd.DataFrame, col: str, path: Path) -> F64Array:
    """A column as float64; text that is not a number is an error naming its row."""
    s = df[col]
    if pd.api.types.is_bool_dtype(s.dtype) or not pd.api.types.is_numeric_dtype(s.dtype):
        num = pd.to_numeric(s, errors="coerce")
        bad = np.flatnonzero(num.isna().to_numpy() & s.notna().to_numpy())
        if bad.size:
            i = int(bad[0])
            text = str(s.iloc[i])
            if text.strip():
                msg = f"{_where(path, i, col)}: {text[:40]!r} is not a number"
                raise InputError(msg)
        s = num
    return np.asarray(s.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def epoch_seconds_exact(col: pd.Series, path: Path, name: str) -> F64Array:
    """Event times as seconds since the epoch (NaN where missing), as the live decoder has them.

    Text is ISO-8601 (or any format pandas infers; a time without an offset is UTC);
    numbers are epoch seconds, or milliseconds when above 1e11. Seconds are computed
    from whole microseconds, so ``...T12:00:00.123Z`` gives exactly the float the
    decoder gives for the same text or for the integer milliseconds.

    Examples
    --------
    >>> epoch_seconds_exact(pd.Series(["1970-01-01T00:00:01.5Z", None]), Path("f.csv"), "t")
    array([1.5, nan])
    """
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        x = col.to_numpy(dtype=np.float64, na_value=np.nan)
        big = np.nanmax(np.abs(x)) if np.isfinite(x).any() else 0.0
        return np.asarray(x / 1000.0 if big > 1e11 else x, dtype=np.float64)
    text = col.astype("string")
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    missing = text.isna().to_numpy() | (text.str.strip() == "").fillna(True).to_numpy()
    bad = parsed.isna().to_numpy() & ~missing
    if bad.any():  # not ISO-8601: let pandas infer one format for the column
        inferred = pd.to_datetime(text, utc=True, errors="coerce")
        if int(inferred.isna().sum()) < int(parsed.isna().sum()):
            parsed = inferred
            bad = parsed.isna().to_numpy() & ~missing
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = f"{_where(path, i, name)}: {str(text.iloc[i])[:40]!r} is not a date"
        raise InputError(msg)
    us = parsed.dt.tz_convert(None).to_numpy(dtype="datetime64[us]").astype(np.int64)
    out = us / 1e6
    out[parsed.isna().to_numpy()] = np.nan
    return np.asarray(out, dtype=np.float64)


def parse_file(path: Path, cols: Columns | None = None) -> ParsedFile:
    """Read and check one file; its events as one :class:`EventBatch` (offset = row)."""
    df = read_frame(path)
    cols = resolve_columns(df, cols or Columns(), path)
    assert cols.time is not None and cols.value is not None
    n = df.shape[0]
    ts = epoch_seconds_exact(df[cols.time], path, cols.time)
    values = _numbers(df, cols.value, path)
    cov = np.zeros((n, len(cols.covariates)))
    for j, name in enumerate(cols.covariates):
        cov[:, j] = _numbers(df, name, path)
    if cols.series is not None:
        raw = df[cols.series]
        if raw.isna().any():
            i = int(np.flatnonzero(raw.isna().to_numpy())[0])
            msg = f"{_where(path, i, cols.series)}: no series id"
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
    return ParsedFile(path, batch, cols, n)


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


class FileSource(LocalPartitions):
    """Parsed files as partitions ``(file name, 0)``; a poll returns up to ``batch`` events each.

    ``now`` is the latest event time polled: the replay's clock.
    """

    def __init__(self, files: Mapping[TP, EventBatch], batch: int = 2048) -> None:
        super().__init__()
        self.files = dict(files)
        self.batch = batch
        self.pos = dict.fromkeys(self.files, 0)  # next event (index)
        self.start_offset = dict.fromkeys(self.files, 0)  # offset after the last polled record
        self.now = 0.0
        self._rej_offsets = {
            tp: np.array([r.record.offset for r in b.rejected], dtype=np.int64)
            for tp, b in self.files.items()
        }

    @property
    def exhausted(self) -> bool:
        """Every record has been returned."""
        return all(self.start_offset[tp] >= b.end for tp, b in self.files.items())

    def clock(self) -> float:
        """The event-time clock (seconds)."""
        return self.now

    def start(self, on_assigned: Listener, on_revoked: Listener) -> None:
        on_assigned(list(self.files))

    def poll(self, timeout_ms: int) -> dict[TP, EventBatch]:
        out: dict[TP, EventBatch] = {}
        for tp, b in self.files.items():
            lo_off = self.start_offset[tp]
            if tp in self.paused or lo_off >= b.end:
                continue
            lo = self.pos[tp]
            hi = min(len(b), lo + self.batch)
            end = int(b.offsets[hi]) if hi < len(b) else b.end
            r = self._rej_offsets[tp]
            rej = b.rejected[int(np.searchsorted(r, lo_off)) : int(np.searchsorted(r, end))]
            part = b.window(lo, hi)
            out[tp] = EventBatch(part.offsets, part.series, part.ts, part.values, part.cov, end,
                                 rej)  # fmt: skip
            if hi > lo:
                self.now = max(self.now, float(part.ts.max()))
            self.pos[tp], self.start_offset[tp] = hi, end
        return out

    def position(self, tp: TP) -> int:
        return self.start_offset[tp]

    def seek(self, tp: TP, offset: int) -> None:
        b = self.files[tp]
        self.pos[tp] = int(np.searchsorted(b.offsets, offset))
        self.start_offset[tp] = offset
