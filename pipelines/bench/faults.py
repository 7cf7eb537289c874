"""A sensor gone wild for a while, then normal again: how fast the forecasts recover.

One series of a 144-event cycle with noise, 3,000 normal events, 300 of a fault, then
normal again; +1 MAE per block of 100 events, before and after the fault.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from forecaster import ForecasterConfig, OnlineForecaster
from pipelines.configs import ConfigFile, read_toml, shipped

SHIPPED = shipped("sensors.toml")
BEFORE, FAULT, AFTER = 3000, 300, 3000
KINDS = ("alternating", "ramp", "spike")
BLOCKS = (0, 100, 200, 500, 1000, 2900)  # events after the fault where a block starts


def fault_stream(kind: str, after: int = AFTER, seed: int = 1) -> np.ndarray:
    """Values: normal, then ``kind`` for FAULT events (+-1e90, a ramp to 1e6, 1e12)."""
    if kind not in KINDS:
        msg = f"fault kind must be one of {KINDS}, got {kind!r}"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    t = np.arange(BEFORE + FAULT + after, dtype=float)
    y = 20 + 2 * np.sin(2 * np.pi * t / 144) + rng.normal(0, 0.3, t.size)
    fault = slice(BEFORE, BEFORE + FAULT)
    if kind == "alternating":  # the decoder admits values up to 1e100
        y[fault] = np.where(np.arange(FAULT) % 2 == 0, 1e90, -1e90)
    elif kind == "ramp":
        y[fault] = np.linspace(20, 1e6, FAULT)
    else:  # stuck at a spike
        y[fault] = 1e12
    return y


def run(config: ConfigFile = SHIPPED) -> list[dict[str, Any]]:
    """One row per fault kind: +1 MAE before, and per block after, and retrain counts."""
    raw = read_toml(config)["model"]
    rows = []
    for kind in KINDS:
        y = fault_stream(kind)
        model = OnlineForecaster(ForecasterConfig(**{**raw, "background": False}))
        ts = 1.7e9 + 600.0 * np.arange(y.size, dtype=np.float64)
        upd = model.learn(["s"] * y.size, ts, y)
        err = np.abs(upd.errors[:, 0])
        end = BEFORE + FAULT
        rows.append({
            "fault": kind, "before": float(np.mean(err[BEFORE - 500 : BEFORE])),
            "after": {b: float(np.mean(err[end + b : end + b + 100])) for b in BLOCKS},
            "retrains": model.retrains_started, "rejected": model.retrains_rejected,
        })  # fmt: skip
    return rows
