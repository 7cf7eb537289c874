"""Streaming time-series forecasting with a GRU whose state is carried per series.

The library: :class:`OnlineForecaster` (the model), :class:`ForecasterConfig` (its
settings), the baselines, and :func:`evaluate` (prequential scoring). No I/O here.
"""

from __future__ import annotations

from forecaster.baselines import EWMA, LastValue, SeasonalNaive
from forecaster.config import ForecasterConfig
from forecaster.model import OnlineForecaster
from forecaster.stream import StreamModel, Update

__version__ = "0.1.0"

__all__ = [
    "EWMA",
    "ForecasterConfig",
    "LastValue",
    "OnlineForecaster",
    "SeasonalNaive",
    "StreamModel",
    "Update",
]
