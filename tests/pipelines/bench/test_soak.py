"""Issue 7.6, the CI size: 200,000 events of 10,000 series through the local broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.bench import soak
from tests.conftest import needs_compiled_speed
from tests.pipelines.streams import write_settings

pytestmark = [pytest.mark.kafka, needs_compiled_speed]


def test_a_short_soak_loses_nothing_and_memory_stays_flat(tmp_path: Path) -> None:
    config = write_settings(tmp_path / "small.toml", {"model": {
        "horizon": 6, "hidden_size": 8, "history": 32, "window": 16, "burn_in": 4,
        "batch_windows": 8, "train_steps": 5, "retrain_every": 20_000, "first_retrain": 0,
        "swap_delay": 200, "rebuild_steps": 8, "seasons": [], "levels": [8.0],
    }})  # fmt: skip
    result = soak.run(events=200_000, n_series=10_000, rate=0.0, sample_seconds=2.0,
                      config=config)  # fmt: skip
    assert result["produced"] == 200_000
    assert result["forecasts"] == 200_000 and not result["rejected"]  # none lost
    windows = result["windows"]
    assert len(windows) >= 4
    # Every series exists after the first 10,000 events; from then on memory is the
    # per-series state and nothing more: no growth beyond noise (allocator, buffers).
    assert result["rss_floor_growth_mb"] < 64
