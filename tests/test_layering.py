"""The library stays pure: forecaster/ never imports the outside world."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {
    "pipelines", "kafka", "prometheus_client", "time", "datetime", "socket", "logging",
    "os", "io", "random", "click", "rich",
}  # fmt: skip
ROOT = Path(__file__).resolve().parents[1] / "forecaster"


def test_forecaster_imports_no_io_clock_or_application_module() -> None:
    offenders = []
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
