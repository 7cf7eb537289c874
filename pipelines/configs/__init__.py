"""Configuration files: the shipped ones (package data), reading TOML, environment overrides.

The shipped configurations (``sensors.toml``, ``fleet.toml``, ``etth1.toml``) are
package data, read through :mod:`importlib.resources`, so an installed package finds
them wherever it runs; ``config/`` in the repository is their documented copy, kept
identical by a test. :func:`load_model_config` reads a file's ``[model]`` table into a
:class:`~forecaster.ForecasterConfig`, and :func:`apply_env` puts
``FORECASTER_<TABLE>__<KEY>`` environment variables over a file's tables.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from forecaster import ForecasterConfig

SHIPPED = ("sensors.toml", "fleet.toml", "etth1.toml")
ENV_PREFIX = "FORECASTER_"
ConfigFile = Path | Traversable  # a file of the user's, or a shipped one


def shipped(name: str) -> Traversable:
    """A shipped configuration by file name (one of :data:`SHIPPED`).

    >>> shipped("fleet.toml").name
    'fleet.toml'
    """
    if name not in SHIPPED:
        msg = f"no shipped configuration {name!r}; there are {', '.join(SHIPPED)}"
        raise ValueError(msg)
    return resources.files(__name__).joinpath(name)


def read_toml(path: ConfigFile) -> dict[str, Any]:
    """A TOML file's tables; ``ValueError`` naming the file when it cannot be read."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        msg = f"{path}: {exc}"
        raise ValueError(msg) from exc


# [model] init names the model file a service starts from: not a key of ForecasterConfig.
INIT = "init"


def model_keys(table: Mapping[str, Any]) -> dict[str, Any]:
    """A ``[model]`` table's keys of :class:`~forecaster.ForecasterConfig` (``init`` aside)."""
    return {k: v for k, v in table.items() if k != INIT}


def load_model_config(path: ConfigFile, **overrides: Any) -> ForecasterConfig:
    """The ``[model]`` table of ``path``, with ``overrides`` on top; errors name the file."""
    doc = read_toml(path)
    table = doc.get("model", {})
    if not isinstance(table, dict):
        msg = f"{path}: [model] must be a table"
        raise ValueError(msg)
    try:
        return ForecasterConfig.from_dict({**model_keys(table), **overrides})
    except ValueError as exc:
        msg = f"{path}: {exc}"
        raise ValueError(msg) from exc


def _env_value(text: str, typed: bool) -> Any:
    """``text`` as TOML where no declared type will convert it (or for arrays and tables)."""
    if not typed and not text.lstrip().startswith(("[", "{")):
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_env(doc: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """``doc`` with every ``FORECASTER_A__B=value`` variable set at ``doc[a][b]``.

    The value is text, converted later to the key's declared type; keys with no
    declared type, in ``[model]`` and ``[kafka.client]``, read it as TOML when it parses
    as one (quote it to keep text: ``'"0123"'``), as do arrays and tables.
    """
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in doc.items()}
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if any(not p for p in path):
            msg = f"environment variable {name}: empty key in its path"
            raise ValueError(msg)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                msg = f"environment variable {name}: {part!r} is not a table"
                raise ValueError(msg)
            node[part] = child = dict(child)
            node = child
        untyped = path[0] == "model" or path[:2] == ["kafka", "client"]
        node[path[-1]] = _env_value(raw, typed=untyped)
    return out
