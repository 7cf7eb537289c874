"""``forecaster bench warm`` (issue 16): the figures and the verdict from the errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipelines.bench.warm import parts, row, verdict


def test_a_row_scores_every_replay_on_the_events_all_of_them_forecast() -> None:
    nan = np.nan
    own = np.array([[nan, nan], [1.0, 2.0], [1.0, 2.0], [1.0, -2.0]])
    cold = np.array([[1.0, 1.0], [nan, 4.0], [2.0, 4.0], [-2.0, 4.0]])
    whole = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    r = row("s", {"own": own, "all": whole, "cold": cold, "whole": whole}, horizon=2)
    assert r["events"] == 2  # the first two rows lack a forecast in some replay
    assert r["own+1"] == 1.0 and r["cold+1"] == 2.0 and r["own/cold+1"] == 0.5
    assert r["own/whole+2"] == 2.0 and r["all/cold+2"] == 0.25


def rows(own_cold: list[float], own_whole: list[float]) -> list[dict[str, Any]]:
    return [
        {"own/cold+1": c, "own/cold+12": c, "own/whole+1": w, "own/whole+12": w,
         "all/cold+1": c, "all/cold+12": c, "all/whole+1": w, "all/whole+12": w}
        for c, w in zip(own_cold, own_whole, strict=True)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("worse", "median", "passes"),
    [(2, 1.03, True), (3, 1.0, False), (0, 1.031, False)],
)
def test_the_verdict_needs_16_of_18_at_least_as_good_and_a_median_within_3_percent(
    worse: int, median: float, passes: bool
) -> None:
    cold = [1.001] * worse + [1.0] * (18 - worse)
    got = verdict(rows(cold, [median] * 18), horizon=12)
    assert got["passes"] is passes
    assert got["own +12: at least as good as untrained"] == f"{18 - worse} of 18"


def test_the_panel_streams_are_cut_at_70_percent_of_their_events() -> None:
    from pipelines.bench.datasets import data_root

    if not (data_root() / "NAB").is_dir():
        pytest.skip("the shared data folder is not here")
    head, tail, whole = parts("NAB/realTraffic/speed_7578.csv")
    n = len(whole.batch)
    assert len(head.batch) == int(0.7 * n) and len(head.batch) + len(tail.batch) == n
    assert tail.batch.offsets[0] == len(head.batch) and tail.batch.end == n
    assert np.array_equal(np.r_[head.batch.values, tail.batch.values], whole.batch.values)
