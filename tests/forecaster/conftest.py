from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from forecaster import EWMA, ForecasterConfig, LastValue, OnlineForecaster, SeasonalNaive
from forecaster.stream import StreamModel

SMALL = {
    "horizon": 3, "hidden_size": 6, "history": 48, "window": 24, "burn_in": 4,
    "batch_windows": 6, "train_steps": 8, "retrain_every": 120, "swap_delay": 30,
    "rebuild_steps": 12, "interval_block": 16,
}  # fmt: skip


def gru(**over: object) -> Callable[[], StreamModel]:
    return lambda: OnlineForecaster(ForecasterConfig(**{**SMALL, **over}))  # type: ignore[arg-type]


MODELS: dict[str, Callable[[], StreamModel]] = {
    "gru-default": gru(),
    "gru-sync": gru(background=False),
    "gru-reset-before-2-layers-season": gru(
        reset_after=False, num_layers=2, seasons=(600.0, 180.0), calendar=("hour", "weekday")
    ),
    "gru-covariates-time-retrain": gru(
        covariates=("load", "temp"),
        retrain_every=0,
        retrain_interval=3000.0,
        use_dt=False,
        first_retrain=50,
    ),
    "gru-levels-reversal-tolerance": gru(
        levels=(4.0, 32.0), reversal=True, blend_tolerance=0.01, first_retrain=40
    ),
    "gru-aggregation": gru(aggregation="mlpoly", seasons=(600.0,), expert_seasons=(1800.0,)),
    "gru-aggregation-sync-levels": gru(
        aggregation="mlpoly",
        background=False,
        levels=(4.0,),
        expert_rates=(0.1, 0.5),
        expert_medians=(0.2,),
        aggregation_memory=50.0,
    ),
    # Drift-triggered retrains (several fire in the 400-600 events of ``stream``), with
    # the schedule as the longest wait (in events, stretching, and in event time),
    # training that stops early, and the mix's record of the model lightened by each
    # accepted drift retrain; or drift alone.
    "gru-drift-schedule-early-stop": gru(
        retrain_on=("schedule", "drift"),
        aggregation="mlpoly",
        retrain_every=100,
        retrain_every_max=250,
        early_stop_every=2,
        early_stop_patience=1,
        learning_rate=0.03,  # noisy enough that training stops early (after 6 and 2 steps)
        retrain_interval=9000.0,
        drift_threshold=8.0,
        drift_delta=0.05,
        drift_warmup=16,
        drift_check=8,
        drift_min_spacing=40,
    ),
    "gru-drift-only-sync": gru(
        retrain_on=("drift",),
        background=False,
        drift_threshold=1.0,
        drift_delta=0.0,
        drift_warmup=10,
        drift_check=5,
        drift_min_spacing=35,
    ),
    # Anomalies judged at two steps, warm after 5 forecasts, at a level the 400 events
    # reach (flags fire), with counts that forget within the stream.
    "gru-anomalies-two-steps": gru(
        anomaly_steps=(1, 3), anomaly_level=0.9, anomaly_min_scored=5, anomaly_memory=40.0
    ),
    "last-value": lambda: LastValue(horizon=3),
    "seasonal-naive": lambda: SeasonalNaive(4, horizon=3),
    "ewma": lambda: EWMA(0.3, horizon=3),
}


def stream(
    n: int = 400, n_series: int = 5, seed: int = 0, covariates: int = 0
) -> dict[str, object]:
    """Irregular multi-series events with gaps, duplicate times and a late event."""
    rng = np.random.default_rng(seed)
    ids = [f"sensor-{i}" for i in rng.integers(0, n_series, size=n)]
    ts = np.cumsum(rng.exponential(60.0, size=n)) + 1.6e9
    ts[n // 3] = ts[n // 3 - 1]  # a duplicate timestamp
    ts[n // 2] += 5000.0  # a gap, which also makes later events of other series...
    values = np.sin(ts / 900.0) + 0.1 * rng.normal(size=n) + np.arange(n) * 0.01
    cov = rng.normal(size=(n, covariates)) if covariates else None
    return {"series": ids, "ts": ts, "values": values, "covariates": cov}


@pytest.fixture(params=sorted(MODELS))
def make_model(request: pytest.FixtureRequest) -> Callable[[], StreamModel]:
    return MODELS[request.param]


def events_for(model: StreamModel, n: int = 400, seed: int = 0) -> dict[str, object]:
    return stream(n=n, seed=seed, covariates=len(model.cfg.covariates))
