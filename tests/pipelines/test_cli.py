"""The command line: the benchmark runs end to end and reports every figure."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from tests.conftest import needs_jit


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "bench" in result.output


@needs_jit  # interpreted kernels would take minutes; the maths is tested elsewhere
def test_bench_core_json_holds_every_figure_and_ratio() -> None:
    result = CliRunner().invoke(main, ["bench", "core", "--quick", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    names = [row["name"] for row in report["rows"]]
    assert names == [
        "1 series, 1 event/call, H=32",
        "1 series, 1 event/call, H=64",
        "10,000 series, 1 event each, H=32",
        "train step, 32 windows x 64 steps, H=32",
    ]
    for row in report["rows"]:
        assert row["ours_us"] > 0 and row["torch_us"] > 0 and row["bound_us"] > 0
        assert row["speedup"] == pytest.approx(row["torch_us"] / row["ours_us"])
        assert row["fraction_of_bound"] == pytest.approx(row["bound_us"] / row["ours_us"])
    assert report["machine"]["torch_threads"] == 1
    assert report["machine"]["matmul_gflops_1thread"] > 0


@needs_jit
def test_bench_scale_quick_reports_memory_and_cost_ratio() -> None:
    result = CliRunner().invoke(main, ["bench", "scale", "--quick", "--repeat", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    rows = report["rows"]
    assert [r["series"] for r in rows] == [1_000, 10_000]
    assert rows[0]["bytes_per_series"] == rows[1]["bytes_per_series"] > 0
    assert rows[1]["state_mb"] > rows[0]["state_mb"]
    assert report["cost_ratio_largest_to_smallest"] == pytest.approx(
        rows[1]["us_per_event"] / rows[0]["us_per_event"]
    )
    mixed = report["aggregation_rows"]
    assert [r["series"] for r in mixed] == [1_000, 10_000]
    # The experts' state (pending forecasts, regrets) is per series, on top of the GRU's.
    assert mixed[0]["bytes_per_series"] > rows[0]["bytes_per_series"]
    for plain, agg in zip(rows, mixed, strict=True):
        # One run: the ratio is that run's, and its range is that one number.
        assert agg["cost_vs_no_aggregation"] == pytest.approx(
            agg["us_per_event"] / plain["us_per_event"]
        )
        assert agg["cost_vs_no_aggregation_range"] == [agg["cost_vs_no_aggregation"]] * 2
        # CPU time beside elapsed time: the figure a shared machine moves less.
        assert agg["cpu_cost_vs_no_aggregation"] == pytest.approx(
            agg["cpu_us_per_event"] / plain["cpu_us_per_event"]
        )


@needs_jit
def test_bench_scale_takes_the_median_of_its_runs() -> None:
    from pipelines.bench import scale

    report = scale.run(quick=True, repeat=3)
    assert report["repeat"] == 3
    for agg in report["aggregation_rows"]:
        runs = agg["cost_vs_no_aggregation_runs"]
        assert len(runs) == 3 and all(r > 0 for r in runs)
        assert agg["cost_vs_no_aggregation"] == sorted(runs)[1]
        assert agg["cost_vs_no_aggregation_range"] == [min(runs), max(runs)]
        assert len(agg["cpu_cost_vs_no_aggregation_runs"]) == 3
    with pytest.raises(ValueError, match="repeat must be at least 1, got 0"):
        scale.run(quick=True, repeat=0)
    bad = CliRunner().invoke(main, ["bench", "scale", "--quick", "--repeat", "0"])
    assert bad.exit_code == 2 and "--repeat" in bad.output


def test_accuracy_runner_scores_a_recording_beside_the_baselines_and_river() -> None:
    from forecaster import ForecasterConfig
    from pipelines.bench.accuracy import NAIVE, run_stream, verdict
    from pipelines.bench.datasets import Recording

    t = np.arange(1500.0) * 3600
    y = np.sin(2 * np.pi * t / 86400) + np.random.default_rng(0).normal(scale=0.1, size=t.size)
    cfg = ForecasterConfig(horizon=12, hidden_size=4, history=96, window=48, burn_in=8,
                           train_steps=5, batch_windows=8, retrain_every=500, swap_delay=50,
                           rebuild_steps=24, background=False)  # fmt: skip
    row = run_stream(Recording("sine", t, y), cfg, seeds=(0, 1, 2))
    assert row["season"] == 24
    assert row["river snarimax setting"] in (0.0003, 0.001, 0.003, 0.01, 0.03, None)
    for step in (1, 12):
        best = min(row[f"{b}+{step}"] for b in NAIVE)
        assert row[f"best+{step}"] == best
        peers = [row[f"river snarimax+{step}"], row[f"river holtwinters+{step}"]]
        assert row[f"best_all+{step}"] == min(best, *peers)
        assert row[f"ratio+{step}"] == pytest.approx(row[f"gru+{step}"] / best)
        assert row[f"ratio_all+{step}"] == pytest.approx(row[f"gru+{step}"] / min(best, *peers))
        seeds = row[f"ratio+{step} per seed"]  # the median of three is one of them
        assert len(seeds) == 3 and row[f"ratio+{step}"] == pytest.approx(sorted(seeds)[1])
    # A daily cycle: the seasonal naive beats the last value by far at +12.
    assert row["seasonal naive+12"] < 0.5 * row["last value+12"]
    good = {**row, "ratio+12": 0.9, "ratio+1": 1.0, "ratio_all+1": 1.0, "ratio_all+12": 0.9,
            "coverage_min": 0.88, "coverage_max": 0.92}  # fmt: skip
    assert verdict([good] * 18)["passes"] is True
    # One stream 4% behind at +12 loses the "never more than 3% above" bar alone.
    bad = verdict([good] * 17 + [{**good, "ratio+12": 1.04, "ratio_all+12": 1.04}])
    assert bad["passes"] is False
    assert bad["+12_within_3pct_of_best_naive"] == "17/18 (bar: 18)"
    assert bad["+12_at_or_below_best_naive"] == "17/18 (bar: 16)"


def test_accuracy_streams_are_picked_by_name_and_a_wrong_name_is_named() -> None:
    from pipelines.bench.accuracy import select
    from pipelines.bench.datasets import PANEL

    assert len(PANEL) == 18 and select(None) == PANEL
    assert select("nyc_taxi,ETTh1") == ("NAB/realKnownCause/nyc_taxi.csv", "ETDataset/ETTh1.csv")
    with pytest.raises(ValueError, match="no panel stream matches 'nope'"):
        select("nope")


def test_missing_data_is_a_usage_error_naming_the_folder(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORECASTER_DATA", str(tmp_path))
    for command in (["bench", "accuracy"], ["bench", "etth1"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2
        assert f"evaluation data not found in {tmp_path}" in result.output
