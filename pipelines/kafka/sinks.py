"""Forecasts, anomalies and dead letters to their topics, through a kafka-python producer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.partitioner import DefaultPartitioner

from pipelines.engine.batches import ForecastBatch
from pipelines.engine.encode import encode_dead_letter
from pipelines.engine.ports import SinkError
from pipelines.engine.records import Rejected
from pipelines.kafka.options import KafkaSettings, producer_options


class DeliveryError(SinkError):
    """The producer could not deliver messages; nothing after them is committed."""


def make_producer(cfg: KafkaSettings, acks: int | str = 1) -> KafkaProducer:
    """A producer that waits for the leader's acknowledgement (``acks``) and retries."""
    tuned: dict[str, Any] = dict(
        acks=acks, linger_ms=cfg.linger_ms, batch_size=256 * 1024,
        max_request_size=cfg.max_message_bytes,
        # Retried until delivery_timeout_ms, so a short broker outage only delays a flush.
        delivery_timeout_ms=cfg.delivery_timeout_ms, max_block_ms=cfg.delivery_timeout_ms,
        # kafka-python requires delivery_timeout_ms > linger_ms + request_timeout_ms.
        request_timeout_ms=min(30_000, max(500, (cfg.delivery_timeout_ms - cfg.linger_ms) // 2)),
        max_in_flight_requests_per_connection=1,  # retries keep the order of a partition
    )  # fmt: skip
    return KafkaProducer(**producer_options(cfg, **tuned))


class Producing:
    """Sends through a producer and remembers whether any send failed."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self.producer, self.topic = producer, topic
        self._timeout = producer.config["delivery_timeout_ms"] / 1000.0
        self._failures: list[BaseException] = []
        self._note = self._failures.append

    def send(self, key: bytes | None, value: bytes | None, partition: int | None = None) -> None:
        """Send one record (``value`` None: a tombstone); a failure surfaces at :meth:`flush`."""
        try:
            future = self.producer.send(self.topic, key=key, value=value, partition=partition)
        except KafkaError as exc:  # no metadata within max_block_ms, a record too large
            msg = f"could not send to {self.topic!r}: {exc!r}"
            raise DeliveryError(msg) from exc
        future.add_errback(self._note)

    def flush(self) -> None:
        """Block until every record sent is acknowledged; raise :class:`DeliveryError` if not."""
        try:
            self.producer.flush(timeout=self._timeout)
        except KafkaError as exc:
            msg = f"messages to {self.topic!r} were not delivered in time: {exc!r}"
            raise DeliveryError(msg) from exc
        if self._failures:
            first, n = self._failures[0], len(self._failures)
            self._failures.clear()
            msg = f"{n} message(s) to {self.topic!r} were not delivered: {first!r}"
            raise DeliveryError(msg)

    def close(self) -> None:
        self.flush()


class KafkaForecastSink(Producing):
    """Forecasts to the output topic, keyed by series.

    Each series' partition is the default partitioner's choice (murmur2 of the key, as
    every Kafka client computes it), worked out once per series rather than per message.
    """

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        super().__init__(producer, topic)
        self._partitions: list[int] = []
        self._of_key: dict[bytes, int] = {}
        self._partitioner = DefaultPartitioner()

    def write(self, batch: ForecastBatch) -> None:
        if not len(batch):
            return
        messages = batch.messages
        try:
            parts = sorted(self.producer.partitions_for(self.topic))
        except KafkaError as exc:
            msg = f"no partitions of {self.topic!r}: {exc!r}"
            raise DeliveryError(msg) from exc
        if parts != self._partitions:  # first use, or the topic grew
            self._partitions, self._of_key = parts, {}
        of_key, send = self._of_key, self.send
        for key, value in messages:
            part = of_key.get(key)
            if part is None:
                part = of_key[key] = self._partitioner(key, parts, parts)
            send(key, value, part)


class KafkaAnomalySink(Producing):
    """Flagged events only to the anomaly topic, keyed by series (see :mod:`.encode`)."""

    def write(self, batch: ForecastBatch) -> None:
        for key, value in batch.anomaly_messages:
            self.send(key, value)


class KafkaDeadLetterSink(Producing):
    """Rejected records to the dead-letter topic, with their reason and origin."""

    def __init__(self, producer: KafkaProducer, topic: str, max_bytes: int) -> None:
        super().__init__(producer, topic)
        self.max_bytes = max_bytes

    def write(self, rejected: Sequence[Rejected]) -> None:
        for rej in rejected:
            self.send(*encode_dead_letter(rej, self.max_bytes))
