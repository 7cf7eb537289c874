"""River's forecasters as peers of the accuracy benchmark, under this project's protocol.

Each peer learns ``y[t]`` (``learn_one``) and then issues its forecast of the next K
values (``forecast(K)``), exactly as :class:`forecaster.OnlineForecaster` learns an
event and then forecasts; the forecasts are scored by :func:`forecaster.evaluate.score`
like every other model. River is a benchmark dependency, never imported by the library.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from forecaster.core import F64Array
from forecaster.evaluate import Scores, score

# SNARIMAX's SGD step is picked on the warm-up from this grid (River's default, 0.01,
# diverges on raw sensor values; standardised inputs tame most of it, not all).
SGD_GRID = (0.0003, 0.001, 0.003, 0.01, 0.03)
SNARIMAX_ORDER = {"p": 6, "d": 1, "q": 2}
HOLT = {"alpha": 0.3, "beta": 0.05}


def snarimax(lr: float) -> Any:
    """River SNARIMAX(p=6, d=1, q=2) on standardised lags, SGD with step ``lr``."""
    from river import linear_model, optim, preprocessing, time_series

    reg = preprocessing.StandardScaler() | linear_model.LinearRegression(
        optimizer=optim.SGD(lr), intercept_lr=lr
    )
    return time_series.SNARIMAX(**SNARIMAX_ORDER, regressor=reg)


def holt_winters() -> Any:
    """River HoltWinters(alpha=0.3, beta=0.05), no season."""
    from river import time_series

    return time_series.HoltWinters(**HOLT)  # type: ignore[no-untyped-call]


def river_forecasts(model: Any, values: F64Array, horizon: int) -> F64Array | None:
    """Forecasts ``(n, K)``: row t is issued after learning ``values[t]``.

    Until the model can forecast (HoltWinters needs two values) the row repeats the last
    value. ``None`` when the model diverges (a forecast that is not finite).
    """
    n = values.size
    out = np.empty((n, horizon))
    for t in range(n):
        model.learn_one(float(values[t]))
        try:
            fc = model.forecast(horizon)
        except (ValueError, IndexError, ZeroDivisionError):  # not enough values yet
            fc = [float(values[t])] * horizon
        try:
            row = np.asarray(fc, dtype=np.float64)
        except (TypeError, OverflowError):
            return None
        if not np.isfinite(row).all():
            return None
        out[t] = row
    return out


def errors_of(values: F64Array, yhat: F64Array) -> F64Array:
    """``errors[t, j] = values[t] - yhat[t - j - 1, j]`` (NaN where not issued)."""
    n, k = yhat.shape
    err = np.full((n, k), np.nan)
    for j in range(k):
        err[j + 1 :, j] = values[j + 1 :] - yhat[: n - j - 1, j]
    return err


def scores_of(values: F64Array, yhat: F64Array, start: int) -> Scores:
    """Scores of one series' forecasts under this project's protocol, from event ``start`` on."""
    err = errors_of(values, yhat)
    ids = ["s"] * values.size
    return score(ids, values, err, np.zeros(err.shape, dtype=bool), start)


def tuned_snarimax(
    values: F64Array, horizon: int, warm: int
) -> tuple[float | None, F64Array | None]:
    """SNARIMAX with the SGD step of :data:`SGD_GRID` that scores best on the warm-up.

    A step whose forecasts diverge on the warm-up is skipped. Returns the step and the
    forecasts of the whole stream (``None, None`` when every step diverged, or when the
    chosen one diverges later: SGD is not stable for every step on every stream).
    """
    best, best_lr = math.inf, None
    for lr in SGD_GRID:
        yhat = river_forecasts(snarimax(lr), values[:warm], horizon)
        if yhat is None:
            continue
        mae = float(np.mean(scores_of(values[:warm], yhat, 0).mae))
        if mae < best:
            best, best_lr = mae, lr
    if best_lr is None:
        return None, None
    return best_lr, river_forecasts(snarimax(best_lr), values, horizon)


PEERS: dict[str, Callable[[F64Array, int, int], tuple[Any, F64Array | None]]] = {
    "river snarimax": tuned_snarimax,
    "river holtwinters": lambda v, k, _w: (HOLT, river_forecasts(holt_winters(), v, k)),
}
