"""A range of a Kafka topic as replay input, read without a consumer group (nothing committed).

Every partition of the topic is read from ``--from-offset`` (or the first offset at or
after ``--from-time``, or the beginning) up to, not including, ``--to-offset`` (or the
first offset at or after ``--to-time``, or the end when reading starts). The records are
decoded once, by the service's decoder, into one recorded partition each; the replay
then runs them through the loop exactly as it runs files. The consumer takes the same
``[kafka]`` options as the service's (:mod:`pipelines.kafka.options`), SASL and SSL
included.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.engine.decode import Decoder
from pipelines.engine.recorded import Columns, InputError, RecordedPartition
from pipelines.engine.records import Record
from pipelines.engine.times import iso_milliseconds
from pipelines.kafka.options import KafkaSettings, consumer_options


@dataclass(frozen=True)
class TopicRange:
    """Where to read: a topic on the cluster ``kafka`` reaches, and the range (offsets or times)."""

    topic: str
    kafka: KafkaSettings
    from_offset: int | None = None
    to_offset: int | None = None
    from_time: str | None = None
    to_time: str | None = None
    timeout_s: float = 60.0


def _ms(text: str, name: str) -> int:
    try:
        return iso_milliseconds(text)
    except ValueError:
        msg = f"{name} {text!r} is not an ISO-8601 time"
        raise InputError(msg) from None


def _bound(consumer: Any, tps: list[Any], offset: int | None, when: str | None,
           name: str, default: dict[Any, int]) -> dict[Any, int]:  # fmt: skip
    ends = consumer.end_offsets(tps)
    if offset is not None:  # within what the partition holds
        begins = consumer.beginning_offsets(tps)
        return {tp: max(begins[tp], min(offset, ends[tp])) for tp in tps}
    if when is None:
        return default
    found = consumer.offsets_for_times(dict.fromkeys(tps, _ms(when, name)))
    return {tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in tps}


def read_topic(
    rng: TopicRange, features: Sequence[str] = ()
) -> tuple[list[RecordedPartition], float]:
    """Each partition's records in the range, decoded; returns them and the seconds it took."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    start = time.perf_counter()
    where = rng.kafka.bootstrap_servers
    try:
        consumer = KafkaConsumer(**consumer_options(
            rng.kafka, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
        ))  # fmt: skip
    except KafkaError as exc:
        msg = f"{where}: cannot connect to Kafka: {exc}"
        raise InputError(msg) from None
    try:
        parts = consumer.partitions_for_topic(rng.topic)
        if not parts:
            msg = f"topic {rng.topic!r} on {where}: no such topic (or no partitions)"
            raise InputError(msg)
        tps = [TopicPartition(rng.topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        first = _bound(consumer, tps, rng.from_offset, rng.from_time, "--from-time",
                       consumer.beginning_offsets(tps))  # fmt: skip
        end = _bound(consumer, tps, rng.to_offset, rng.to_time, "--to-time",
                     consumer.end_offsets(tps))  # fmt: skip
        records: dict[Any, list[Record]] = {tp: [] for tp in tps}
        for tp in tps:
            consumer.seek(tp, first[tp])
        deadline = time.monotonic() + rng.timeout_s
        todo = {tp for tp in tps if first[tp] < end[tp]}
        while todo:
            if time.monotonic() > deadline:
                msg = f"topic {rng.topic!r}: timed out reading up to offsets {end}"
                raise InputError(msg)
            for tp, recs in consumer.poll(timeout_ms=200).items():
                records[tp] += [r for r in recs if first[tp] <= r.offset < end[tp]]
            done = [tp for tp in todo if consumer.position(tp) >= end[tp]]
            if done:
                consumer.pause(*done)
                todo.difference_update(done)
    finally:
        consumer.close(autocommit=False)
    decoder = Decoder(features)
    out = []
    cols = Columns("ts", "value", "series", tuple(features))
    for tp in tps:
        if not records[tp]:
            continue
        batch = decoder.decode_batch(records[tp])
        out.append(RecordedPartition(f"{rng.topic}-{tp.partition}", rng.topic, tp.partition,
                                     batch, len(records[tp]), cols))  # fmt: skip
    if not out:
        msg = f"topic {rng.topic!r}: no records in the range {first} to {end}"
        raise InputError(msg)
    return out, time.perf_counter() - start
