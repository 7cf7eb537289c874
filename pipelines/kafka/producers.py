"""The producers the sinks write through: librdkafka's (the default) or kafka-python's.

Both sit behind one small interface (:class:`OutProducer`): ``send`` queues a record and
notes a failed delivery in the caller's list, ``send_keyed`` queues keyed records each to
its key's partition (murmur2, as every Kafka client's default partitioner), ``flush``
waits until every queued record is acknowledged, ``close`` flushes and lets go.

Why two: producing is the service's largest cost an event. kafka-python's producer took
24-36 us of CPU a forecast message in ``forecaster bench kafka``, librdkafka's
(``confluent-kafka``) about 5, for the same messages, acknowledgements and ordering.
``[kafka] producer = "kafka-python"`` keeps the pure-Python client (its ``[kafka] client``
settings then reach it unchanged). With librdkafka, the security settings of ``client``
are translated (:data:`LIBRDKAFKA_NAMES`), and ``[kafka] librdkafka`` passes any other
librdkafka property through.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.partitioner import DefaultPartitioner

from pipelines.engine.ports import SinkError
from pipelines.kafka.options import KafkaSettings, producer_options


class _OldBrokerNotices(logging.Filter):
    """Drops librdkafka's notice that the settings for a pre-0.10 broker are deprecated.

    They are set only when ``api_version`` names such a broker (the bundled local one),
    and the notice came twice per producer.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not ("CONFWARN" in text and ("api.version.request" in text
                                            or "broker.version.fallback" in text))  # fmt: skip


LIBRDKAFKA_LOG = logging.getLogger("pipelines.kafka.librdkafka")
LIBRDKAFKA_LOG.addFilter(_OldBrokerNotices())


class DeliveryError(SinkError):
    """The producer could not deliver messages; nothing after them is committed."""


class OutProducer(Protocol):
    """What the sinks need of a producer (module docstring)."""

    delivery_timeout_s: float

    def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None,
        failures: list[BaseException],
    ) -> None: ...  # fmt: skip

    def send_keyed(
        self, topic: str, messages: list[tuple[bytes, bytes]], failures: list[BaseException]
    ) -> None: ...

    def flush(self, timeout_s: float) -> None: ...

    def close(self) -> None: ...


class KafkaPythonProducer:
    """:class:`OutProducer` over a kafka-python ``KafkaProducer``."""

    def __init__(self, producer: KafkaProducer) -> None:
        self.producer = producer
        self.delivery_timeout_s = producer.config["delivery_timeout_ms"] / 1000.0
        # Each key's partition, worked out once per key and topic rather than per message
        # (kafka-python's partitioner hashes in Python): topic -> (partitions, key -> one).
        self._of_key: dict[str, tuple[list[int], dict[bytes, int]]] = {}
        self._partitioner = DefaultPartitioner()

    def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None,
        failures: list[BaseException],
    ) -> None:  # fmt: skip
        """Queue one record (``value`` None: a tombstone); a failed delivery joins ``failures``."""
        try:
            future = self.producer.send(topic, key=key, value=value, partition=partition)
        except KafkaError as exc:  # no metadata within max_block_ms, a record too large
            msg = f"could not send to {topic!r}: {exc!r}"
            raise DeliveryError(msg) from exc
        future.add_errback(failures.append)

    def send_keyed(
        self, topic: str, messages: list[tuple[bytes, bytes]], failures: list[BaseException]
    ) -> None:
        """Queue keyed records, each to its key's partition (module docstring)."""
        parts = sorted(self.partitions_for(topic))
        if not parts:
            msg = f"no partitions of {topic!r}: no such topic"
            raise DeliveryError(msg)
        known, of_key = self._of_key.get(topic, ([], {}))
        if parts != known:  # first use, or the topic grew
            of_key = {}
            self._of_key[topic] = (parts, of_key)
        send, partitioner = self.send, self._partitioner
        for key, value in messages:
            part = of_key.get(key)
            if part is None:
                part = of_key[key] = partitioner(key, parts, parts)
            send(topic, key, value, part, failures)

    def flush(self, timeout_s: float) -> None:
        """Block until every queued record is acknowledged, or raise :class:`DeliveryError`."""
        try:
            self.producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            msg = f"messages were not delivered in time: {exc!r}"
            raise DeliveryError(msg) from exc

    def partitions_for(self, topic: str) -> set[int]:
        """The topic's partitions (empty: no such topic); :class:`DeliveryError` if unknown."""
        try:
            return set(self.producer.partitions_for(topic) or ())
        except KafkaError as exc:
            msg = f"no partitions of {topic!r}: {exc!r}"
            raise DeliveryError(msg) from exc

    def close(self) -> None:
        self.producer.close()


def make_producer(cfg: KafkaSettings, acks: int | str = 1) -> KafkaProducer:
    """A kafka-python producer that waits for the leader's acknowledgement (``acks``), retrying."""
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


# kafka-python's names of the ``[kafka] client`` settings a producer needs to reach a
# secured cluster, and librdkafka's names for them.
LIBRDKAFKA_NAMES = {
    "client_id": "client.id",
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanisms",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_password": "ssl.key.password",
    "ssl_check_hostname": "ssl.endpoint.identification.algorithm",
    "compression_type": "compression.type",
    "metadata_max_age_ms": "metadata.max.age.ms",
    "request_timeout_ms": "request.timeout.ms",
    "retry_backoff_ms": "retry.backoff.ms",
    "reconnect_backoff_ms": "reconnect.backoff.ms",
    "reconnect_backoff_max_ms": "reconnect.backoff.max.ms",
    "connections_max_idle_ms": "connections.max.idle.ms",
}


