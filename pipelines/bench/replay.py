"""``forecaster bench replay``: replay throughput and scores beside River, one file and the panel.

Side by side in one run, on the same file and horizon, each timed from reading the CSV
to the last forecast: ``forecaster replay``'s loop (the shipped config, and the same with
retraining off: the per-event path alone), and River's ``evaluate.iter_evaluate`` with
SNARIMAX and HoltWinters. Every model's forecasts are scored under this project's
protocol (issued after learning ``y[t]``, scored against ``y[t + h]``, after a 10%
warm-up); River's own per-step MAE is shown too, and it is shifted by one step: River
issues its forecast before learning ``y[t]`` and scores it against ``y[t + 1..t + h]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from forecaster import ForecasterConfig
from forecaster.core import F64Array
from forecaster.core.params import I64Array
from forecaster.evaluate import score
from pipelines.engine.recorded import Columns
from pipelines.files.read import numbers, read_frame
from pipelines.files.source import parse_file
from pipelines.replay.run import run_loop
from pipelines.replay.scoring import prior_index

WARMUP = 0.1
SNARIMAX = "River SNARIMAX(p=6, d=1, q=2), SGD 0.001"


def errors_of(
    value: F64Array, yhat: F64Array, lower: F64Array, upper: F64Array, prev: I64Array
) -> tuple[F64Array, np.ndarray]:
    """``value - forecast`` of the forecasts issued 1..K events earlier, and coverage.

    Per event and step: the error, and whether the value fell inside that forecast's
    interval (NaN / False where there was no forecast). River's forecasts are scored
    this way; this project's models report their own errors as they learn.
    """
    valid = prev >= 0
    src = np.where(valid, prev, 0)
    steps = np.arange(yhat.shape[1])[None, :]
    y = value[:, None]
    err = np.where(valid, y - yhat[src, steps], np.nan)
    hit = valid & (lower[src, steps] <= y) & (y <= upper[src, steps])
    return err, hit


def ours_mae(values: F64Array, yhat: F64Array, warmup: float = WARMUP) -> F64Array:
    """Per-step MAE of a single series' forecasts ``yhat[t]`` (issued after ``y[t]``)."""
    n, k = yhat.shape
    prev, _ = prior_index(["s"] * n, k)
    nan = np.full_like(yhat, np.nan)
    err, hit = errors_of(values, yhat, nan, nan, prev)
    start = int(np.floor(warmup * n))
    err[:start] = np.nan
    return score(["s"] * n, values, err, hit, start).mae


def time_replay(
    path: Path, cfg: ForecasterConfig, rows: int | None, cols: Columns | None = None
) -> dict[str, Any]:
    """Parse the file and replay it through the run loop; seconds and per-step MAE."""
    start = time.perf_counter()
    parsed = parse_file(path, cols)
    if rows is not None:
        b = parsed.batch.window(0, min(rows, len(parsed.batch)))
        parsed = replace(parsed, batch=replace(b, end=b.end), rows=len(b))
    parse_s = time.perf_counter() - start
    with threadpool_limits(1):
        run = run_loop([parsed], cfg)
    seconds = parse_s + run.seconds
    fc = run.forecasts
    return {"events": parsed.rows, "seconds": seconds, "parse_seconds": parse_s,
            "events_per_second": parsed.rows / seconds,
            "mae": ours_mae(fc.value, fc.yhat).tolist(),
            "retrains": len(run.history.retrain_log)}  # fmt: skip


def time_river(
    path: Path, model: Any, horizon: int, rows: int | None, column: str = "value"
) -> dict[str, Any]:
    """River's ``evaluate.iter_evaluate`` over the file's values, timed from reading it."""
    from river import evaluate, metrics

    start = time.perf_counter()
    df = read_frame(path, rows)
    values = numbers(df, column, path)
    dataset: list[tuple[dict[Hashable, Any], Any]] = [({}, float(v)) for v in values]
    preds = []
    metric = None
    mae = metrics.MAE()  # type: ignore[no-untyped-call]
    for _, _, y_pred, step_metric in evaluate.iter_evaluate(dataset, model, mae, horizon):
        preds.append(y_pred)
        metric = step_metric
    seconds = time.perf_counter() - start
    n = values.size
    # The forecast of iteration i (i = horizon..n-horizon-1) is issued after learning
    # y[i-1]: in this project's terms it belongs to event i - 1.
    yhat = np.full((n, horizon), np.nan)
    yhat[horizon - 1 : horizon - 1 + len(preds)] = np.array(preds, dtype=np.float64)
    assert metric is not None
    own = [float(m.get()) for m in metric.metrics]
    return {"events": n, "seconds": seconds, "events_per_second": n / seconds,
            "mae": ours_mae(values, yhat).tolist(), "river_mae": own}  # fmt: skip


