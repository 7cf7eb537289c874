"""Issue 17: checkpoints in a compacted Kafka topic, against the real broker.

A checkpoint comes back whole from another store (another machine); it is split into
chunks under the broker's message size; a manifest that was never written hides its
chunks; superseded chunks get tombstones; and a truncated chunk set, a manifest
naming missing chunks and another model's checkpoint each stop the loop naming the
topic, the partition and the mismatch, or under ``start_fresh`` are set aside and counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
from kafka import KafkaProducer

from pipelines.engine.checkpoint import Checkpoint, CheckpointError
from pipelines.kafka.options import KafkaSettings
from pipelines.kafka.state import KafkaStateStore, make_state_store
from pipelines.service.collector import runner_families
from tests.pipelines.broker import Broker
from tests.pipelines.engine.test_bad_checkpoints import MSGS, run_once_through
from tests.pipelines.engine.test_loop import CLOCK
from tests.pipelines.streams import MODEL

pytestmark = pytest.mark.kafka
TP = ("in", 0)
SMALL = 10_000  # the broker's message size as the store sees it: several chunks per model


class Stores:
    """Stores of one group on one fresh compacted state topic, each like a new machine."""

    def __init__(self, broker: Broker, name: str) -> None:
        self.broker = broker
        self.topic = broker.new_topic("state", {"cleanup.policy": "compact"})
        self.cfg = KafkaSettings(bootstrap_servers=broker.bootstrap,
                                 api_version=broker.api_version, group_id=f"g-{name}",
                                 max_message_bytes=SMALL)  # fmt: skip
        self.made: list[KafkaStateStore] = []

    def new(self) -> KafkaStateStore:
        store = make_state_store(self.cfg, self.topic)
        self.made.append(store)
        return store

    def write_raw(self, key: bytes, value: bytes | None) -> None:
        """A record put there by something else than a store (damage, another writer)."""
        part = self.made[0].state_partition(*TP)
        prod = KafkaProducer(**self.broker.client_opts())
        prod.send(self.topic, key=key, value=value, partition=part)
        prod.flush()
        prod.close()

    def close(self) -> None:
        for store in self.made:
            store.close()


@pytest.fixture
def stores(broker: Broker, request: pytest.FixtureRequest) -> Iterator[Stores]:
    made = Stores(broker, request.node.name.replace("[", "-").replace("]", "").replace(" ", "-"))
    yield made
    made.close()


def manifest(store: KafkaStateStore) -> dict[str, object]:
    value = store.read(*TP)[store.manifest_key(*TP)]
    return dict(json.loads(value))


def test_a_checkpoint_goes_in_chunks_and_another_machine_restores_it_whole(
    stores: Stores,
) -> None:
    first = run_once_through(stores.new(), MODEL)
    assert first.stats.checkpoints == 1
    snapshot = first.tasks[TP].model.snapshot()
    other = stores.new()  # no memory of the first one's writes
    ckpt = other.load(*TP)
    assert ckpt is not None
    assert ckpt.snapshot == snapshot and ckpt.next_offset == len(MSGS)
    meta = manifest(other)
    assert int(str(meta["chunks"])) == -(-len(snapshot) // other.state.chunk_bytes) > 1
    for key, value in other.read(*TP).items():  # every record fits the message size
        assert len(key) + len(value) < SMALL
    again = run_once_through(other, MODEL)
    assert again.stats.restored == 1 and again.stats.restore_seconds > 0
    # Exported as a summary: restores counted, their seconds summed.
    [restore] = [f for f in runner_families(again, 0.0)
                 if f.name == "forecaster_checkpoint_restore_seconds"]  # fmt: skip
    samples = {s.name: s.value for s in restore.samples}
    name = "forecaster_checkpoint_restore_seconds"
    assert samples == {f"{name}_count": 1, f"{name}_sum": again.stats.restore_seconds}


def test_superseded_chunks_get_tombstones_and_slots_alternate(stores: Stores) -> None:
    store = stores.new()
    big = Checkpoint("in", 0, 10, {"m": 1}, CLOCK, bytes(range(256)) * 120)  # 30,720 bytes
    store.save_all([big])
    n = int(str(manifest(store)["chunks"]))
    assert n > 3 and manifest(store)["slot"] == 0
    store.save_all([replace(big, next_offset=20, snapshot=b"small")])
    assert manifest(store)["slot"] == 1
    store.save_all([replace(big, next_offset=30, snapshot=b"smaller")])
    assert manifest(store)["slot"] == 0
    # The big checkpoint's chunks 1..n-1 in slot 0 are deleted; each slot holds one chunk.
    live = [store.manifest_key(*TP), store.chunk_key(*TP, 0, 0), store.chunk_key(*TP, 1, 0)]
    assert sorted(store.read(*TP)) == sorted(live)
    ckpt = stores.new().load(*TP)
    assert ckpt is not None and (ckpt.next_offset, ckpt.snapshot) == (30, b"smaller")


def test_the_model_file_a_state_started_from_is_restored_with_it(stores: Stores) -> None:
    store = stores.new()
    store.save_all([Checkpoint("in", 0, 10, {"m": 1}, CLOCK, b"s" * 5_000, "0123456789abcdef"),
                    Checkpoint("in", 1, 4, {"m": 1}, CLOCK, b"t" * 100)])  # fmt: skip
    other = stores.new()
    got, cold = other.load("in", 0), other.load("in", 1)
    assert got is not None and got.model_id == "0123456789abcdef" and got.snapshot == b"s" * 5_000
    assert cold is not None and cold.model_id is None


def test_chunks_without_their_manifest_are_never_read(stores: Stores) -> None:
    store = stores.new()
    whole = Checkpoint("in", 0, 10, {"m": 1}, CLOCK, b"a" * 20_000)
    store.save_all([whole])
    # A writer dies after its first chunk: into the other slot, so the last whole
    # checkpoint keeps its own chunks.
    torn = stores.new()
    assert torn.load(*TP) == whole
    meta = manifest(torn)
    torn.save_all([replace(whole, next_offset=99, snapshot=b"b" * 20_000)])  # then undone:
    stores.write_raw(torn.manifest_key(*TP), json.dumps(meta).encode())  # the old manifest
    stores.write_raw(torn.chunk_key(*TP, 1, 0), b"half a chunk")  # and a torn chunk
    assert stores.new().load(*TP) == whole


def truncate_last_chunk(stores: Stores) -> str:
    store = stores.new()
    meta = manifest(store)
    last = int(str(meta["chunks"])) - 1
    key = store.chunk_key(*TP, int(str(meta["slot"])), last)
    stores.write_raw(key, store.read(*TP)[key][:-100])
    return "a truncated chunk set"


def drop_a_chunk(stores: Stores) -> str:
    store = stores.new()
    slot = int(str(manifest(store)["slot"]))
    stores.write_raw(store.chunk_key(*TP, slot, 1), None)
    return f"chunk 1 of {manifest(store)['chunks']} \\(slot {slot}\\) is missing"


DAMAGE = {
    "truncated chunk set": (truncate_last_chunk, MODEL),
    "manifest naming missing chunks": (drop_a_chunk, MODEL),
    "another model's checkpoint": (lambda s: "differs in hidden_size", {**MODEL, "hidden_size": 9}),
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_bad_chunk_set_stops_the_loop_naming_topic_partition_and_mismatch(
    stores: Stores, kind: str
) -> None:
    damage, model = DAMAGE[kind]
    run_once_through(stores.new(), MODEL)
    message = damage(stores)
    before = stores.new().read(*TP)
    with pytest.raises(CheckpointError, match=message) as info:
        run_once_through(stores.new(), model)
    assert f"state topic {stores.topic!r} (in partition 0)" in str(info.value)
    assert "\n" not in str(info.value)
    assert stores.new().read(*TP) == before  # nothing written over it


@pytest.mark.parametrize("kind", DAMAGE)
def test_start_fresh_sets_the_manifest_aside_counts_it_and_starts_a_new_model(
    stores: Stores, kind: str
) -> None:
    damage, model = DAMAGE[kind]
    run_once_through(stores.new(), MODEL)
    damage(stores)
    bad = stores.new().read(*TP)[stores.made[0].manifest_key(*TP)]
    r = run_once_through(stores.new(), model, on_error="start_fresh")
    assert r.stats.bad_checkpoints == 1 and r.stats.restored == 0
    kept = stores.new().read(*TP)
    assert kept[stores.made[0].prefix(*TP) + b"bad/1"] == bad  # kept for inspection
    again = run_once_through(stores.new(), model, on_error="start_fresh")  # a good one since
    assert again.stats.restored == 1 and again.stats.bad_checkpoints == 0
