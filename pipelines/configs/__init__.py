"""Read the ``[model]`` table of a TOML config into a :class:`ForecasterConfig`."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from forecaster import ForecasterConfig


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's tables; ``ValueError`` naming the file when it cannot be read."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        msg = f"{path}: {exc}"
        raise ValueError(msg) from exc


def load_model_config(path: Path, **overrides: Any) -> ForecasterConfig:
    """The ``[model]`` table of ``path``, with ``overrides`` on top; errors name the file."""
    doc = read_toml(path)
    table = doc.get("model", {})
    if not isinstance(table, dict):
        msg = f"{path}: [model] must be a table"
        raise ValueError(msg)
    try:
        return ForecasterConfig.from_dict({**table, **overrides})
    except ValueError as exc:
        msg = f"{path}: {exc}"
        raise ValueError(msg) from exc
