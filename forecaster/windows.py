"""Training and validation windows, drawn from the series' histories for a retrain.

:func:`draw_windows` picks where windows start (the recent past for validation, what
came before for training); :func:`gather` copies them out of the histories, and
:class:`TrainBatches` hands a retrain its training windows batch by batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecaster.config import ForecasterConfig
from forecaster.core import F64Array
from forecaster.core.params import I64Array
from forecaster.core.windows import gather_windows
from forecaster.series import SeriesTable


@dataclass(frozen=True)
class Windows:
    """Training windows: inputs ``x (B, T, D)``, targets and weights ``(B, T, K)``.

    ``start`` is the event index (in its series) of each window's first event.
    """

    x: F64Array
    y: F64Array
    w: F64Array
    start: I64Array


@dataclass(frozen=True)
class Draw:
    """Windows drawn, not yet gathered.

    Each one's series row, first event, and the number of events its series had seen.
    """

    rows: I64Array
    start: I64Array
    counts: I64Array


def draw_windows(
    table: SeriesTable,
    cfg: ForecasterConfig,
    rng: np.random.Generator,
    n: int,
    recent: bool | None = None,
) -> Draw | None:
    """Draw ``n`` windows uniformly over the windows the histories hold.

    With ``recent=True`` only windows ending in the last ``validation_fraction`` of each
    history are drawn, with ``recent=False`` only those ending before it (the future is
    held out from training), with ``None`` any. ``None`` is returned when no series has
    such a window.
    """
    rows = table.active_rows()
    counts = table.count[rows]
    avail = np.minimum(counts, cfg.history)
    first = counts - avail  # oldest event index still held
    lo = np.zeros_like(avail)  # window starts, as offsets from ``first``
    hi = np.maximum(avail - cfg.window + 1, 0)  # exclusive
    if recent is not None:
        cut = np.maximum(avail - cfg.window - np.round(cfg.validation_fraction * avail), 0)
        cut = cut.astype(np.int64)
        lo, hi = (np.minimum(cut, hi), hi) if recent else (lo, np.minimum(cut, hi))
    per_row = np.maximum(hi - lo, 0)
    if per_row.sum() == 0:
        return None
    pick = rng.choice(rows.size, size=n, p=per_row / per_row.sum())
    start = first[pick] + lo[pick] + rng.integers(0, per_row[pick])
    return Draw(np.ascontiguousarray(rows[pick]), np.ascontiguousarray(start, dtype=np.int64),
                np.ascontiguousarray(counts[pick]))  # fmt: skip


def gather(
    draw: Draw, rows: I64Array, hist: tuple[F64Array, F64Array, F64Array], cfg: ForecasterConfig,
    out: Windows | None = None,
) -> Windows:  # fmt: skip
    """The drawn windows, read from histories ``hist`` (inputs, values, scales) at ``rows``.

    Targets are ``(y[t+k] - y[t]) / scale[t]``; weights are 0 for the first ``burn_in``
    positions and where ``t + k`` is not yet in the history. ``out`` is filled when given.
    """
    n, t, k = draw.start.size, cfg.window, cfg.horizon
    if out is None:
        out = Windows(np.empty((n, t, hist[0].shape[2])), np.empty((n, t, k)),
                      np.empty((n, t, k)), draw.start)  # fmt: skip
    gather_windows(*hist, rows, draw.start, draw.counts, cfg.burn_in, out.x, out.y, out.w)
    return out


def sample_windows(
    table: SeriesTable,
    cfg: ForecasterConfig,
    rng: np.random.Generator,
    n: int,
    recent: bool | None = None,
) -> Windows | None:
    """Draw ``n`` windows as :func:`draw_windows` does and gather them (:func:`gather`)."""
    draw = draw_windows(table, cfg, rng, n, recent)
    hist = (table.hist_x, table.hist_y, table.hist_scale)
    return None if draw is None else gather(draw, draw.rows, hist, cfg)


class TrainBatches:
    """A retrain's training windows, batch by batch, as :func:`sample_windows` draws them.

    Gathered all at once, or, when the histories they come from hold fewer events than
    the windows do (one series: 4,096 events against 3,200 windows of 96), a batch at a
    time from a copy of those histories: the same values, a small fraction of the
    memory, and no gathering for batches that early stopping skips. ``lazy`` forces
    either way (``None``: the smaller).
    """

    def __init__(
        self, table: SeriesTable, draw: Draw, cfg: ForecasterConfig, lazy: bool | None = None
    ) -> None:
        self.cfg, self.draw = cfg, draw
        used, at = np.unique(draw.rows, return_inverse=True)
        if lazy is None:
            lazy = used.size * cfg.history < draw.rows.size * cfg.window
        self.lazy = lazy
        b, t, k = cfg.batch_windows, cfg.window, cfg.horizon
        if lazy:  # copies of the histories the windows read, and one batch's arrays
            self._hist = (table.hist_x[used], table.hist_y[used], table.hist_scale[used])
            self._rows = np.ascontiguousarray(at.reshape(-1), dtype=np.int64)
            self._out = Windows(np.empty((b, t, table.hist_x.shape[2])), np.empty((b, t, k)),
                                np.empty((b, t, k)), draw.start[:b])  # fmt: skip
        else:
            hist = (table.hist_x, table.hist_y, table.hist_scale)
            self._all = gather(draw, draw.rows, hist, cfg)

    def batch(self, step: int) -> Windows:
        """Windows ``step * batch_windows`` to ``(step + 1) * batch_windows`` (reused arrays)."""
        b = self.cfg.batch_windows
        sel = slice(step * b, (step + 1) * b)
        if not self.lazy:
            a = self._all
            return Windows(a.x[sel], a.y[sel], a.w[sel], a.start[sel])
        d = self.draw
        part = Draw(d.rows[sel], d.start[sel], d.counts[sel])
        return gather(part, self._rows[sel], self._hist, self.cfg, self._out)
