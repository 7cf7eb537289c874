"""Streaming time-series forecasting with a GRU whose state is carried per series."""

from __future__ import annotations

__version__ = "0.1.0"
