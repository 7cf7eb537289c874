"""The library stays pure: forecaster/ never imports the outside world."""

from __future__ import annotations

import ast
from pathlib import Path

# io is allowed: snapshots are built in an in-memory BytesIO, which is not I/O.
FORBIDDEN = {
    "pipelines", "kafka", "prometheus_client", "time", "datetime", "socket", "logging",
    "os", "random", "click", "rich", "shutil", "subprocess", "tempfile",
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
            is_call = isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            if is_call and node.func.id == "open":  # type: ignore[union-attr]
                offenders.append(f"{path.name}: open()")
    assert offenders == []
