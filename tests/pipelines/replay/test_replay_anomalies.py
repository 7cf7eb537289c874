"""forecaster replay carries the anomaly judgement: columns of the forecasts table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from pipelines.cli import main
from tests.pipelines.replay.test_replay import config, csv_file, hourly
from tests.pipelines.streams import MODEL


def test_a_spike_is_flagged_in_the_forecasts_table(tmp_path: Path) -> None:
    ts, values = hourly(400)
    values[300] = f"{float(values[300]) + 20.0:.6f}"  # a spike, a hundred noise sd high
    data = csv_file(tmp_path / "pump.csv", ts, values)
    # A level 400 events can reach (1 / (1 - 0.99) = 100 counted errors).
    model = {**MODEL, "anomaly_level": 0.99, "anomaly_min_scored": 30,
             "anomaly_memory": 400.0, "anomaly_steps": [1, 2]}  # fmt: skip
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["replay", str(data), "--config",
                                       str(config(tmp_path, model)), "--out", str(out),
                                       "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    fc = pd.read_parquet(out / "forecasts.parquet")
    assert {"anomaly", "anomaly_score", "anomaly_step"} <= set(fc.columns)
    assert 300 in np.flatnonzero(fc["anomaly"]).tolist()
    assert fc["anomaly"].sum() <= 6  # the spike, and at 99% the odd normal event
    assert fc["anomaly_score"][300] >= 0.99 and fc["anomaly_step"][300] in (1, 2)
    assert np.isnan(fc["anomaly_score"][0]) and fc["anomaly_step"][0] == 0  # nothing to judge
