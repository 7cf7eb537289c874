"""Checkpoints kept in a compacted Kafka topic, so a partition's state needs no shared disk.

Each input partition's checkpoint is a set of records on one partition of the state
topic (input partition p on state partition p mod N), keyed by group, input topic and
partition:

- ``<group>/<topic>/<partition>/chunk/<slot>/<index>``: the model snapshot in pieces that
  fit the broker's message size, each headed by the checkpoint's id and its place;
- ``<group>/<topic>/<partition>/manifest``: written last, once every chunk is
  acknowledged. It names the checkpoint's id, slot, chunk count, size and SHA-256, the
  next offset and the model config. Nothing is read without it.

Chunks alternate between two slots: a checkpoint is written into the slot the current
manifest does not point at, so a writer that dies mid-write leaves the last complete
checkpoint whole. Compaction (``cleanup.policy=compact``) keeps the latest record of each
key, and chunk indices a slot no longer uses get tombstones, so the topic holds about
two checkpoints per partition. A reader applies the same rule (the latest record of each
key wins, a tombstone deletes), so a topic not compacted yet reads the same.

Both clients take the ``[kafka]`` options (:mod:`pipelines.kafka.options`); the producer
waits for every in-sync replica (``acks=all``) before a checkpoint counts as saved.
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from pipelines.engine.checkpoint import Checkpoint, CheckpointError
from pipelines.kafka.options import KafkaSettings, client_options, consumer_options
from pipelines.kafka.producers import DeliveryError, KafkaPythonProducer, make_producer
from pipelines.kafka.sinks import Producing

log = logging.getLogger(__name__)

FORMAT = 1
CHUNK_MAGIC = b"FCHUNK\x00\x01"
CHUNK_HEAD = struct.Struct(">16sII")  # checkpoint id, chunk index, chunk count
_FIELDS = frozenset({"format", "group", "topic", "partition", "id", "slot", "chunks", "bytes",
                     "sha256", "next_offset", "model_config", "written_at"})  # fmt: skip
# Room under the broker's message size for the key and the record and request framing.
FRAMING_BYTES = 4096


class StateUnavailable(RuntimeError):
    """The state topic could not be read (the broker is away): not a damaged checkpoint."""


@dataclass(frozen=True)
class StateTopic:
    """Where the checkpoints go: the topic, the consumer group they belong to, chunk size."""

    topic: str
    group: str
    max_message_bytes: int = 1_000_000
    read_timeout_s: float = 60.0

    @property
    def chunk_bytes(self) -> int:
        """The snapshot bytes one chunk carries."""
        return self.max_message_bytes - FRAMING_BYTES - CHUNK_HEAD.size - len(CHUNK_MAGIC)


@dataclass
class _Known:
    """What this store knows of a partition's records: the live slot and chunks per slot."""

    slot: int = 1  # the next checkpoint goes to the other one, 0
    used: tuple[int, int] = (0, 0)  # chunk indices in use (not tombstoned) in each slot
    manifest: bytes | None = None  # the latest manifest read (kept when set aside)
    bad: int = 0  # manifests set aside so far


