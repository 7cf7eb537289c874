"""``forecaster bench scale``: per-event cost and memory as the number of series grows.

Events go to series drawn uniformly at random, in batches (as a Kafka poll would hand
them over). Each size first sees every series once, then is timed over the same number
of events. Retraining is off: this measures the per-event path. Each size is measured
without and with expert aggregation (``aggregation = "mlpoly"``), side by side, in
elapsed time and in the process's CPU time (which other processes on a shared machine
move far less).
"""

from __future__ import annotations

import resource
import time
from dataclasses import replace
from typing import Any

import numpy as np

from forecaster import ForecasterConfig, OnlineForecaster

SIZES = (1_000, 10_000, 100_000)


def scale_config() -> ForecasterConfig:
    """A many-series configuration: a short history keeps memory per series small."""
    return ForecasterConfig(
        horizon=12, hidden_size=32, history=64, window=48, burn_in=8, rebuild_steps=32,
        retrain_every=0, swap_delay=0, calendar=("hour",),
    )  # fmt: skip


def measure(n_series: int, events: int, batch: int, cfg: ForecasterConfig) -> dict[str, Any]:
    """Time ``events`` events over ``n_series`` series after a warm-up pass."""
    rng = np.random.default_rng(n_series)
    model = OnlineForecaster(cfg)
    names = np.array([f"sensor-{i:06d}" for i in range(n_series)])
    t0 = 1.7e9
    for lo in range(0, n_series, batch):  # warm-up: every series once
        ids = names[lo : lo + batch]
        model.learn(ids, np.full(ids.size, t0), np.asarray(rng.normal(size=ids.size), np.float64))
    picks = rng.integers(0, n_series, size=events)
    ts = np.asarray(t0 + 60.0 + np.arange(events) * (60.0 / events), dtype=np.float64)
    values: np.ndarray = rng.normal(size=events)
    start, cpu = time.perf_counter(), time.process_time()
    for lo in range(0, events, batch):
        sel = slice(lo, lo + batch)
        model.learn(names[picks[sel]], ts[sel], values[sel])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "series": n_series,
        "events": events,
        "us_per_event": seconds / events * 1e6,
        "cpu_us_per_event": cpu / events * 1e6,
        "bytes_per_series": model.bytes_per_series(),
        "state_mb": model.state_bytes / 1e6,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
    }


def run(events: int = 200_000, batch: int = 5_000, quick: bool = False) -> dict[str, Any]:
    """Every size without and with aggregation; cost ratios across sizes and between the two."""
    cfg = scale_config()
    sizes = SIZES[:2] if quick else SIZES
    if quick:
        events, cfg = 20_000, replace(cfg, history=16, window=12, rebuild_steps=8)
    agg = replace(cfg, aggregation="mlpoly")
    rows, agg_rows = [], []
    for n in sizes:  # alternating, so both see the same machine load
        rows.append(measure(n, events, batch, cfg))
        agg_rows.append(measure(n, events, batch, agg))
    for plain, mixed in zip(rows, agg_rows, strict=True):
        mixed["cost_vs_no_aggregation"] = mixed["us_per_event"] / plain["us_per_event"]
        mixed["cpu_cost_vs_no_aggregation"] = mixed["cpu_us_per_event"] / plain["cpu_us_per_event"]
    return {
        "config": cfg.to_dict(),
        "batch": batch,
        "rows": rows,
        "aggregation_rows": agg_rows,
        "cost_ratio_largest_to_smallest": rows[-1]["us_per_event"] / rows[0]["us_per_event"],
        "aggregation_cost_ratio_max": max(r["cost_vs_no_aggregation"] for r in agg_rows),
        "aggregation_cpu_cost_ratio_max": max(r["cpu_cost_vs_no_aggregation"] for r in agg_rows),
    }
