"""How to reach Kafka: the ``[kafka]`` settings, and the one set of options every client gets.

Every kafka-python client the pipelines make (the service's consumer and producer, a
replay's topic reader, the feed, the benchmarks) takes its options from
:func:`consumer_options` or :func:`producer_options`: the servers, ``api_version``
(parsed by :func:`parse_api_version` only), the caller's tuning, and ``[kafka] client``
over them, so SASL and SSL settings reach every client unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Set by the pipelines themselves, never through ``[kafka] client``.
MANAGED = frozenset({"bootstrap_servers", "api_version", "group_id", "enable_auto_commit",
                     "key_deserializer", "value_deserializer", "key_serializer",
                     "value_serializer"})  # fmt: skip


def parse_api_version(text: str) -> tuple[int, ...] | None:
    """``api_version`` as kafka-python wants it: ``"auto"`` is None (ask the broker).

    Examples
    --------
    >>> parse_api_version("0.9"), parse_api_version("3.7.0"), parse_api_version("auto")
    ((0, 9), (3, 7, 0), None)
    >>> parse_api_version("latest")
    Traceback (most recent call last):
    ...
    ValueError: api_version must be 'auto' or like '0.9' or '3.7.0', got 'latest'
    """
    if text == "auto":
        return None
    parts = text.split(".")
    if not all(p.isdigit() for p in parts) or not 2 <= len(parts) <= 3:
        msg = f"api_version must be 'auto' or like '0.9' or '3.7.0', got {text!r}"
        raise ValueError(msg)
    return tuple(int(p) for p in parts)


class KafkaSettings(BaseModel):
    """How to reach the broker; ``client`` passes through to kafka-python."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bootstrap_servers: str = "127.0.0.1:9092"
    # "auto" asks the broker; "0.9" for the bundled local broker (deploy/kafka/broker).
    api_version: str = "auto"
    group_id: str = "forecaster"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    max_poll_records: int = Field(2000, ge=1)
    poll_timeout_ms: int = Field(200, ge=1)
    # Unset: the client's default (300 s), or the session timeout on brokers older than
    # 0.10.1, which have no separate poll interval.
    max_poll_interval_ms: int | None = Field(None, ge=1000)
    session_timeout_ms: int = Field(10_000, ge=500)
    heartbeat_interval_ms: int = Field(3_000, ge=100)
    linger_ms: int = Field(5, ge=0)
    # How long the producer retries a forecast before the loop goes back to the last
    # checkpoint (a broker outage shorter than this only delays the stream).
    delivery_timeout_ms: int = Field(120_000, ge=1000)
    # The largest message the brokers accept (message.max.bytes): the consumer fetches
    # records this large, and a dead letter over it keeps only its first bytes.
    max_message_bytes: int = Field(1_000_000, ge=10_000)
    # kafka-python settings for both clients, e.g. security_protocol, sasl_mechanism,
    # sasl_plain_username, sasl_plain_password, ssl_cafile.
    client: dict[str, Any] = Field(default_factory=dict)
    # The producer of forecasts, anomalies and dead letters: librdkafka's (confluent-kafka;
    # a fifth of kafka-python's CPU time a message) or kafka-python's
    # (pipelines/kafka/producers.py). client's security settings reach either.
    producer: Literal["librdkafka", "kafka-python"] = "librdkafka"
    # librdkafka properties for that producer, over the ones the service sets, e.g.
    # {"compression.type" = "lz4"}.
    librdkafka: dict[str, Any] = Field(default_factory=dict)

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        parse_api_version(value)
        return value

    @field_validator("client")
    @classmethod
    def _client(cls, value: dict[str, Any]) -> dict[str, Any]:
        from kafka import KafkaConsumer, KafkaProducer

        known = set(KafkaConsumer.DEFAULT_CONFIG) | set(KafkaProducer.DEFAULT_CONFIG)
        for key in value:
            if key not in known:
                msg = f"{key!r} is not a kafka-python client setting"
                raise ValueError(msg)
            if key in MANAGED:
                msg = f"{key!r} is set by the service; use [kafka] {key} where it exists"
                raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _librdkafka_needs_it(self) -> KafkaSettings:
        if self.librdkafka and self.producer != "librdkafka":
            keys = ", ".join(sorted(self.librdkafka))
            msg = (f"librdkafka settings ({keys}) are for producer = \"librdkafka\", not "
                   f"{self.producer!r}: they would be ignored")  # fmt: skip
            raise ValueError(msg)
        return self

    def version_tuple(self) -> tuple[int, ...] | None:
        """``api_version`` as kafka-python wants it (None: ask the broker)."""
        return parse_api_version(self.api_version)


def client_options(cfg: KafkaSettings) -> dict[str, Any]:
    """Options both clients get: servers, api_version, and ``client`` unchanged."""
    opts: dict[str, Any] = {"bootstrap_servers": cfg.bootstrap_servers.split(",")}
    version = cfg.version_tuple()
    if version is not None:
        opts["api_version"] = version
    opts.update(cfg.client)
    return opts


def _with_client(
    cfg: KafkaSettings, tuned: dict[str, Any], known: dict[str, Any]
) -> dict[str, Any]:
    """The caller's settings, then :func:`client_options` over them (``client`` wins).

    Each client gets only the keys it knows: ``client`` holds settings of both.
    """
    return {**tuned, **{k: v for k, v in client_options(cfg).items() if k in known}}


def consumer_options(cfg: KafkaSettings, **tuned: Any) -> dict[str, Any]:
    """Keyword arguments of a ``KafkaConsumer``: ``tuned``, then :func:`client_options`."""
    from kafka import KafkaConsumer

    return _with_client(cfg, tuned, KafkaConsumer.DEFAULT_CONFIG)


def producer_options(cfg: KafkaSettings, **tuned: Any) -> dict[str, Any]:
    """Keyword arguments of a ``KafkaProducer``: ``tuned``, then :func:`client_options`."""
    from kafka import KafkaProducer

    return _with_client(cfg, tuned, KafkaProducer.DEFAULT_CONFIG)
