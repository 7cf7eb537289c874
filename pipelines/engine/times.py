"""Every time the pipelines read, by one set of rules: messages, files, recordings, options.

- Text is ISO-8601; a time without an offset is UTC. A column of text that is not all
  ISO-8601 may hold one other format that pandas infers for the whole column.
- A number in a message is epoch milliseconds; a column of numbers holds epoch seconds,
  or milliseconds when any is above 1e11.
- Seconds come from whole microseconds, so an instant gives the same float whether it
  came as text, as integer milliseconds, or in a column of a file.
- Times run from year 1 to year 9999 (:data:`MIN_TS`, :data:`MAX_TS`).

:func:`iso_datetime` reads one text (the decoder, per message, and command options);
:func:`column_seconds` reads a whole column at once (files and recordings).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np

from forecaster.core import F64Array

if TYPE_CHECKING:
    import pandas as pd

# Event times from 0001-01-01 to 9999-12-31 (what ISO-8601 and datetime64[ms] can hold).
MIN_TS, MAX_TS = -62135596800.0, 253402300799.999
MS_ABOVE = 1e11  # a column of numbers this large holds milliseconds, not seconds


class NotATime(ValueError):
    """Text in a time column that no format reads; ``row`` is its position in the column."""

    def __init__(self, row: int, text: str) -> None:
        super().__init__(f"row {row}: {text[:40]!r} is not a date")
        self.row, self.text = row, text


def iso_datetime(text: str) -> datetime:
    """ISO-8601 text as an aware ``datetime`` (no offset: UTC).

    Raises ``ValueError`` for text that is not ISO-8601. ``.timestamp()`` of the result
    may still raise ``OverflowError`` or ``ValueError`` at the ends of year 1 and 9999.

    >>> iso_datetime("2024-05-01T12:00:00.5").timestamp()
    1714564800.5
    """
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def iso_milliseconds(text: str) -> int:
    """Epoch milliseconds of ISO-8601 text (no offset: UTC); ``ValueError`` otherwise.

    >>> iso_milliseconds("1970-01-01T00:00:01.250+00:00")
    1250
    """
    try:
        return int(iso_datetime(text).timestamp() * 1000)
    except OverflowError as exc:
        msg = f"{text!r} is outside the years 1 to 9999"
        raise ValueError(msg) from exc


def all_iso(col: pd.Series) -> bool:
    """Whether every value of a column (none missing, none a number) is ISO-8601 text.

    >>> import pandas as pd
    >>> all_iso(pd.Series(["1949-01", "1949-02"])), all_iso(pd.Series(["pump", "1949-02"]))
    (True, False)
    """
    import pandas as pd

    if pd.api.types.is_numeric_dtype(col.dtype) or col.isna().any():
        return False
    parsed = pd.to_datetime(col.astype(str), errors="coerce", format="ISO8601")
    return not bool(parsed.isna().any())


def column_seconds(col: pd.Series) -> F64Array:
    """A column of times as seconds since the epoch (NaN where missing).

    Raises :class:`NotATime` naming the first text no format reads.

    Examples
    --------
    >>> import pandas as pd
    >>> column_seconds(pd.Series(["1970-01-01T00:00:01.5Z", None]))
    array([1.5, nan])
    >>> column_seconds(pd.Series([1.5e12, 1.6e12]))  # milliseconds
    array([1.5e+09, 1.6e+09])
    """
    import pandas as pd

    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        x = col.to_numpy(dtype=np.float64, na_value=np.nan)
        big = np.nanmax(np.abs(x)) if np.isfinite(x).any() else 0.0
        return np.asarray(x / 1000.0 if big > MS_ABOVE else x, dtype=np.float64)
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
        raise NotATime(i, str(text.iloc[i]))
    us = parsed.dt.tz_convert(None).to_numpy(dtype="datetime64[us]").astype(np.int64)
    out = us / 1e6  # exact up to 2**53 microseconds (the years 1685 to 2255)
    far = np.flatnonzero(np.abs(us) > 2**53)
    if far.size:  # there float(us) rounds first; Python's int division rounds once, as
        # datetime.timestamp() does for the decoder
        out[far] = [u / 1_000_000 for u in us[far].tolist()]
    out[parsed.isna().to_numpy()] = np.nan
    return np.asarray(out, dtype=np.float64)
