"""``forecaster bench scale``: per-event cost and memory as the number of series grows.

Events go to series drawn uniformly at random, in batches (as a Kafka poll would hand
them over). Each size first sees every series once, then is timed over the same number
of events. Retraining is off: this measures the per-event path. Each size is measured
without and with expert aggregation (``aggregation = "mlpoly"``) side by side: the two
models take the same batches in turn, each timed only while it learns, in elapsed time
and in the process's CPU time. The maximum RSS is the process's, with both models alive.
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


def measure(
    n_series: int, events: int, batch: int, cfgs: tuple[ForecasterConfig, ...]
) -> list[dict[str, Any]]:
    """Time ``events`` events over ``n_series`` series for each config, batch by batch in turn.

    Every model sees the same events; after a warm-up pass (every series once), each batch
    goes to every model in turn (the order rotating by batch), and each model's clock runs
    only while it learns. So all models share the machine's moments: on a shared machine
    one model's whole run measured after another's moved the ratio by up to 1.5x.
    """
    rng = np.random.default_rng(n_series)
    models = [OnlineForecaster(cfg) for cfg in cfgs]
    names = np.array([f"sensor-{i:06d}" for i in range(n_series)])
    t0 = 1.7e9
    for lo in range(0, n_series, batch):  # warm-up: every series once
        ids = names[lo : lo + batch]
        first = np.asarray(rng.normal(size=ids.size), np.float64)
        for model in models:
            model.learn(ids, np.full(ids.size, t0), first)
    picks = rng.integers(0, n_series, size=events)
    ts = np.asarray(t0 + 60.0 + np.arange(events) * (60.0 / events), dtype=np.float64)
    values: np.ndarray = rng.normal(size=events)
    seconds, cpu = [0.0] * len(models), [0.0] * len(models)
    for b, lo in enumerate(range(0, events, batch)):
        sel = slice(lo, lo + batch)
        ids = names[picks[sel]]
        for k in range(len(models)):
            m = (b + k) % len(models)
            start, used = time.perf_counter(), time.process_time()
            models[m].learn(ids, ts[sel], values[sel])
            seconds[m] += time.perf_counter() - start
            cpu[m] += time.process_time() - used
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    return [
        {
            "series": n_series,
            "events": events,
            "us_per_event": seconds[m] / events * 1e6,
            "cpu_us_per_event": cpu[m] / events * 1e6,
            "bytes_per_series": model.bytes_per_series(),
            "state_mb": model.state_bytes / 1e6,
            "max_rss_mb": rss,
        }
        for m, model in enumerate(models)
    ]


def run(
    events: int = 200_000, batch: int = 5_000, quick: bool = False, repeat: int = 3
) -> dict[str, Any]:
    """Every size without and with aggregation; cost ratios across sizes and between the two.

    Each size is measured ``repeat`` times (each time side by side); a row holds the
    medians, and the ratio to no aggregation is the median of the runs' ratios (their
    range beside it): one run's ratio moves by about 0.05x on a shared machine.
    """
    if repeat < 1:
        msg = f"repeat must be at least 1, got {repeat}"
        raise ValueError(msg)
    cfg = scale_config()
    sizes = SIZES[:2] if quick else SIZES
    if quick:
        events, cfg = 20_000, replace(cfg, history=16, window=12, rebuild_steps=8)
    agg = replace(cfg, aggregation="mlpoly")
    rows, agg_rows = [], []
    for n in sizes:  # both models batch by batch in turn: they share the machine's load
        runs = [measure(n, events, batch, (cfg, agg)) for _ in range(repeat)]
        plain, mixed = (_median_row([r[m] for r in runs]) for m in (0, 1))
        for key, name in (("us_per_event", "cost_vs_no_aggregation"),
                          ("cpu_us_per_event", "cpu_cost_vs_no_aggregation")):  # fmt: skip
            ratios = [r[1][key] / r[0][key] for r in runs]
            mixed[name] = float(np.median(ratios))
            mixed[name + "_runs"] = ratios
            mixed[name + "_range"] = [min(ratios), max(ratios)]
        rows.append(plain)
        agg_rows.append(mixed)
    return {
        "config": cfg.to_dict(),
        "batch": batch,
        "repeat": repeat,
        "rows": rows,
        "aggregation_rows": agg_rows,
        "cost_ratio_largest_to_smallest": rows[-1]["us_per_event"] / rows[0]["us_per_event"],
        "aggregation_cost_ratio_max": max(r["cost_vs_no_aggregation"] for r in agg_rows),
        "aggregation_cpu_cost_ratio_max": max(r["cpu_cost_vs_no_aggregation"] for r in agg_rows),
    }


def _median_row(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The last run's row with the median of every run's timings."""
    out = dict(runs[-1])
    for key in ("us_per_event", "cpu_us_per_event"):
        out[key] = float(np.median([r[key] for r in runs]))
    out["max_rss_mb"] = max(r["max_rss_mb"] for r in runs)
    return out
