"""The shipped configurations: package data, identical to config/, loaded as written."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from pipelines.configs import SHIPPED, load_model_config, read_toml, shipped
from pipelines.service.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", SHIPPED)
def test_the_packaged_config_is_the_documented_copy_byte_for_byte(name: str) -> None:
    # config/ is what the README and the comments point at; the package reads its own copy.
    assert shipped(name).read_bytes() == (ROOT / "config" / name).read_bytes(), (
        f"pipelines/configs/{name} differs from config/{name}: copy the one you edited"
    )


def test_config_and_the_package_hold_the_same_files() -> None:
    packaged = {p.name for p in (ROOT / "pipelines" / "configs").glob("*.toml")}
    assert packaged == {p.name for p in (ROOT / "config").glob("*.toml")} == set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_config_loads_with_every_model_key_as_written(name: str) -> None:
    cfg = load_model_config(shipped(name))
    table = tomllib.loads(shipped(name).read_text())["model"]
    loaded = cfg.to_dict()
    assert {k: loaded[k] for k in table} == table  # no key dropped, clamped or renamed
    settings = load_settings(shipped(name), env={})  # the service reads all of it
    assert settings.forecaster_config() == cfg


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
    with pytest.raises(ValueError, match=r"bad\.toml"):
        read_toml(bad)


def test_there_is_no_shipped_config_by_another_name() -> None:
    with pytest.raises(ValueError, match=r"no shipped configuration 'other\.toml'"):
        shipped("other.toml")