def librdkafka_config(cfg: KafkaSettings, acks: int | str = 1) -> dict[str, Any]:
    """The properties of a librdkafka producer for ``[kafka]``: acknowledgements, timeouts, order.

    ``client`` settings a producer uses are translated (:data:`LIBRDKAFKA_NAMES`); one with
    no translation is refused by name (dropping a security setting would leave the
    producer unable to connect). Consumer-only settings are left out. ``librdkafka`` is applied
    last, unchanged.
    """
    from kafka import KafkaConsumer, KafkaProducer

    consumer_only = set(KafkaConsumer.DEFAULT_CONFIG) - set(KafkaProducer.DEFAULT_CONFIG)

    conf: dict[str, Any] = {
        "bootstrap.servers": cfg.bootstrap_servers, "acks": str(acks),
        "linger.ms": cfg.linger_ms, "message.max.bytes": cfg.max_message_bytes,
        # Retried until then, so a short broker outage only delays a flush.
        "message.timeout.ms": cfg.delivery_timeout_ms,
        "delivery.report.only.error": True,  # a callback per failure, not per message
        "logger": LIBRDKAFKA_LOG,  # not straight to stderr
        # Java's default: murmur2 of the key, as kafka-python's DefaultPartitioner, so a
        # series' forecasts go to the same partition whichever producer wrote them.
        "partitioner": "murmur2_random",
    }  # fmt: skip
    version = cfg.version_tuple()
    if version is not None and version < (0, 10):  # brokers without ApiVersionRequest
        conf["api.version.request"] = False
        conf["broker.version.fallback"] = ".".join(map(str, (*version, 0, 0)[:3]))
    # One request in flight a connection, so retries keep a partition's order, as the
    # kafka-python producer does (the idempotent producer would need acks=all).
    conf["max.in.flight.requests.per.connection"] = 1
    for key, value in cfg.client.items():
        if key in LIBRDKAFKA_NAMES:
            if key == "ssl_check_hostname":
                value = "https" if value else "none"
            conf[LIBRDKAFKA_NAMES[key]] = value
        elif key not in consumer_only:  # a producer setting with no translation here
            msg = (f"[kafka] client {key!r} has no librdkafka equivalent here: give "
                   f"librdkafka's own property in [kafka] librdkafka, or set "
                   f'[kafka] producer = "kafka-python"')  # fmt: skip
            raise ValueError(msg)
    conf.update(cfg.librdkafka)
    return conf


class LibrdkafkaProducer:
    """:class:`OutProducer` over librdkafka's producer (``confluent_kafka.Producer``)."""

    def __init__(self, conf: dict[str, Any]) -> None:
        from confluent_kafka import KafkaException, Producer

        self._failures: dict[str, list[BaseException]] = {}
        self.delivery_timeout_s = float(conf.get("message.timeout.ms", 300_000)) / 1000.0
        try:
            self.producer = Producer({**conf, "on_delivery": self._delivered})
        except KafkaException as exc:
            msg = f"[kafka] settings refused by librdkafka: {exc.args[0].str()}"
            raise ValueError(msg) from exc

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            target = self._failures.get(msg.topic())
            if target is not None:
                target.append(DeliveryError(f"{err.str()} (partition {msg.partition()})"))

    def send(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None,
        failures: list[BaseException],
    ) -> None:  # fmt: skip
        """Queue one record (``value`` None: a tombstone); a failed delivery joins ``failures``."""
        from confluent_kafka import KafkaException

        self._failures[topic] = failures
        produce, part = self.producer.produce, -1 if partition is None else partition  # -1: any
        for _ in range(int(self.delivery_timeout_s * 20) + 1):
            try:
                produce(topic, value, key, part)
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self.producer.poll(0.05)
            except KafkaException as exc:  # a record too large, an unknown partition
                msg = f"could not send to {topic!r}: {exc.args[0].str()}"
                raise DeliveryError(msg) from exc
        msg = f"could not send to {topic!r}: the producer's queue stayed full"
        raise DeliveryError(msg)

    def send_keyed(
        self, topic: str, messages: list[tuple[bytes, bytes]], failures: list[BaseException]
    ) -> None:
        """Queue keyed records, each to its key's partition (librdkafka's murmur2 partitioner)."""
        from confluent_kafka import KafkaException

        self._failures[topic] = failures
        produce = self.producer.produce
        for i, (key, value) in enumerate(messages):
            try:
                produce(topic, value, key)
            except BufferError:  # the queue is full: the slow path waits for room
                for k, v in messages[i:]:
                    self.send(topic, k, v, None, failures)
                return
            except KafkaException:  # a record too large: the slow path names it
                self.send(topic, key, value, None, failures)

    def flush(self, timeout_s: float) -> None:
        """Block until every queued record is acknowledged, or raise :class:`DeliveryError`."""
        left = self.producer.flush(timeout_s)
        if left:
            msg = f"{left} message(s) were not delivered in {timeout_s:g} s"
            raise DeliveryError(msg)

    def close(self) -> None:
        self.flush(self.delivery_timeout_s)


def make_output_producer(cfg: KafkaSettings) -> OutProducer:
    """The producer of the service's forecasts, anomalies and dead letters (``[kafka] producer``).

    ``ValueError`` names a setting librdkafka refuses.
    """
    if cfg.producer == "kafka-python":
        return KafkaPythonProducer(make_producer(cfg))
    return LibrdkafkaProducer(librdkafka_config(cfg))
