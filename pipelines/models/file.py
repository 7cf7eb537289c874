r"""Model files (``.fcm``): a trained model's transferable state, what it is valid for, and its id.

Layout, no pickle anywhere::

    b"FCMODEL\x00"            8 bytes: what the file is
    SHA-256 digest            32 bytes: of everything after it
    header length             8 bytes, big-endian
    header                    UTF-8 JSON: format, created_at, version, config, data, scores
    arrays                    NumPy .npz (loaded with allow_pickle=False): the arrays of
                              forecaster.transfer.transferable

The id is the digest's first 16 hex digits: any changed byte gives another id, and a
file whose bytes do not match its digest is refused as damaged.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from forecaster import ForecasterConfig
from forecaster.transfer import structure_mismatch, warm_start

MAGIC = b"FCMODEL\x00"
FORMAT = 1
_LEN = struct.Struct(">Q")
_HEAD = len(MAGIC) + 32 + _LEN.size


class ModelFileError(ValueError):
    """A model file that cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class ModelFile:
    """A model file's content: ``header`` (JSON fields) and ``arrays`` (the state)."""

    id: str
    header: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def config(self) -> ForecasterConfig:
        """The model configuration the file was trained with."""
        return ForecasterConfig.from_dict(self.header["config"])


def package_version() -> str:
    """The package's version (``unknown`` when not installed)."""
    try:
        return metadata.version("gru-stream-forecaster")
    except metadata.PackageNotFoundError:
        return "unknown"


def encode_model(
    cfg: ForecasterConfig, arrays: dict[str, np.ndarray], info: dict[str, Any]
) -> bytes:
    """A model file's bytes: ``info`` (data summary, scores) beside the config and state."""
    header = {
        "format": FORMAT, "created_at": time.time(), "version": package_version(),
        "config": cfg.to_dict(), **info,
    }  # fmt: skip
    head = json.dumps(header, sort_keys=True, allow_nan=True).encode()
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **arrays)
    body = _LEN.pack(len(head)) + head + buf.getvalue()
    return MAGIC + hashlib.sha256(body).digest() + body


def write_model(path: Path, data: bytes) -> str:
    """Write a model file's bytes atomically; returns its id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return decode_model(data, str(path)).id


def decode_model(data: bytes, where: str) -> ModelFile:
    """A model file from its bytes; :class:`ModelFileError` naming ``where`` and the fault."""
    if len(data) < _HEAD or data[: len(MAGIC)] != MAGIC:
        msg = f"{where}: not a forecaster model file"
        raise ModelFileError(msg)
    digest, body = data[len(MAGIC) : len(MAGIC) + 32], data[len(MAGIC) + 32 :]
    if hashlib.sha256(body).digest() != digest:
        msg = f"{where}: damaged model file (its content does not match its digest)"
        raise ModelFileError(msg)
    (n,) = _LEN.unpack_from(body, 0)
    try:
        header, arrays = json.loads(body[_LEN.size : _LEN.size + n]), _npz(body[_LEN.size + n :])
    except Exception as exc:  # every decoding failure is the same fault to the user
        msg = f"{where}: damaged model file: {exc}"
        raise ModelFileError(msg) from exc
    fmt = header.get("format") if isinstance(header, dict) else None
    if fmt != FORMAT:  # a later format, or JSON that is not a header
        msg = f"{where}: model file format {fmt!r} is not {FORMAT}"
        raise ModelFileError(msg)
    return ModelFile(digest.hex()[:16], header, arrays)


def _npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: np.asarray(npz[k]) for k in npz.files}


def read_model(path: Path) -> ModelFile:
    """Read a model file; :class:`ModelFileError` naming the path when it is missing or bad."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        msg = f"{path}: cannot read the model file: {exc.strerror or exc}"
        raise ModelFileError(msg) from exc
    return decode_model(data, str(path))


def check_config(model: ModelFile, cfg: ForecasterConfig, where: str) -> None:
    """Raise :class:`ModelFileError` when ``cfg`` cannot start from the file.

    The configs must agree on every key that shapes the state
    (:data:`forecaster.transfer.STRUCTURE`); the message names each one that differs.
    """
    try:
        trained = model.config
    except (ValueError, TypeError) as exc:
        msg = f"{where}: the file's model config is not valid here: {exc}"
        raise ModelFileError(msg) from exc
    diff = structure_mismatch(trained, cfg)
    if diff:
        msg = f"{where}: the model was trained for another config (file != this one: "
        msg += f"{'; '.join(diff)})"
        raise ModelFileError(msg)


def start_state(model: ModelFile, cfg: ForecasterConfig, where: str) -> dict[str, np.ndarray]:
    """The file's state, checked to start models of ``cfg`` (:class:`ModelFileError` if not)."""
    check_config(model, cfg, where)
    try:
        warm_start(cfg, model.arrays)
    except ValueError as exc:
        msg = f"{where}: {exc}"
        raise ModelFileError(msg) from exc
    return model.arrays
