from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.bench.datasets import data_root, epoch_seconds, nab
from pipelines.configs import load_model_config

ROOT = Path(__file__).resolve().parents[3]


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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hidden_sise = 3", r"bad\.toml: unknown model setting\(s\): hidden_sise"),
        ("hidden_size = 0", r"bad\.toml: hidden_size must be an integer >= 1, got 0"),
        ('reversal = "yes"', r"bad\.toml: reversal must be true or false, got 'yes'"),
        ("blend_tolerance = -0.01", r"bad\.toml: blend_tolerance must be a finite number >= 0"),
    ],
)
def test_a_bad_model_setting_names_the_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f"[model]\n{text}\n")
    with pytest.raises(ValueError, match=message):
        load_model_config(bad)


def test_a_config_that_is_not_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(ValueError, match=r"bad\.toml"):
        load_model_config(bad)
