from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.engine.checkpoint import Checkpoint, CheckpointError, CheckpointStore


def ckpt(offset: int, snapshot: bytes = b"model-bytes") -> Checkpoint:
    return Checkpoint("events", 3, offset, {"horizon": 12}, 1.7e9, snapshot)


def test_save_then_load_gives_the_same_checkpoint(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    path = store.save(ckpt(42, b"\x00\x01" * 1000))
    assert path == tmp_path / "events" / "3.ckpt"
    assert store.load("events", 3) == ckpt(42, b"\x00\x01" * 1000)
    assert store.load("events", 4) is None  # no checkpoint yet: start fresh
    store.save(ckpt(43))
    assert store.load("events", 3) == ckpt(43)
    assert sorted(p.name for p in path.parent.iterdir()) == ["3.ckpt"]  # no temporary left


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[:5], "not a forecaster checkpoint"),
        (lambda b: b"garbage!" + b[8:], "not a forecaster checkpoint"),
        (lambda b: b[:30], "damaged checkpoint header"),
    ],
)
def test_a_damaged_file_is_an_error_naming_it(tmp_path: Path, damage: object, message: str) -> None:
    store = CheckpointStore(tmp_path)
    path = store.save(ckpt(7))
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    with pytest.raises(CheckpointError, match=message) as info:
        store.load("events", 3)
    assert str(path) in str(info.value)


def test_a_file_of_another_partition_is_refused(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    path = store.save(ckpt(7))
    other = store.path("events", 5)
    other.write_bytes(path.read_bytes())
    with pytest.raises(CheckpointError, match="holds events/3, not events/5"):
        store.load("events", 5)


def test_a_crash_mid_write_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    path = store.save(ckpt(7))
    # What a crash between writing the temporary file and the rename leaves behind.
    (path.parent / f".{path.name}.999.tmp").write_bytes(b"FCKPT\x00\x00\x01half")
    assert store.load("events", 3) == ckpt(7)
