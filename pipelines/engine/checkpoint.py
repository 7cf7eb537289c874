"""Checkpoints: a partition's model state and its next offset, in one file, written atomically.

One file per input partition, ``<dir>/<topic>/<partition>.ckpt``: an 8-byte magic, the
length of a JSON header, the header (topic, partition, next offset, the model config,
when it was written, the id of the model file the state started from) and the model
snapshot. It is written to a temporary file, fsynced, renamed over the old one and the
folder fsynced, so a crash leaves the old checkpoint or the new one, never a mix. State
and offset in one file means they can never disagree. The folder may be shared by
several service instances (a network file system), which is how a partition's state
follows it when the group rebalances.

The loop talks to a :class:`StateStore`: this folder store, or one that keeps
checkpoints elsewhere (:mod:`pipelines.kafka.state`, a compacted Kafka topic).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

MAGIC = b"FCKPT\x00\x00\x01"
_LEN = struct.Struct(">Q")


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint file holds."""

    topic: str
    partition: int
    next_offset: int
    model_config: dict[str, Any]
    written_at: float
    snapshot: bytes
    model_id: str | None = None  # the model file the partition's model started from


class CheckpointError(ValueError):
    """A checkpoint file exists but cannot be used (names the file and why)."""


class StateStore(Protocol):
    """Where the loop keeps checkpoints: a folder, or a Kafka topic."""

    def where(self, topic: str, partition: int) -> str:
        """Where the checkpoint of ``topic``/``partition`` lives, for messages."""

    def save_all(self, ckpts: Sequence[Checkpoint]) -> None:
        """Make every checkpoint durable before returning; raise if any is not."""

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        """The latest whole checkpoint (None: there is none); :class:`CheckpointError` if bad."""

    def set_aside(self, topic: str, partition: int) -> str | Path:
        """Keep an unusable checkpoint for inspection, out of the way; say where it went."""


class CheckpointStore:
    """Checkpoints under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, topic: str, partition: int) -> Path:
        """Where the checkpoint of ``topic``/``partition`` lives."""
        return self.root / topic / f"{partition}.ckpt"

    def where(self, topic: str, partition: int) -> str:
        """The checkpoint file's path, as text."""
        return str(self.path(topic, partition))

    def save_all(self, ckpts: Sequence[Checkpoint]) -> None:
        """Each file written durably in turn."""
        for ckpt in ckpts:
            self.save(ckpt)

    def save(self, ckpt: Checkpoint) -> Path:
        """Write ``ckpt`` durably; the old file is replaced only once the new one is on disk."""
        final = self.path(ckpt.topic, ckpt.partition)
        final.parent.mkdir(parents=True, exist_ok=True)
        header = json.dumps({
            "topic": ckpt.topic, "partition": ckpt.partition, "next_offset": ckpt.next_offset,
            "model_config": ckpt.model_config, "written_at": ckpt.written_at,
            "model_id": ckpt.model_id,
        }).encode()  # fmt: skip
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            fh.write(MAGIC + _LEN.pack(len(header)) + header)
            fh.write(ckpt.snapshot)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(final)
        dir_fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return final

    def set_aside(self, topic: str, partition: int) -> Path:
        """Rename a partition's checkpoint to a free ``<name>.bad-N``; return the new path.

        A checkpoint that cannot be used is kept for inspection, never overwritten.
        """
        path = self.path(topic, partition)
        n = 1
        while (aside := path.with_name(f"{path.name}.bad-{n}")).exists():
            n += 1
        path.rename(aside)
        return aside

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        """The checkpoint of a partition, or None when it has none.

        Raises :class:`CheckpointError` for a file that is not a whole checkpoint.
        """
        path = self.path(topic, partition)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        head = len(MAGIC) + _LEN.size
        if len(data) < head or data[: len(MAGIC)] != MAGIC:
            msg = f"{path}: not a forecaster checkpoint"
            raise CheckpointError(msg)
        (n,) = _LEN.unpack_from(data, len(MAGIC))
        try:
            meta = json.loads(data[head : head + n])
            ckpt = Checkpoint(
                meta["topic"], int(meta["partition"]), int(meta["next_offset"]),
                meta["model_config"], float(meta["written_at"]), data[head + n :],
                meta.get("model_id"),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"{path}: damaged checkpoint header: {exc}"
            raise CheckpointError(msg) from exc
        if (ckpt.topic, ckpt.partition) != (topic, partition):
            msg = f"{path}: holds {ckpt.topic}/{ckpt.partition}, not {topic}/{partition}"
            raise CheckpointError(msg)
        return ckpt
