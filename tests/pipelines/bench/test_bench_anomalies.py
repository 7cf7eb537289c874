"""bench anomalies: windows read from NAB's labels, the scoring, the z-score detector."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.bench.anomalies import nab_streams, score, windows, zscore_flags
from pipelines.bench.datasets import data_root

H = 3600.0


def test_a_window_is_caught_by_its_first_flag_and_flags_outside_are_false() -> None:
    ts = np.arange(49) * H  # two days, hourly
    flags = np.zeros(49, bool)
    flags[[5, 7, 30]] = True
    got = score(ts, flags, [(4 * H, 8 * H), (20 * H, 24 * H)])
    assert got["caught"] == 1 and got["windows"] == 2
    assert got["delays_h"] == [1.0, None]  # the first flag, an hour after the start
    assert got["false"] == 1  # event 30
    assert got["days_outside"] == (48 - 8) / 24  # two days less two 4-hour windows


def test_the_z_score_flags_a_spike_once_it_has_a_day_behind_it() -> None:
    rng = np.random.default_rng(0)
    ts = np.arange(96) * H  # four days, hourly
    values = rng.normal(size=96)
    values[[10, 60]] += 50.0  # the first within the first day: no day of history yet
    flags = zscore_flags(ts, values)
    assert flags[60] and not flags[10]
    assert flags.sum() <= 3  # 3 sd of normal noise: the odd one at most


def test_every_nab_stream_of_the_panel_has_its_windows() -> None:
    if not (data_root() / "NAB" / "labels").exists():
        pytest.skip("the NAB labels are not in the data folder")
    got = {p: windows(p) for p in nab_streams()}
    assert len(got) == 17 and all(got.values())
    start, end = windows("NAB/realKnownCause/nyc_taxi.csv")[0]
    assert (end - start) / H == 4 * 24 + 7  # 2014-10-30 15:30 to 2014-11-03 22:30