class KafkaStateStore:
    """Checkpoints in a compacted topic (:class:`~pipelines.engine.checkpoint.StateStore`)."""

    def __init__(
        self, producer: KafkaPythonProducer, consumer: KafkaConsumer, where: StateTopic
    ) -> None:
        self.producer, self.consumer, self.state = producer, consumer, where
        self.topic = where.topic
        self._group = quote(where.group, safe="")  # a "/" in a group id cannot fake a key
        self._known: dict[tuple[str, int], _Known] = {}
        self._out = Producing(producer, where.topic)

    # --- keys ---------------------------------------------------------------------
    def prefix(self, topic: str, partition: int) -> bytes:
        """What every key of a partition's checkpoint starts with."""
        return f"{self._group}/{topic}/{partition}/".encode()

    def manifest_key(self, topic: str, partition: int) -> bytes:
        """The key of the partition's manifest (one per partition: compaction keeps the last)."""
        return self.prefix(topic, partition) + b"manifest"

    def chunk_key(self, topic: str, partition: int, slot: int, index: int) -> bytes:
        """The key of a chunk: a newer checkpoint's chunk in the same place replaces it."""
        return self.prefix(topic, partition) + f"chunk/{slot}/{index}".encode()

    def state_partition(self, topic: str, partition: int) -> int:
        """The state topic's partition holding every record of the input partition's state.

        Input partition p goes to state partition p mod N: with at least as many state
        partitions as input partitions, a restore reads only its own partition's records.
        """
        try:
            parts = sorted(self.producer.partitions_for(self.topic))
        except DeliveryError as exc:
            msg = f"state topic {self.topic!r}: no partitions: {exc!r}"
            raise StateUnavailable(msg) from exc
        if not parts:
            msg = f"state topic {self.topic!r}: no such topic (create it: see the README)"
            raise StateUnavailable(msg)
        return int(parts[partition % len(parts)])

    def where(self, topic: str, partition: int) -> str:
        """The topic and partition, for messages."""
        return f"state topic {self.topic!r} ({topic} partition {partition})"

    # --- writing --------------------------------------------------------------------
    def save_all(self, ckpts: Sequence[Checkpoint]) -> None:
        """Chunks (and tombstones) first, acknowledged; then the manifests, acknowledged.

        A manifest is sent only once every chunk it names is on all in-sync replicas, so
        a reader never finds a manifest whose chunks were lost.
        """
        manifests = []
        for ckpt in ckpts:
            manifests.append(self._send_chunks(ckpt))
        self._flush()
        for ckpt, (part, value, _, _) in zip(ckpts, manifests, strict=True):
            self._send(self.manifest_key(ckpt.topic, ckpt.partition), value, part)
        self._flush()
        for ckpt, (_, value, slot, n) in zip(ckpts, manifests, strict=True):
            known = self._known.setdefault((ckpt.topic, ckpt.partition), _Known())
            used = list(known.used)
            used[slot] = n
            known.slot, known.used, known.manifest = slot, (used[0], used[1]), value

    def _send_chunks(self, ckpt: Checkpoint) -> tuple[int, bytes, int, int]:
        tp = (ckpt.topic, ckpt.partition)
        known = self._known.setdefault(tp, _Known())
        slot = 1 - known.slot
        part = self.state_partition(*tp)
        size = self.state.chunk_bytes
        data = memoryview(ckpt.snapshot)
        n = max(1, -(-len(data) // size))
        ident = uuid.uuid4().bytes
        for i in range(n):
            head = CHUNK_MAGIC + CHUNK_HEAD.pack(ident, i, n)
            self._send(self.chunk_key(*tp, slot, i), head + data[i * size : (i + 1) * size], part)
        for i in range(n, known.used[slot]):  # left from the slot's previous checkpoint
            self._send(self.chunk_key(*tp, slot, i), None, part)
        manifest = json.dumps({
            "format": FORMAT, "group": self.state.group, "topic": ckpt.topic,
            "partition": ckpt.partition, "id": ident.hex(), "slot": slot, "chunks": n,
            "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "next_offset": ckpt.next_offset, "model_config": ckpt.model_config,
            "written_at": ckpt.written_at, "model_id": ckpt.model_id,
        }).encode()  # fmt: skip
        return part, manifest, slot, n

    def _send(self, key: bytes, value: bytes | memoryview | None, part: int) -> None:
        self._out.send(key, bytes(value) if isinstance(value, memoryview) else value, part)

    def _flush(self) -> None:
        self._out.flush()  # a DeliveryError: the loop goes back to the last checkpoint

    # --- reading --------------------------------------------------------------------
    def read(self, topic: str, partition: int) -> dict[bytes, bytes]:
        """The latest value of every key of the partition's state (tombstones applied)."""
        prefix = self.prefix(topic, partition)
        tp = TopicPartition(self.topic, self.state_partition(topic, partition))
        latest: dict[bytes, bytes] = {}
        try:
            self.consumer.assign([tp])
            end = self.consumer.end_offsets([tp])[tp]
            self.consumer.seek_to_beginning(tp)
            deadline = time.monotonic() + self.state.read_timeout_s
            while self.consumer.position(tp) < end:
                if time.monotonic() > deadline:
                    msg = f"state topic {self.topic!r}: not read to offset {end} in time"
                    raise StateUnavailable(msg)
                for recs in self.consumer.poll(timeout_ms=200).values():
                    for r in recs:
                        if r.offset >= end or r.key is None or not r.key.startswith(prefix):
                            continue
                        if r.value is None:
                            latest.pop(r.key, None)
                        else:
                            latest[r.key] = r.value
        except KafkaError as exc:
            msg = f"state topic {self.topic!r} could not be read: {exc!r}"
            raise StateUnavailable(msg) from exc
        return latest

    def load(self, topic: str, partition: int) -> Checkpoint | None:
        """The checkpoint the latest manifest names, checked chunk by chunk against it."""
        latest = self.read(topic, partition)
        known = self._known[(topic, partition)] = self._slots(topic, partition, latest)
        manifest = latest.get(self.manifest_key(topic, partition))
        known.manifest = manifest
        if manifest is None:
            return None
        meta = self._manifest(topic, partition, manifest)
        slot, n, ident = int(meta["slot"]), int(meta["chunks"]), bytes.fromhex(meta["id"])
        parts = []
        for i in range(n):
            value = latest.get(self.chunk_key(topic, partition, slot, i))
            if value is None:
                self._bad(topic, partition, f"chunk {i} of {n} (slot {slot}) is missing")
            head = len(CHUNK_MAGIC) + CHUNK_HEAD.size
            if len(value) < head or not value.startswith(CHUNK_MAGIC):
                self._bad(topic, partition, f"chunk {i} of {n} is not a checkpoint chunk")
            got = CHUNK_HEAD.unpack_from(value, len(CHUNK_MAGIC))
            if got != (ident, i, n):
                self._bad(topic, partition, f"chunk {i} of {n} belongs to checkpoint "
                          f"{got[0].hex()} (chunk {got[1]} of {got[2]}), not to "
                          f"{ident.hex()}")  # fmt: skip
            parts.append(value[head:])
        snapshot = b"".join(parts)
        if len(snapshot) != int(meta["bytes"]):
            self._bad(topic, partition, f"the chunks hold {len(snapshot)} bytes, the manifest "
                      f"says {meta['bytes']} (a truncated chunk set)")  # fmt: skip
        if hashlib.sha256(snapshot).hexdigest() != meta["sha256"]:
            self._bad(topic, partition, "the chunks' SHA-256 differs from the manifest's")
        known.slot = slot
        return Checkpoint(topic, partition, int(meta["next_offset"]), meta["model_config"],
                          float(meta["written_at"]), snapshot, meta.get("model_id"))  # fmt: skip

    def _slots(self, topic: str, partition: int, latest: dict[bytes, bytes]) -> _Known:
        used = [0, 0]
        for key in latest:
            rest = key[len(self.prefix(topic, partition)) :].split(b"/")
            if len(rest) == 3 and rest[0] == b"chunk" and rest[1] in (b"0", b"1"):
                slot = int(rest[1])
                used[slot] = max(used[slot], int(rest[2]) + 1)
        bad = sum(1 for k in latest if k.startswith(self.prefix(topic, partition) + b"bad/"))
        return _Known(used=(used[0], used[1]), bad=bad)

    def _manifest(self, topic: str, partition: int, value: bytes) -> dict[str, Any]:
        try:
            meta: dict[str, Any] = json.loads(value)
            missing = sorted(_FIELDS - set(meta))
            owner = (meta["group"], meta["topic"], int(meta["partition"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self._bad(topic, partition, f"damaged manifest: {exc!r}")
        if missing:
            self._bad(topic, partition, f"damaged manifest: no {', '.join(missing)}")
        if meta["format"] != FORMAT:
            self._bad(topic, partition, f"manifest format {meta['format']!r}, not {FORMAT}")
        if owner != (self.state.group, topic, partition):
            self._bad(topic, partition, f"the manifest is of group {owner[0]!r}, {owner[1]} "
                      f"partition {owner[2]}")  # fmt: skip
        return meta

    def _bad(self, topic: str, partition: int, why: str) -> NoReturn:
        msg = f"{self.where(topic, partition)}: {why}"
        raise CheckpointError(msg)

    def set_aside(self, topic: str, partition: int) -> str:
        """Copy the unusable manifest to ``.../bad/<n>`` and delete it (a tombstone).

        Its chunks stay until the next checkpoints of the partition supersede them.
        """
        known = self._known.setdefault((topic, partition), _Known())
        part = self.state_partition(topic, partition)
        known.bad += 1
        key = self.prefix(topic, partition) + f"bad/{known.bad}".encode()
        if known.manifest is not None:
            self._send(key, known.manifest, part)
        self._send(self.manifest_key(topic, partition), None, part)
        self._flush()
        known.manifest = None
        return f"key {key.decode()!r} of state topic {self.topic!r}"

    def close(self) -> None:
        """Release both clients (every checkpoint was flushed when it was saved)."""
        try:
            self.producer.close()
        finally:
            self.consumer.close(autocommit=False)


def make_state_store(cfg: KafkaSettings, topic: str) -> KafkaStateStore:
    """The store of ``[kafka] group_id``'s checkpoints in ``topic``, on ``[kafka]``'s cluster."""
    producer = KafkaPythonProducer(make_producer(cfg, acks="all"))
    consumer = KafkaConsumer(**consumer_options(
        cfg, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
        max_partition_fetch_bytes=max(8 << 20, cfg.max_message_bytes + (64 << 10)),
        receive_message_max_bytes=2**31 - 1,
    ))  # fmt: skip
    return KafkaStateStore(producer, consumer,
                           StateTopic(topic, cfg.group_id, cfg.max_message_bytes))  # fmt: skip


def topic_settings_problem(topic: str, error_code: int, settings: dict[str, str]) -> str | None:
    """What is wrong with the state topic as the broker describes it (None: nothing).

    Examples
    --------
    >>> topic_settings_problem("state", 0, {"cleanup.policy": "compact"}) is None
    True
    >>> topic_settings_problem("state", 0, {"cleanup.policy": "delete"})[:60]
    "state topic 'state' has cleanup.policy=delete, not compact: "
    >>> topic_settings_problem("state", 3, {})[:50]
    "state topic 'state' does not exist (broker error 3"
    """
    if error_code:
        return (f"state topic {topic!r} does not exist (broker error {error_code}): create it "
                "with cleanup.policy=compact before the first checkpoint (README)")  # fmt: skip
    policy = settings.get("cleanup.policy", "")
    if "compact" not in policy.split(","):
        return (f"state topic {topic!r} has cleanup.policy={policy or 'unset'}, not compact: "
                "it grows without bound, and retention deletes the checkpoints of partitions "
                "idle for longer than retention.ms (README)")  # fmt: skip
    return None


def check_state_topic(cfg: KafkaSettings, topic: str) -> str | None:
    """Ask the brokers for the state topic's settings; a problem, or None.

    Brokers before 0.11 have no admin API to ask: then None, and the README's settings
    are the user's to apply.
    """
    try:
        from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

        admin = KafkaAdminClient(**client_options(cfg))
        try:
            found = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        finally:
            admin.close()
        [resource] = [res for response in found for res in response.resources]
        settings = {str(entry[0]): str(entry[1]) for entry in resource[4]}
    except Exception as exc:  # no admin API (Kafka 0.9, 0.10), or not authorised to ask
        log.info("the state topic's settings could not be checked: %r", exc)
        return None
    return topic_settings_problem(topic, int(resource[0]), settings)
