"""Baselines under the same rules as the GRU: last value, seasonal naive, EWMA.

They share :class:`forecaster.stream.StreamModel`, so late events, duplicate times,
scoring alignment and intervals are handled exactly as for the GRU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from forecaster.config import ForecasterConfig
from forecaster.core import F64Array
from forecaster.events import Wave
from forecaster.series import Shapes
from forecaster.stream import StreamModel


def _config(horizon: int, coverage: float) -> ForecasterConfig:
    return ForecasterConfig(horizon=horizon, coverage=coverage, calendar=(), use_dt=False)


class LastValue(StreamModel):
    """Forecast every step as the last value seen.

    Examples
    --------
    >>> model = LastValue(horizon=2)
    >>> upd = model.learn(["a"] * 4, [0.0, 60.0, 120.0, 180.0], [1.0, 2.0, 4.0, 7.0])
    >>> upd.yhat[-1].tolist(), upd.errors[-1].tolist()
    ([7.0, 7.0], [3.0, 5.0])
    """

    def __init__(self, horizon: int = 12, coverage: float = 0.9) -> None:
        super().__init__(_config(horizon, coverage))

    def _advance(self, w: Wave) -> F64Array:
        return np.repeat(w.value[:, None], self.horizon, axis=1)


class SeasonalNaive(StreamModel):
    """Forecast step k as the value one season before it (``season`` events).

    Until a series has a full season it forecasts its last value.

    Examples
    --------
    >>> model = SeasonalNaive(season=3, horizon=4)
    >>> upd = model.learn(["a"] * 6, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [1, 2, 3, 1, 2, 3])
    >>> upd.yhat[-1].tolist()
    [1.0, 2.0, 3.0, 1.0]
    """

    def __init__(self, season: int, horizon: int = 12, coverage: float = 0.9) -> None:
        if not isinstance(season, int) or season < 1:
            msg = f"season must be an integer >= 1, got {season!r}"
            raise ValueError(msg)
        self.season = season
        super().__init__(_config(horizon, coverage))

    def _init_kwargs(self) -> dict[str, Any]:
        return {**super()._init_kwargs(), "season": self.season}

    def _extra_shapes(self) -> Shapes:
        return {"season_y": (self.season,)}

    def _advance(self, w: Wave) -> F64Array:
        tab, m = self.table, self.season
        tab.season_y[w.rows, w.count % m] = w.value
        steps = np.arange(1, self.horizon + 1)
        # y[t+k] ~ y[t+k-m*ceil(k/m)], an event already seen
        back = m * np.ceil(steps / m).astype(np.int64) - steps  # events before t
        src = w.count[:, None] - back[None, :]
        yhat = tab.season_y[w.rows[:, None], np.maximum(src, 0) % m]
        full = (w.count + 1 >= m)[:, None]
        return np.where(full, yhat, w.value[:, None])


class EWMA(StreamModel):
    """Forecast every step as an exponentially weighted mean of the series.

    ``alpha`` is the weight of the newest value; :func:`forecaster.evaluate.tune_ewma`
    picks it on a warm-up span.

    Examples
    --------
    >>> model = EWMA(alpha=0.5, horizon=2)
    >>> model.learn(["a"] * 3, [0.0, 1.0, 2.0], [4.0, 8.0, 0.0]).yhat[-1].tolist()
    [3.0, 3.0]
    """

    def __init__(self, alpha: float, horizon: int = 12, coverage: float = 0.9) -> None:
        if not 0.0 < alpha <= 1.0:
            msg = f"alpha must be in (0, 1], got {alpha!r}"
            raise ValueError(msg)
        self.alpha = alpha
        super().__init__(_config(horizon, coverage))

    def _init_kwargs(self) -> dict[str, Any]:
        return {**super()._init_kwargs(), "alpha": self.alpha}

    def _extra_shapes(self) -> Shapes:
        return {"level": ()}

    def _advance(self, w: Wave) -> F64Array:
        tab = self.table
        prev = tab.level[w.rows]
        level = np.where(w.count == 0, w.value, prev + self.alpha * (w.value - prev))
        tab.level[w.rows] = level
        return np.repeat(level[:, None], self.horizon, axis=1)
