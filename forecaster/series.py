"""Per-series state, stored column-wise: one row per series in every array.

Rows are handed out on first sight of a series id and recycled after eviction. All
arrays grow together (doubling), so memory is linear in the number of series and
:meth:`SeriesTable.bytes_per_series` reports it exactly.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from forecaster.core.params import I64Array

Shapes = dict[str, tuple[int, ...]]


def base_shapes(horizon: int) -> Shapes:
    """Fields every stream model keeps per series (shapes after the row axis)."""
    return {
        "count": (),  # events learned (int64)
        "last_ts": (),  # event time of the last event, seconds
        "last_y": (),
        "var": (),  # running mean square of the (clipped) changes
        "anchor": (),  # var from before a fault episode (0: none); see core/events.py
        "calm": (),  # changes in a row that look normal by the anchor
        "mean_dt": (),  # running mean time between events
        "pend_yhat": (horizon, horizon),  # forecasts issued, ring indexed by count % horizon
        "pend_half": (horizon, horizon),  # their interval half-widths
    }


class SeriesTable:
    """Rows of per-series state, addressed by series id.

    Examples
    --------
    >>> table = SeriesTable(base_shapes(horizon=2))
    >>> table.rows(["a", "b", "a"]).tolist()
    [0, 1, 0]
    >>> len(table), table.bytes_per_series()
    (2, 120)
    """

    def __init__(self, shapes: Shapes, capacity: int = 16) -> None:
        self.shapes = dict(shapes)
        self.index: dict[str, int] = {}
        self.ids: list[str | None] = []
        self.free: list[int] = []
        self._active: I64Array | None = None  # active_rows(), until a row is taken or freed
        self.arrays: dict[str, np.ndarray] = {}
        for name, shape in self.shapes.items():
            dtype = np.int64 if name == "count" else np.float64
            self.arrays[name] = np.zeros((capacity, *shape), dtype=dtype)

    def __len__(self) -> int:
        return len(self.index)

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.__dict__["arrays"][name]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def capacity(self) -> int:
        """Rows allocated (in use or free)."""
        return int(self.arrays["count"].shape[0])

    def bytes_per_series(self) -> int:
        """Bytes of array state one series occupies."""
        return sum(a[0].nbytes for a in self.arrays.values())

    def nbytes(self) -> int:
        """Bytes of all allocated rows."""
        return sum(a.nbytes for a in self.arrays.values())

    def rows(self, ids: Iterable[str]) -> I64Array:
        """Row of each id, creating (zeroed) rows for ids not seen before."""
        index = self.index
        out = []
        for sid in ids:
            row = index.get(sid)
            if row is None:
                row = self._add(sid)
            out.append(row)
        return np.array(out, dtype=np.int64)

    def active_rows(self) -> I64Array:
        """Rows currently holding a series, in row order (read-only).

        Kept until a row is taken or freed: the pooling of expert weights asks every
        1,024 events, and sorting 10,000 rows each time cost more than the pooling.
        """
        if self._active is None:
            rows = np.fromiter(self.index.values(), dtype=np.int64, count=len(self.index))
            rows.sort()
            rows.flags.writeable = False
            self._active = rows
        return self._active

    def evict_older_than(self, cutoff: float) -> list[str]:
        """Drop every series whose last event is before ``cutoff``; return their ids."""
        rows = self.active_rows()
        if rows.size == 0:
            return []
        stale = rows[self.arrays["last_ts"][rows] < cutoff]
        gone = []
        for row in stale.tolist():
            sid = self.ids[row]
            assert sid is not None
            del self.index[sid]
            self._active = None
            self.ids[row] = None
            self.free.append(row)
            gone.append(sid)
        return gone

    def _add(self, sid: str) -> int:
        self._active = None
        if self.free:
            row = self.free.pop()
            for a in self.arrays.values():
                a[row] = 0
            self.ids[row] = sid
        else:
            row = len(self.ids)
            if row == self.capacity:
                self._grow(2 * self.capacity)
            self.ids.append(sid)
        self.index[sid] = row
        return row

    def _grow(self, capacity: int) -> None:
        for name, a in self.arrays.items():
            bigger = np.zeros((capacity, *a.shape[1:]), dtype=a.dtype)
            bigger[: a.shape[0]] = a
            self.arrays[name] = bigger

    # Snapshots: plain arrays and a list of ids (None for free rows).
    def state(self) -> tuple[dict[str, np.ndarray], list[str | None]]:
        """Arrays (trimmed to used rows) and the row -> id list, for snapshots."""
        n = len(self.ids)
        return {k: a[:n].copy() for k, a in self.arrays.items()}, list(self.ids)

    def load(self, arrays: dict[str, np.ndarray], ids: list[str | None]) -> None:
        """Replace this table's contents with a :meth:`state`."""
        expected = self.shapes
        for name, shape in expected.items():
            if name not in arrays:
                msg = f"series state {name!r} is missing"
                raise ValueError(msg)
            got = arrays[name].shape[1:]
            if got != shape:
                msg = f"series state {name!r} has shape {got}, this model needs {shape}"
                raise ValueError(msg)
        n = len(ids)
        self.ids = list(ids)
        self.index = {sid: row for row, sid in enumerate(ids) if sid is not None}
        self.free = [row for row, sid in enumerate(ids) if sid is None]
        self._active = None
        for name in expected:
            a = np.zeros((max(n, 16), *expected[name]), dtype=arrays[name].dtype)
            a[:n] = arrays[name]
            self.arrays[name] = a
