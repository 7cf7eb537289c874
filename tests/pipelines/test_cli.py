"""The command line: the benchmark runs end to end and reports every figure."""

from __future__ import annotations

import json

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
