"""``forecaster bench etth1``: ETTh1 on the published long-horizon protocol.

Target ``OT`` alone; train rows 0-8639, validation 8640-11519, test 11520-14399;
values z-scored with the training mean and standard deviation; MSE and MAE averaged
over steps 1..H and over every forecast origin whose H targets lie in the test rows
(the Informer/DLinear data loaders' convention). The model streams through every row;
"frozen" stops retraining at the end of the validation rows, "online" keeps retraining
through the test rows. Last value is computed by the same code, as a check of the
protocol against its published 0.034/0.139 (H=24) and 0.069/0.203 (H=96).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from forecaster import ForecasterConfig, OnlineForecaster
from forecaster.core import F64Array
from pipelines.bench.datasets import etth1

TRAIN_END, TEST_START, TEST_END = 8640, 11520, 14400
PUBLISHED = {24: {"last value": (0.034, 0.139)},
             96: {"last value": (0.069, 0.203), "NLinear": (0.053, 0.177)}}  # fmt: skip


def protocol_scores(yhat: F64Array, z: F64Array, horizon: int) -> tuple[float, float]:
    """MSE and MAE of forecasts ``yhat[p]`` (issued after row p) over the test origins."""
    origins = np.arange(TEST_START - 1, TEST_END - horizon)
    target = z[origins[:, None] + np.arange(1, horizon + 1)[None, :]]
    err = yhat[origins] - target
    return float(np.mean(err**2)), float(np.mean(np.abs(err)))


def run_model(cfg: ForecasterConfig, z: F64Array, ts: F64Array, frozen: bool) -> F64Array:
    """Stream every row; return the forecast issued after each ``(n, H)``."""
    model = OnlineForecaster(cfg)
    ids = ["OT"] * z.size
    out = np.empty((z.size, cfg.horizon))
    upd = model.learn(ids[:TEST_START], ts[:TEST_START], z[:TEST_START])
    out[:TEST_START] = upd.yhat
    model.retrain_enabled = not frozen
    upd = model.learn(ids[TEST_START:], ts[TEST_START:], z[TEST_START:])
    out[TEST_START:] = upd.yhat
    return out


def run(cfg: ForecasterConfig, horizons: tuple[int, ...] = (24, 96)) -> dict[str, Any]:
    """Scores per horizon: last value, and the GRU frozen and online."""
    rec = etth1()
    train = rec.values[:TRAIN_END]
    z = (rec.values - train.mean()) / train.std()
    rows = []
    for h in horizons:
        hcfg = replace(cfg, horizon=h, covariates=(), background=False)
        last = np.repeat(z[:, None], h, axis=1)
        row: dict[str, Any] = {"horizon": h, "last value": protocol_scores(last, z, h)}
        for mode in ("frozen", "online"):
            row[mode] = protocol_scores(run_model(hcfg, z, rec.ts, mode == "frozen"), z, h)
        row["published"] = PUBLISHED[h]
        rows.append(row)
    return {"config": cfg.to_dict(), "rows": rows}
