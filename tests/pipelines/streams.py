"""Shared test material for the service: event streams, a small model, settings files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson

# Small enough to retrain in well under a second, big enough to retrain several times.
MODEL: dict[str, Any] = {
    "horizon": 3, "hidden_size": 6, "history": 64, "window": 24, "burn_in": 4,
    "batch_windows": 6, "train_steps": 8, "retrain_every": 150, "first_retrain": 60,
    "swap_delay": 20, "rebuild_steps": 12, "interval_block": 16, "seed": 3,
}  # fmt: skip

T0_MS = 1_700_000_000_000


def sensor_events(n_series: int, per_series: int, seed: int) -> list[tuple[bytes, bytes]]:
    """(key, value) messages of noisy daily cycles, interleaved in time order."""
    rng = np.random.default_rng(seed)
    out = []
    phase = rng.uniform(0, 2 * np.pi, n_series)
    for t in range(per_series):
        for s in range(n_series):
            value = 10 + s + np.sin(2 * np.pi * t / 24 + phase[s]) + 0.1 * rng.standard_normal()
            sid = f"sensor-{s:03d}"
            doc = {"series": sid, "ts": T0_MS + t * 3_600_000 + s * 1000, "value": float(value)}
            out.append((sid.encode(), orjson.dumps(doc)))
    return out


def write_settings(path: Path, tables: dict[str, dict[str, Any]]) -> Path:
    """A TOML settings file of ``tables`` (strings, numbers, booleans, lists)."""

    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str | Path):
            return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list | tuple):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + " }"
        return repr(v)

    lines = []
    for name, table in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {val(v)}" for k, v in table.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path
