from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.datasets import data_root, epoch_seconds, nab
from pipelines.modelconfig import load_model_config

ROOT = Path(__file__).resolve().parents[2]


def test_epoch_seconds_whatever_the_resolution() -> None:
    col = pd.Series(["1970-01-01 00:00:00", "2014-01-07 02:05:00"])
    np.testing.assert_array_equal(epoch_seconds(col), [0.0, 1389060300.0])


def test_nab_recording_loads_with_real_times() -> None:
    if not (data_root() / "NAB").exists():
        pytest.skip("the shared evaluation data is not beside this checkout")
    rec = nab("nyc_taxi")
    assert rec.values.size == 10320
    assert np.median(np.diff(rec.ts)) == 1800.0  # 30-minute spacing


@pytest.mark.parametrize("name", ["sensors.toml", "etth1.toml", "fleet.toml"])
def test_shipped_configs_load(name: str) -> None:
    cfg = load_model_config(ROOT / "config" / name)
    assert cfg.horizon >= 1


def test_bad_config_names_the_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nhidden_sise = 3\n")
    with pytest.raises(ValueError, match=r"bad.toml: unknown model setting\(s\): hidden_sise"):
        load_model_config(bad)
    bad.write_text("[model]\nhidden_size = 0\n")
    with pytest.raises(ValueError, match=r"bad\.toml: hidden_size must be an integer >= 1, got 0"):
        load_model_config(bad)
    bad.write_text("[model\n")
    with pytest.raises(ValueError, match=r"bad\.toml"):
        load_model_config(bad)
