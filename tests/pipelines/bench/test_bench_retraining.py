"""``forecaster bench drift`` and ``forecaster bench retrain``: their figures, on small runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pipelines.bench import drift
from pipelines.cli import main

TINY = """
[model]
horizon = 3
hidden_size = 6
history = 200
window = 24
burn_in = 4
batch_windows = 6
train_steps = 20
retrain_every = 200
first_retrain = 100
swap_delay = 20
rebuild_steps = 12
loss = "mae"
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_recovery_is_where_the_mae_is_back_within_ten_percent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(drift, "CHANGE", 10)
    monkeypatch.setattr(drift, "WINDOW", 4)
    err = np.ones(40)
    err[10:20] = 3.0  # elevated for 10 events after the change
    # the window of 4 from post-change event k holds 10 - k errors of 3 while k < 10:
    # (3 * 1 + 1 * 3) / 4 = 1.5 at k = 9, all ones (1.0) from k = 10
    assert drift.recovery(err, 1.0) == 10
    assert drift.recovery(err, 1.0 / 1.1) == 10
    assert drift.recovery(err, 1.5 / 1.1) == 9
    assert drift.recovery(np.ones(40), 1.0) == 0
    assert drift.recovery(np.full(40, 2.0), 1.0) is None


def test_the_streams_change_as_described() -> None:
    for kind in drift.KINDS:
        ts, y = drift.stream(kind)
        assert np.all(np.diff(ts) == drift.SPACING)
        before = y[drift.CHANGE - 2000 : drift.CHANGE]
        after = y[drift.CHANGE : drift.CHANGE + 2000]
        if kind == "level shift":
            assert after.mean() - before.mean() == pytest.approx(3.0, abs=0.05)
        elif kind == "noise scale":
            assert np.diff(after).std() == pytest.approx(4 * np.diff(before).std(), rel=0.1)
        elif kind == "stationary control":
            assert y.size == drift.CONTROL_EVENTS
    with pytest.raises(ValueError, match="stream kind must be one of"):
        drift.stream("tsunami")


def test_bench_drift_reports_every_stream_and_a_verdict(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("CHANGE", 1200), ("EVENTS", 2000), ("CONTROL_EVENTS", 2000),
                        ("WINDOW", 100), ("TAIL", 300), ("LONGEST", 800)):  # fmt: skip
        monkeypatch.setattr(drift, name, value)
    args = ["bench", "drift", "--config", str(tiny), "--seeds", "0,1"]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["stream"] for r in report["rows"]] == list(drift.KINDS)
    control = report["rows"][-1]
    assert control["retrain_ratio"] == control["retrains_drift"] / control["retrains_schedule"]
    assert all(r["drift"] == 0 for r in control["reasons_schedule_per_seed"])
    for row in report["rows"][:-1]:
        assert min(row["level_per_seed"]) > 0 and "recovery_drift" in row
        assert len(row["recovery_schedule_per_seed"]) == 2
    assert report["passes"] == all(r["passes"] for r in report["rows"])
    for row in report["rows"]:  # medians of the two seeds
        assert len(row["mae_drift_per_seed"]) == 2
        assert row["mae_drift"] == pytest.approx(np.median(row["mae_drift_per_seed"]))
    printed = CliRunner().invoke(main, args)
    assert printed.exit_code == 0, printed.output
    assert "passes: " in printed.output and "stationary control" in printed.output


def test_bench_retrain_times_every_phase_old_and_new(tiny: Path) -> None:
    args = ["bench", "retrain", "--config", str(tiny), "--events", "800", "--json",
            "--early-stop-every", "2", "--early-stop-patience", "1"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    old, new = report["old"], report["new"]
    assert old["retrains"] == new["retrains"] >= 3  # at 100, 200, 400, 600
    assert old["mean_steps"] == 20 and new["mean_steps"] <= 20
    for side in (old, new):
        per = side["seconds_per_retrain"]
        assert all(per[p] > 0 for p in ("windows", "training", "scoring", "job_states"))
        assert per["total"] == pytest.approx(
            sum(v for k, v in per.items() if k not in ("total", "early_stop_evaluations"))
        )
    assert old["seconds_per_retrain"]["early_stop_evaluations"] == 0
    assert new["seconds_per_retrain"]["early_stop_evaluations"] > 0
    assert new["window_mb"] < old["window_mb"]  # one history copied, not 120 windows
    printed = CliRunner().invoke(
        main, ["bench", "retrain", "--config", str(tiny), "--events", "800"]
    )
    assert printed.exit_code == 0, printed.output
    assert "one retrain" in printed.output
