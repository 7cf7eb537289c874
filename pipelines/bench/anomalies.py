"""``forecaster bench anomalies``: the model's flags against NAB's labelled anomaly windows.

Every NAB recording of the development panel (:data:`pipelines.bench.datasets.PANEL`)
is learned, alone, by a model with the shipped ``config/sensors.toml`` (its anomaly
settings as shipped, the same for every stream), and its flags are scored against the
stream's windows in ``NAB/labels/combined_windows.json`` (MIT):

- **caught**: the share of windows in which at least one flag fires;
- **delay**: the first flag's time after its window's start (hours; caught windows);
- **false flags per day**: flags outside every window, per day of the stream outside
  the windows.

Beside it, a rolling z-score detector fed the same events: a value more than 3 standard
deviations from the mean of the values of the day before it (the preceding 24 hours of
event time, once the stream has a day of history). Goal (issue 18): at least as many
windows caught as the z-score detector with at most half its false flags per day.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecaster import ForecasterConfig, OnlineForecaster
from forecaster.core import F64Array
from pipelines.bench.datasets import PANEL, Recording, data_root, panel_recording
from pipelines.configs import ConfigFile, load_model_config

WINDOWS = "NAB/labels/combined_windows.json"
DAY = 86400.0
Z_SIGMAS = 3.0
CHUNK = 1000  # events per learn() call: results do not depend on it


def nab_streams() -> tuple[str, ...]:
    """The panel's NAB recordings (paths under the data folder)."""
    return tuple(p for p in PANEL if p.startswith("NAB/"))


def windows(path: str, root: Path | None = None) -> list[tuple[float, float]]:
    """The labelled anomaly windows of a panel stream, as (start, end) epoch seconds."""
    with ((root or data_root()) / WINDOWS).open() as fh:
        labels = json.load(fh)
    key = path.removeprefix("NAB/")
    if key not in labels:
        msg = f"{WINDOWS} has no windows for {key!r}"
        raise ValueError(msg)

    def epoch(text: str) -> float:
        return datetime.fromisoformat(text + "+00:00").timestamp()

    return [(epoch(a), epoch(b)) for a, b in labels[key]]


def model_flags(rec: Recording, cfg: ForecasterConfig) -> tuple[np.ndarray, np.ndarray]:
    """Which events of ``rec`` the model accepted (not late), and its flag for each of those."""
    model = OnlineForecaster(replace(cfg, covariates=()))
    accepted, flags = [], []
    for lo in range(0, rec.values.size, CHUNK):
        hi = min(lo + CHUNK, rec.values.size)
        upd = model.learn(["s"] * (hi - lo), rec.ts[lo:hi], rec.values[lo:hi])
        assert upd.anomaly is not None
        accepted.append(upd.accepted)
        flags.append(upd.anomaly.flag)
    return np.concatenate(accepted), np.concatenate(flags)


def zscore_flags(ts: F64Array, values: F64Array) -> np.ndarray:
    """Flags of the rolling z-score: over 3 sd from the mean of the preceding day.

    ``ts`` must not decrease (equal times are one instant: neither is before the other).
    """
    when = pd.to_datetime(np.rint(ts * 1000).astype(np.int64), unit="ms")
    s = pd.Series(values, index=when)
    past = s.rolling("1D", closed="left")
    mean, sd = past.mean().to_numpy(), past.std(ddof=0).to_numpy()
    ready = ts - ts[0] >= DAY  # a day of history behind it
    with np.errstate(invalid="ignore"):
        return np.asarray(ready & (np.abs(values - mean) > Z_SIGMAS * sd))


def score(ts: F64Array, flags: np.ndarray, wins: list[tuple[float, float]]) -> dict[str, Any]:
    """Windows caught, first-flag delays (hours) and false flags of one stream."""
    inside = np.zeros(ts.size, bool)
    delays: list[float | None] = []
    for start, end in wins:
        w = (ts >= start) & (ts <= end)
        inside |= w
        hit = np.flatnonzero(w & flags)
        delays.append((float(ts[hit[0]]) - start) / 3600.0 if hit.size else None)
    span = float(ts[-1] - ts[0])
    in_windows = sum(min(end, ts[-1]) - max(start, ts[0]) for start, end in wins)
    days_out = max(span - in_windows, 0.0) / DAY
    return {"windows": len(wins), "caught": sum(d is not None for d in delays),
            "delays_h": delays, "false": int((flags & ~inside).sum()),
            "days_outside": days_out}  # fmt: skip


def _summary(rows: list[dict[str, Any]], who: str) -> dict[str, Any]:
    """Totals over streams: windows caught, median delay, false flags per day."""
    parts = [r[who] for r in rows]
    delays = [d for p in parts for d in p["delays_h"] if d is not None]
    days = sum(p["days_outside"] for p in parts)
    return {"windows": sum(p["windows"] for p in parts),
            "caught": sum(p["caught"] for p in parts),
            "median_delay_h": float(np.median(delays)) if delays else None,
            "false": sum(p["false"] for p in parts), "days_outside": days,
            "false_per_day": sum(p["false"] for p in parts) / days}  # fmt: skip


def run(
    config: ConfigFile, level: float | None = None, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Score the model's flags and the z-score's on every NAB stream of the panel.

    ``level``: the ``anomaly_level`` of every stream (None: the config's).
    """
    cfg = load_model_config(config, **({} if level is None else {"anomaly_level": level}))
    rows = []
    for path in nab_streams():
        rec = panel_recording(path)
        wins = windows(path)
        if progress is not None:
            progress(f"{rec.name}: {rec.values.size:,} events, {len(wins)} windows")
        # Both detectors see the events the model accepts: a few recordings have times
        # that go back, which the model drops as late.
        keep, flags = model_flags(rec, cfg)
        ts, values = rec.ts[keep], rec.values[keep]
        row: dict[str, Any] = {"stream": rec.name, "events": int(ts.size)}
        for who, got in (("model", flags), ("zscore", zscore_flags(ts, values))):
            row[who] = score(ts, got, wins)
            row[who]["false_per_day"] = row[who]["false"] / max(row[who]["days_outside"], 1e-9)
        rows.append(row)
    total = {who: _summary(rows, who) for who in ("model", "zscore")}
    m, z = total["model"], total["zscore"]
    goal = m["caught"] >= z["caught"] and m["false_per_day"] <= 0.5 * z["false_per_day"]
    return {
        "rows": rows,
        "total": total,
        "goal_met": bool(goal),
        "settings": {k: v for k, v in cfg.to_dict().items() if k.startswith("anomaly_")},
    }
