"""The built package works on its own: a wheel, installed into a fresh environment, runs
``forecaster replay`` from an empty folder and writes nothing there.

How the fresh environment gets its dependencies, honestly: ``python -m venv
--without-pip`` makes an empty one, the wheel (built with ``pip wheel --no-deps`` from a
copy of the sources) is installed into it alone (``pip --python ... install --no-deps``),
and the dependencies (numpy, numba, pandas, kafka-python...) come from this test
environment's site-packages through a ``.pth`` line. A ``.pth`` line only puts that folder
on ``sys.path``; the ``.pth`` files inside it are not run, so the editable install of this
checkout (a ``.pth`` finder there) stays inactive, and the environment's own
site-packages, holding the wheel, comes first. The test checks that ``pipelines`` and
``forecaster`` are imported from the wheel, not from the source tree, and runs with no
``PYTHONPATH`` from a folder outside the checkout. Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from pipelines.bench.datasets import data_root

ROOT = Path(__file__).resolve().parents[1]
SKIP = (".venv", ".cache", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
        ".hypothesis", "tests", "deploy", "scripts", "config")  # fmt: skip


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900, check=False)  # fmt: skip
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment holding only the wheel; returns its ``bin`` folder."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*SKIP))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run(*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", work / "dist", src, cwd=work)
    [wheel] = (work / "dist").glob("gru_stream_forecaster-*.whl")
    venv = work / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    python = venv / "bin" / "python"
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                  cwd=work).strip()  # fmt: skip
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "test-dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    run(*pip, "--python", python, "install", "--no-deps", "--no-index", wheel, cwd=work)
    return venv / "bin"


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def test_the_wheel_holds_the_packages_and_the_shipped_configs(installed: Path) -> None:
    out = run(installed / "python", "-c", "import json, forecaster, pipelines, pipelines.configs "
              "as c; print(json.dumps([forecaster.__file__, pipelines.__file__, "
              "[c.shipped(n).read_text()[:1] for n in c.SHIPPED]]))", cwd=installed,
              env=clean_env())  # fmt: skip
    forecaster_file, pipelines_file, configs = json.loads(out)
    venv = installed.parent
    assert Path(forecaster_file).is_relative_to(venv), forecaster_file  # not the checkout
    assert Path(pipelines_file).is_relative_to(venv), pipelines_file
    assert configs == ["#", "#", "#"]


def test_replay_runs_from_an_empty_folder_and_writes_nothing_there(
    installed: Path, tmp_path: Path
) -> None:
    data = data_root() / "river" / "airline-passengers.csv"
    if not data.is_file():
        pytest.skip(f"{data}: the shared evaluation data is not beside this checkout")
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run(installed / "forecaster", "replay", data.resolve(), "--horizon", "3", "--json",
              "--quiet", cwd=empty, env=clean_env())  # fmt: skip
    doc = json.loads(out)
    assert doc["summary"]["rows"] == 144 and doc["summary"]["events"] == 144
    models = {row["model"] for row in doc["scores"]}
    assert models == {"sensors", "last value", "seasonal naive", "ewma"}  # the shipped config
    assert {row["step"] for row in doc["scores"]} == {1, 2, 3}
    assert doc["summary"]["configs"][0]["forecasts"] is None  # no file promised either
    assert list(empty.iterdir()) == []
