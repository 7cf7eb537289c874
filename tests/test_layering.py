"""Imports go one way: forecaster below everything, the engine below Kafka and files,
the commands on top; and no module or constructor grows past what a reader takes in.

    forecaster  <-  pipelines.engine  <-  pipelines.kafka, pipelines.files
                                      <-  pipelines.service, pipelines.replay, pipelines.bench

``pipelines.configs`` (TOML and the shipped files) and ``pipelines.tables`` (terminal
tables) sit beside the engine and import no other part of the pipelines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# io is allowed: snapshots are built in an in-memory BytesIO, which is not I/O.
FORBIDDEN = {
    "pipelines", "kafka", "prometheus_client", "time", "datetime", "socket", "logging",
    "os", "random", "click", "rich", "shutil", "subprocess", "tempfile",
}  # fmt: skip

# What each part of pipelines may import from pipelines (beside itself).
ALLOWED = {
    "engine": set(),
    "configs": set(),
    "tables": set(),
    "kafka": {"engine"},
    "files": {"engine"},
    "models": set(),
    "replay": {"engine", "kafka", "files", "configs", "tables", "models"},
    "train": {"engine", "kafka", "files", "configs", "tables", "replay", "models"},
    "service": {"engine", "kafka", "files", "configs", "tables", "models"},
    "bench": {
        "engine",
        "kafka",
        "files",
        "configs",
        "tables",
        "service",
        "replay",
        "models",
        "train",
    },
    "cli": {"service", "replay", "train", "bench"},
    "__main__": {"cli"},
    "__init__": set(),
}
# Third-party libraries only some parts may use.
ONLY_IN = {"prometheus_client": {"service"}, "kafka": {"kafka", "service", "bench"}}
MAX_LINES = 400
MAX_PARAMETERS = 8


def imports(path: Path) -> list[str]:
    """Every module ``path`` imports, at the top or inside a function (absolute names)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return out


def part(path: Path) -> str:
    """The part of pipelines a file belongs to: its package, or its module's name."""
    rel = path.relative_to(ROOT / "pipelines")
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def pipelines_files() -> list[Path]:
    return sorted((ROOT / "pipelines").rglob("*.py"))


def test_forecaster_imports_no_io_clock_or_application_module() -> None:
    offenders = []
    for path in (ROOT / "forecaster").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        offenders += [f"{path.name}: {n}" for n in imports(path)
                      if n.split(".")[0] in FORBIDDEN]  # fmt: skip
        for node in ast.walk(tree):
            is_call = isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            if is_call and node.func.id == "open":  # type: ignore[union-attr]
                offenders.append(f"{path.name}: open()")
            # a clock reached without importing it by name (datetime.now, time.time)
            if isinstance(node, ast.Attribute) and node.attr in {"now", "utcnow", "monotonic"}:
                offenders.append(f"{path.name}: .{node.attr}")
    assert offenders == []


def test_every_part_of_pipelines_imports_only_the_parts_below_it() -> None:
    offenders = []
    for path in pipelines_files():
        own = part(path)
        assert own in ALLOWED, f"{path}: a part of pipelines the layering does not know"
        for name in imports(path):
            top = name.split(".")
            if top[0] == "pipelines" and len(top) > 1:
                other = top[1]
                if other != own and other not in ALLOWED[own]:
                    offenders.append(f"{path.relative_to(ROOT)} ({own}) imports {name}")
            elif top[0] in ONLY_IN and own not in ONLY_IN[top[0]]:
                offenders.append(f"{path.relative_to(ROOT)} ({own}) imports {name}")
    assert offenders == []


def test_the_engine_knows_no_kafka_files_or_metrics_library() -> None:
    # The rule above, spelled out for the engine: replay and serving share it unchanged.
    for path in (ROOT / "pipelines" / "engine").rglob("*.py"):
        bad = [n for n in imports(path) if n.startswith(
            ("pipelines.kafka", "pipelines.files", "prometheus_client", "kafka"))]  # fmt: skip
        assert bad == [], path


def test_the_layering_test_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from pipelines.kafka.options import KafkaSettings\n")
    assert "pipelines.kafka.options" in imports(bad)  # lazy imports count


@pytest.mark.parametrize("path", pipelines_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_longer_than_a_reader_takes_in(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES


def constructor_parameters(node: ast.ClassDef) -> int | None:
    """Parameters of a class's ``__init__``, or of a dataclass's generated one.

    A dataclass whose every field has a default (counters, settings) is built empty or
    by keyword, and counts as a settings object: None.
    """
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            return len(item.args.args) - 1 + len(item.args.kwonlyargs)
    decorators = [d.func if isinstance(d, ast.Call) else d for d in node.decorator_list]
    if not any(isinstance(d, ast.Name) and d.id == "dataclass" for d in decorators):
        return None
    fields = [b for b in node.body if isinstance(b, ast.AnnAssign)]
    if all(f.value is not None for f in fields):
        return None
    return len(fields)


def test_no_constructor_takes_more_than_eight_parameters() -> None:
    offenders = []
    for path in pipelines_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                n = constructor_parameters(node)
                if n is not None and n > MAX_PARAMETERS:
                    offenders.append(f"{path.relative_to(ROOT)}: {node.name} takes {n}")
    assert offenders == []


def readme_layout() -> set[str]:
    """Every file and folder the README's layout section lists, as paths from the root."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    listed: set[str] = set()
    parents: list[str] = []
    for line in block.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        names = []
        for token in line.split():
            if not token.endswith((".py", "/")):
                break
            names.append(token)
        if not names:
            continue  # a description continued on its own line
        parents = parents[:depth]
        for name in names:
            listed.add("".join(parents) + name)
        if names[0].endswith("/"):
            parents.append(names[0])
    return listed


def test_the_readme_layout_lists_every_module_and_only_those() -> None:
    listed = readme_layout()
    actual = {str(p.relative_to(ROOT)) for p in pipelines_files() if p.stem not in
              {"__init__", "__main__"}}  # fmt: skip
    actual |= {str(p.relative_to(ROOT)) for p in (ROOT / "forecaster").glob("*.py")
               if p.stem != "__init__"}  # fmt: skip
    folders = {f"{p.relative_to(ROOT)}/" for p in (ROOT / "pipelines").iterdir() if p.is_dir()
               and p.name != "__pycache__"}  # fmt: skip
    assert {x for x in listed if x.endswith(".py")} == actual
    assert folders <= listed
    assert all((ROOT / x).exists() for x in listed), [x for x in listed if not (ROOT / x).exists()]
