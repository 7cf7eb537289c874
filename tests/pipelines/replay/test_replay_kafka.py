"""Replay against the live service (acceptance 3 of issue 6): the same events through
``forecaster replay`` (a file) and through the service (topic in, topic out) give the same
forecasts, bit for bit, model versions included."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.engine.encode import iso_times
from pipelines.service.assemble import build_service
from pipelines.service.settings import load_settings
from tests.pipelines.broker import Broker
from tests.pipelines.streams import MODEL, sensor_events, write_settings

pytestmark = pytest.mark.kafka


def test_replay_of_a_file_equals_the_live_service_on_the_same_events(
    broker: Broker, workdir: Path
) -> None:
    topics = {"input": broker.new_topic("in"), "output": broker.new_topic("out"),
              "dead_letter": broker.new_topic("dlq")}  # fmt: skip
    msgs = sensor_events(n_series=3, per_series=120, seed=5)
    # One partition holds every series: one model, as the replay of one file has.
    broker.produce_to_partition(topics["input"], msgs, partition=0)
    config = write_settings(workdir / "service.toml", {
        "model": MODEL,
        "kafka": broker.kafka_settings(f"g-replay-{topics['input']}"),
        "topics": topics,
        "checkpoint": {"dir": str(workdir / "ckpt"), "every_events": 100,
                       "every_seconds": 3600.0},
        "metrics": {"port": 0},
    })  # fmt: skip
    service = build_service(load_settings(config))
    th = threading.Thread(target=service.run, daemon=True)
    th.start()
    out = broker.read_all(topics["output"], expect=len(msgs))
    service.stop.set()
    th.join(60)
    live = {}
    for r in out:
        d = orjson.loads(r.value)
        live[(d["series"], d["ts"])] = (d["yhat"], d["lower"], d["upper"], d["model_version"])
    assert len(live) == len(msgs)
    # The same events as a CSV file: series, ISO time (milliseconds), value.
    docs = [orjson.loads(v) for _, v in msgs]
    ts = iso_times(np.array([d["ts"] for d in docs]) / 1000.0)
    frame = pd.DataFrame({"series": [d["series"] for d in docs], "timestamp": ts,
                          "value": [repr(d["value"]) for d in docs]})  # fmt: skip
    frame.to_csv(workdir / "events.csv", index=False)
    result = CliRunner().invoke(main, ["replay", str(workdir / "events.csv"), "--config",
                                       str(config), "--out", str(workdir / "replay"),
                                       "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert forecasts(workdir / "replay" / "forecasts.parquet") == live
    # And the input topic itself as the replay's input: a range read without committing.
    args = ["replay", "--topic", topics["input"], "--bootstrap", broker.bootstrap,
            "--api-version", broker.api_version, "--config", str(config), "--quiet"]  # fmt: skip
    result = CliRunner().invoke(main, [*args, "--out", str(workdir / "topic")])
    assert result.exit_code == 0, result.output
    assert forecasts(workdir / "topic" / "forecasts.parquet") == live
    result = CliRunner().invoke(main, [*args, "--out", str(workdir / "part"), "--from-offset",
                                       "0", "--to-offset", "100"])  # fmt: skip
    assert result.exit_code == 0, result.output
    part = pd.read_parquet(workdir / "part" / "forecasts.parquet")
    assert part["offset"].tolist() == list(range(100))
    assert max(v[3] for v in live.values()) >= 2  # retrains happened: the schedule matches


def forecasts(path: Path) -> dict[tuple[str, str], Any]:
    """A replay's forecasts by (series, ISO time), as the service's messages hold them."""
    fc = pd.read_parquet(path)
    k = MODEL["horizon"]
    ms = fc["ts"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    keys = zip(fc["series"], iso_times(ms / 1000.0), strict=True)
    cols = [[f"{n}_{j}" for j in range(1, k + 1)] for n in ("yhat", "lower", "upper")]
    arrays = [fc[c].to_numpy().tolist() for c in cols]
    replayed = {
        key: (arrays[0][i], arrays[1][i], arrays[2][i], int(fc["model_version"].iloc[i]))
        for i, key in enumerate(keys)
    }
    return replayed
