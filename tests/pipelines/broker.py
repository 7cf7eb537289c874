"""The Kafka broker of the integration tests, and helpers that need only a bootstrap address.

``FORECASTER_TEST_BOOTSTRAP=host:port`` (and ``FORECASTER_TEST_API_VERSION``, default
"auto") points the tests at any broker; otherwise the local one is started with
``deploy/kafka/broker`` on free ports and stopped at the end. Nothing here relies on
the local broker's version: topics are created with the admin client when the broker
has one, and by auto-creation otherwise.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipelines.kafka import local as localkafka
from pipelines.kafka.options import KafkaSettings, client_options

PARTITIONS = 4


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    api_version: str  # as in the settings: "auto" or "0.9"
    local: localkafka.LocalBroker | None = None  # the bundled one, when it is that

    def client_opts(self) -> dict[str, Any]:
        """The options every client of the pipelines gets (pipelines.kafka.options)."""
        cfg = KafkaSettings(bootstrap_servers=self.bootstrap, api_version=self.api_version)
        return client_options(cfg)

    def kafka_settings(self, group: str) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap, "api_version": self.api_version,
                "group_id": group, "poll_timeout_ms": 100, "session_timeout_ms": 6000,
                "heartbeat_interval_ms": 1000}  # fmt: skip

    def new_topic(self, name: str, config: dict[str, str] | None = None) -> str:
        """A fresh topic with PARTITIONS partitions (and topic settings ``config``)."""
        topic = f"{name}-{uuid.uuid4().hex[:8]}"
        try:
            from kafka.admin import KafkaAdminClient, NewTopic

            admin = KafkaAdminClient(**self.client_opts())
            admin.create_topics([NewTopic(topic, PARTITIONS, 1, topic_configs=config or {})])
            admin.close()
        except Exception:  # no admin API (0.9): the broker creates it on first use
            if config and self.local is not None:  # or its topic tool, with settings
                self.local.create_topic(topic, PARTITIONS, config)
            prod = KafkaProducer(**self.client_opts())
            deadline = time.monotonic() + 20
            while not prod.partitions_for(topic) and time.monotonic() < deadline:
                time.sleep(0.1)
            prod.close()
        return topic

    def produce(self, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
        # One request in flight: a retry (say, just after a broker restart) can then
        # never land a batch after a later one, which would make its events late.
        prod = KafkaProducer(**self.client_opts(), linger_ms=5, batch_size=256 * 1024,
                             max_in_flight_requests_per_connection=1)  # fmt: skip
        for key, value in messages:
            prod.send(topic, key=key, value=value)
        prod.flush()
        prod.close()

    def produce_to_partition(self, topic: str, messages: list[tuple[bytes | None, bytes]],
                             partition: int) -> None:  # fmt: skip
        prod = KafkaProducer(**self.client_opts(), linger_ms=5)
        for key, value in messages:
            prod.send(topic, key=key, value=value, partition=partition)
        prod.flush()
        prod.close()

    def read_all(self, topic: str, expect: int | None = None) -> list[Any]:
        """Every record of ``topic`` up to its end offsets (at least ``expect`` records)."""
        deadline = time.monotonic() + 120
        while True:
            out = self._read_to_end(topic)
            if expect is None or len(out) >= expect or time.monotonic() > deadline:
                return out
            time.sleep(0.2)

    def _read_to_end(self, topic: str) -> list[Any]:
        cons = KafkaConsumer(**self.client_opts(), enable_auto_commit=False,
                             auto_offset_reset="earliest", group_id=None,
                             receive_message_max_bytes=2**31 - 1)  # fmt: skip
        parts = cons.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = cons.end_offsets(tps)
        cons.assign(tps)
        cons.seek_to_beginning(*tps)
        out: list[Any] = []
        deadline = time.monotonic() + 60
        while any(cons.position(tp) < ends[tp] for tp in tps):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for recs in cons.poll(timeout_ms=200).values():
                out.extend(recs)
        cons.close()
        return out

    def committed(self, topic: str, group: str) -> dict[int, int | None]:
        cons = KafkaConsumer(**self.client_opts(), group_id=group, enable_auto_commit=False)
        parts = cons.partitions_for_topic(topic) or set()
        out = {p: cons.committed(TopicPartition(topic, p)) for p in sorted(parts)}
        cons.close()
        return out

    def end_offsets(self, topic: str) -> dict[int, int]:
        cons = KafkaConsumer(**self.client_opts(), group_id=None)
        parts = cons.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = cons.end_offsets(tps)
        cons.close()
        return {tp.partition: off for tp, off in ends.items()}


class EndOffsets:
    """The number of records in a topic, read often through one client."""

    def __init__(self, broker: Broker, topic: str) -> None:
        self.consumer = KafkaConsumer(**broker.client_opts(), group_id=None)
        self.tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    def total(self) -> int:
        return sum(self.consumer.end_offsets(self.tps).values())


def local_broker(run_dir: Path) -> Iterator[Broker]:
    """The broker of ``FORECASTER_TEST_BOOTSTRAP``, else the bundled one for the session."""
    given = os.environ.get("FORECASTER_TEST_BOOTSTRAP")
    if given:
        yield Broker(given, os.environ.get("FORECASTER_TEST_API_VERSION", "auto"))
        return
    local = localkafka.LocalBroker(run_dir, PARTITIONS)
    try:
        yield Broker(local.start(), localkafka.LOCAL_API_VERSION, local)
    finally:
        local.stop()
