"""Model files (issue 16): train, show, replay --model and --save-model, and bad files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result

from forecaster import ForecasterConfig, OnlineForecaster
from forecaster.transfer import transferable, warm_start
from pipelines.cli import main
from pipelines.models.file import MAGIC, ModelFileError, decode_model, read_model
from tests.pipelines.streams import MODEL, write_settings

T0 = np.datetime64("2024-01-01T00:00:00", "s")


def hourly(path: Path, n: int, seed: int, cov: bool = False) -> Path:
    rng = np.random.default_rng(seed)
    y = 10 + np.sin(2 * np.pi * np.arange(n) / 24) + 0.1 * rng.standard_normal(n)
    head = "timestamp,value,load" if cov else "timestamp,value"
    rows = [f"{T0 + np.timedelta64(i * 3600, 's')},{v:.6f}" + (f",{i % 7}" if cov else "")
            for i, v in enumerate(y)]  # fmt: skip
    path.write_text("\n".join([head, *rows]) + "\n")
    return path


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def trained(tmp_path: Path) -> tuple[Path, Path]:
    """A model file trained on two series, and its config."""
    cfg = write_settings(tmp_path / "m.toml", {"model": MODEL})
    a, b = hourly(tmp_path / "a.csv", 500, 0), hourly(tmp_path / "b.csv", 400, 1)
    out = tmp_path / "model.fcm"
    res = cli("train", "--config", str(cfg), str(a), str(b), "--out", str(out))
    assert res.exit_code == 0, res.output + res.stderr
    return out, cfg


def test_train_writes_what_model_show_prints(trained: tuple[Path, Path]) -> None:
    path, _ = trained
    mf = read_model(path)
    h = mf.header
    assert h["data"]["series"] == 2 and h["data"]["events"] == 900
    assert h["data"]["inputs"] == [str(path.parent / "a.csv"), str(path.parent / "b.csv")]
    assert h["data"]["span"] == ["2024-01-01T00:00:00Z", "2024-01-21T19:00:00Z"]
    assert h["config"] == ForecasterConfig.from_dict(MODEL).to_dict()
    assert h["retrains"]["accepted"] >= 1
    steps = h["scores"]["steps"]
    assert [s["step"] for s in steps] == [1, 2, 3]
    assert steps[0]["n"] == 100 + 80  # the last 20% of each series
    assert all(s["last value mae"] > 0 for s in steps)
    # The weights are the trained ones, not a new model's.
    fresh = transferable(OnlineForecaster(mf.config))
    assert not np.array_equal(mf.arrays["params"], fresh["params"])
    shown = cli("model", "show", str(path))
    assert shown.exit_code == 0
    text = shown.output
    assert f"model file {mf.id}" in text and "900 events of 2 series" in text
    assert f"{steps[0]['mae']:.4g}" in text and f"{steps[2]['last value mae']:.4g}" in text
    as_json = json.loads(cli("model", "show", str(path), "--json").output)
    arrays = {k: list(v.shape) for k, v in mf.arrays.items()}
    assert as_json == {"id": mf.id, **h, "arrays": arrays}


def forecasts(tmp: Path, name: str, *args: str) -> bytes:
    out = tmp / name
    res = cli("replay", *args, "--out", str(out), "--format", "csv", "--quiet")
    assert res.exit_code == 0, res.output + res.stderr
    return (out / "forecasts.csv").read_bytes()


def test_two_replays_from_the_file_give_the_same_bytes(
    tmp_path: Path, trained: tuple[Path, Path]
) -> None:
    path, cfg = trained
    data = hourly(tmp_path / "c.csv", 300, 2)
    first = forecasts(tmp_path, "r1", str(data), "--model", str(path))
    assert first == forecasts(tmp_path, "r2", str(data), "--model", str(path), "--config", str(cfg))
    cold = forecasts(tmp_path, "r3", str(data), "--config", str(cfg))
    assert first != cold  # the file's weights made the forecasts
    # and they are the weights a model started from the file has, event for event
    mf = read_model(path)
    model = warm_start(ForecasterConfig.from_dict({**MODEL, "background": False}), mf.arrays)
    t = (np.datetime64("2024-01-01T00:00:00", "s") - np.datetime64(0, "s")).astype(float)
    y = np.loadtxt(data, delimiter=",", skiprows=1, usecols=1)
    upd = model.learn(["c"] * y.size, t + 3600.0 * np.arange(y.size), y)
    row = first.decode().splitlines()[250].split(",")
    assert [float(x) for x in row[7:10]] == upd.yhat[249].tolist()


def test_a_changed_byte_changes_the_id_and_an_unsealed_change_is_refused(
    trained: tuple[Path, Path],
) -> None:
    path, _ = trained
    data = path.read_bytes()
    mf = decode_model(data, "x")
    at = data.index(b'"version"') + 1  # a byte of the JSON header
    changed = bytearray(data)
    changed[at] = ord("V")
    with pytest.raises(ModelFileError, match="x: damaged model file"):
        decode_model(bytes(changed), "x")
    body = bytes(changed[len(MAGIC) + 32 :])
    resealed = MAGIC + hashlib.sha256(body).digest() + body
    other = decode_model(resealed, "x")
    assert other.id != mf.id and other.arrays.keys() == mf.arrays.keys()


def test_replay_save_model_writes_a_file_replay_model_reads(
    tmp_path: Path, trained: tuple[Path, Path]
) -> None:
    _, cfg = trained
    data = hourly(tmp_path / "d.csv", 400, 3)
    saved = tmp_path / "saved.fcm"
    res = cli("replay", str(data), "--config", str(cfg), "--save-model", str(saved), "--quiet",
              "--json")  # fmt: skip
    assert res.exit_code == 0, res.stderr
    mf = read_model(saved)
    assert mf.header["data"]["events"] == 400 and mf.header["data"]["partition"] == "d.csv"
    assert mf.header["scores"]["holdout"] == pytest.approx(0.9)  # after the 10% warm-up
    assert mf.header["config"] == ForecasterConfig.from_dict(MODEL).to_dict()  # as given
    again = cli("replay", str(data), "--model", str(saved), "--quiet", "--json")
    assert again.exit_code == 0, again.stderr


def bad_files(tmp: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """Each bad input and what its error line must say."""
    data = good.read_bytes()
    trunc = tmp / "truncated.fcm"
    trunc.write_bytes(data[: len(data) // 2])
    foreign = tmp / "foreign.fcm"
    foreign.write_bytes(b"PK\x03\x04" + data[4:])
    return {
        "missing": (tmp / "nope.fcm", "nope.fcm: cannot read the model file"),
        "truncated": (trunc, "truncated.fcm: damaged model file"),
        "foreign": (foreign, "foreign.fcm: not a forecaster model file"),
    }


OTHER_CONFIGS: dict[str, tuple[dict[str, Any], str]] = {
    "horizon": ({"horizon": 4}, "horizon 3 != 4"),
    "layers": ({"num_layers": 2}, "num_layers 1 != 2"),
    "inputs": ({"use_dt": False}, "use_dt True != False"),
    "covariates": ({"covariates": ["load"]}, "covariates [] != ['load']"),
}


def one_error_line(res: Result, *parts: str) -> None:
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for part in parts:
        assert part in lines[0], lines[0]


@pytest.mark.parametrize("kind", ["missing", "truncated", "foreign"])
def test_a_bad_file_is_one_line_and_exit_2_in_replay_and_model_show(
    tmp_path: Path, trained: tuple[Path, Path], kind: str
) -> None:
    path, cfg = trained
    bad, says = bad_files(tmp_path, path)[kind]
    data = hourly(tmp_path / "e.csv", 100, 4)
    out = tmp_path / "out"
    res = cli("replay", str(data), "--model", str(bad), "--config", str(cfg), "--out", str(out))
    one_error_line(res, f"--model {bad.parent}", says)
    assert not out.exists()  # nothing read, nothing written
    one_error_line(cli("model", "show", str(bad)), says)


@pytest.mark.parametrize("key", sorted(OTHER_CONFIGS))
def test_a_file_for_another_config_is_one_line_naming_the_mismatch(
    tmp_path: Path, trained: tuple[Path, Path], key: str
) -> None:
    path, _ = trained
    change, says = OTHER_CONFIGS[key]
    other = write_settings(tmp_path / "other.toml", {"model": {**MODEL, **change}})
    data = hourly(tmp_path / "f.csv", 100, 5, cov=True)
    out = tmp_path / "out"
    res = cli("replay", str(data), "--model", str(path), "--config", str(other), "--out",
              str(out))  # fmt: skip
    one_error_line(res, str(path), "trained for another config", says)
    assert not out.exists()


def test_train_refuses_a_missing_input_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "m.fcm"
    res = cli("train", str(tmp_path / "none.csv"), "--out", str(out))
    one_error_line(res, "none.csv: no such file or folder")
    assert not out.exists()


def test_the_service_reads_init_from_the_file_or_the_environment(tmp_path: Path) -> None:
    from pipelines.service.settings import load_settings

    config = write_settings(tmp_path / "s.toml", {"model": {**MODEL, "init": "a.fcm"}})
    assert load_settings(config, env={}).model_init == Path("a.fcm")
    env = {"FORECASTER_MODEL__INIT": "/models/b.fcm"}
    settings = load_settings(config, env=env)
    assert settings.model_init == Path("/models/b.fcm")
    assert settings.forecaster_config() == ForecasterConfig.from_dict(MODEL)
    bad = write_settings(tmp_path / "bad.toml", {"model": {**MODEL, "init": 3}})
    with pytest.raises(ValueError, match=r"bad\.toml: \[model\] init must be the path"):
        load_settings(bad, env={})
