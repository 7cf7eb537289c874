"""Forecasts, anomalies and dead letters to their topics, through the service's producer."""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.engine.batches import ForecastBatch
from pipelines.engine.encode import encode_dead_letter
from pipelines.engine.records import Rejected
from pipelines.kafka.producers import DeliveryError, OutProducer


class Producing:
    """Sends to one topic through a producer and remembers whether any send failed."""

    def __init__(self, producer: OutProducer, topic: str) -> None:
        self.producer, self.topic = producer, topic
        self._timeout = producer.delivery_timeout_s
        self._failures: list[BaseException] = []

    def send(self, key: bytes | None, value: bytes | None, partition: int | None = None) -> None:
        """Send one record (``value`` None: a tombstone); a failure surfaces at :meth:`flush`."""
        self.producer.send(self.topic, key, value, partition, self._failures)

    def send_keyed(self, messages: list[tuple[bytes, bytes]]) -> None:
        """Send keyed records, each to its key's partition (:meth:`OutProducer.send_keyed`)."""
        self.producer.send_keyed(self.topic, messages, self._failures)

    def flush(self) -> None:
        """Block until every record sent is acknowledged; raise :class:`DeliveryError` if not."""
        try:
            self.producer.flush(self._timeout)
        except DeliveryError as exc:
            # Everything since the last checkpoint is produced again: failures noted so far
            # belong to this attempt, not to the next one.
            self._failures.clear()
            msg = f"messages to {self.topic!r} were not delivered in time: {exc}"
            raise DeliveryError(msg) from exc
        if self._failures:
            first, n = self._failures[0], len(self._failures)
            self._failures.clear()
            msg = f"{n} message(s) to {self.topic!r} were not delivered: {first!r}"
            raise DeliveryError(msg)

    def close(self) -> None:
        self.flush()


class KafkaForecastSink(Producing):
    """Forecasts to the output topic, keyed by series, each to its key's partition.

    The partition is the default partitioner's choice (murmur2 of the key, as every
    Kafka client computes it): the producer works it out (:meth:`OutProducer.send_keyed`).
    """

    def write(self, batch: ForecastBatch) -> None:
        if len(batch):
            self.send_keyed(batch.messages)


class KafkaAnomalySink(Producing):
    """Flagged events only to the anomaly topic, keyed by series (see :mod:`.encode`)."""

    def write(self, batch: ForecastBatch) -> None:
        for key, value in batch.anomaly_messages:
            self.send(key, value)


class KafkaDeadLetterSink(Producing):
    """Rejected records to the dead-letter topic, with their reason and origin."""

    def __init__(self, producer: OutProducer, topic: str, max_bytes: int) -> None:
        super().__init__(producer, topic)
        self.max_bytes = max_bytes

    def write(self, rejected: Sequence[Rejected]) -> None:
        for rej in rejected:
            self.send(*encode_dead_letter(rej, self.max_bytes))