def river_snarimax() -> Any:
    """SNARIMAX(p=6, d=1, q=2) on raw lags, SGD 0.001 (River's default step diverges here)."""
    from river import linear_model, optim, time_series

    sgd = linear_model.LinearRegression(optimizer=optim.SGD(0.001), intercept_lr=0.001)
    return time_series.SNARIMAX(p=6, d=1, q=2, regressor=sgd)


def run(path: Path, cfg: ForecasterConfig, rows: int | None = None) -> dict[str, Any]:
    """Every contender on ``path`` (the first ``rows`` rows if given), side by side."""
    from river import time_series

    k = cfg.horizon
    no_retrain = replace(cfg, retrain_every=0, first_retrain=0, retrain_interval=0.0)
    # River's default SGD step diverges on these values (errors of 1e11); 0.001 is stable.
    snarimax = river_snarimax()
    holt = time_series.HoltWinters(alpha=0.3, beta=0.05)  # type: ignore[no-untyped-call]
    contenders: dict[str, Any] = {
        "replay (shipped config)": lambda: time_replay(path, cfg, rows),
        "replay, retraining off": lambda: time_replay(path, no_retrain, rows),
        SNARIMAX: lambda: time_river(path, snarimax, k, rows),
        "River HoltWinters(alpha=0.3, beta=0.05)": lambda: time_river(path, holt, k, rows),
    }
    results = {name: fn() for name, fn in contenders.items()}
    base = results[SNARIMAX]["events_per_second"]
    rows_out = []
    for name, r in results.items():
        rows_out.append({
            "name": name, "events": r["events"], "seconds": r["seconds"],
            "events_per_second": r["events_per_second"],
            "vs_snarimax": r["events_per_second"] / base,
            "mae_1": r["mae"][0], f"mae_{k}": r["mae"][-1],
            "river_mae_1": r.get("river_mae", [None])[0],
            f"river_mae_{k}": r.get("river_mae", [None])[-1],
        })  # fmt: skip
    return {"file": str(path), "horizon": k, "warmup": WARMUP, "rows": rows_out,
            "goal": "replay (shipped config) at least 1.0x River SNARIMAX's events/s "
                    "(stretch 3x), and at least 5x with retraining off",
            "ratio": rows_out[0]["vs_snarimax"],
            "ratio_no_retrain": rows_out[1]["vs_snarimax"],
            "budget": budget(results["replay (shipped config)"],
                             results["replay, retraining off"], base, 1.0)}  # fmt: skip


def run_panel(cfg: ForecasterConfig, streams: Sequence[str], root: Path,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Each panel stream replayed (shipped config) and through River SNARIMAX, side by side.

    Throughput of each, parsing included, and over the whole panel: all its events over
    the sum of each contender's seconds.
    """
    rows = []
    for stream in streams:
        if progress is not None:
            progress(stream)
        path = root / stream
        ett = stream.startswith("ETDataset/")
        cols = Columns(time="date", value="OT") if ett else Columns(time="timestamp", value="value")
        assert cols.value is not None
        ours = time_replay(path, cfg, None, cols)
        river = time_river(path, river_snarimax(), cfg.horizon, None, cols.value)
        rows.append({"stream": Path(stream).stem, "events": ours["events"],
                     "seconds": ours["seconds"], "river_seconds": river["seconds"],
                     "events_per_second": ours["events_per_second"],
                     "river_events_per_second": river["events_per_second"],
                     "ratio": ours["events_per_second"] / river["events_per_second"],
                     "retrains": ours["retrains"]})  # fmt: skip
    events = sum(r["events"] for r in rows)
    ours_s, river_s = sum(r["seconds"] for r in rows), sum(r["river_seconds"] for r in rows)
    return {"rows": rows, "events": events, "events_per_second": events / ours_s,
            "river_events_per_second": events / river_s, "ratio": river_s / ours_s,
            "streams_at_or_above_1x": sum(r["ratio"] >= 1.0 for r in rows)}  # fmt: skip


def budget(shipped: dict[str, Any], no_retrain: dict[str, Any], base_rate: float,
           goal: float) -> dict[str, float]:  # fmt: skip
    """Seconds the goal allows for the whole file beside what one retrain costs.

    A retrain's cost is the difference between the runs with and without retraining,
    shared over the retrains the shipped run made.
    """
    allowed = shipped["events"] / (goal * base_rate)
    retrains = max(1, int(shipped["retrains"]))
    per_retrain = max(0.0, shipped["seconds"] - no_retrain["seconds"]) / retrains
    return {"goal_allows_seconds": allowed, "retrains": float(retrains),
            "seconds_per_retrain": per_retrain,
            "one_retrain_over_allowed": per_retrain / allowed}  # fmt: skip
