"""The service's producers: librdkafka's settings from ``[kafka]``, and delivery through both."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.engine.batches import ForecastBatch
from pipelines.kafka.options import KafkaSettings
from pipelines.kafka.producers import (
    DeliveryError,
    KafkaPythonProducer,
    LibrdkafkaProducer,
    OutProducer,
    librdkafka_config,
    make_output_producer,
)
from pipelines.kafka.sinks import KafkaForecastSink, Producing
from tests.pipelines.broker import Broker


def test_an_old_broker_gets_a_fixed_version_and_one_request_in_flight() -> None:
    conf = librdkafka_config(KafkaSettings(api_version="0.9", linger_ms=7))
    assert conf["api.version.request"] is False  # 0.9 brokers cannot list their APIs
    assert conf["broker.version.fallback"] == "0.9.0"
    assert conf["max.in.flight.requests.per.connection"] == 1  # retries keep the order
    assert conf["linger.ms"] == 7 and conf["acks"] == "1"


@pytest.mark.parametrize("version", ["auto", "3.7.0", "0.11"])
def test_a_modern_broker_is_asked_its_version(version: str) -> None:
    conf = librdkafka_config(KafkaSettings(api_version=version))
    assert "broker.version.fallback" not in conf and "api.version.request" not in conf
    assert conf["max.in.flight.requests.per.connection"] == 1


def test_client_security_settings_are_translated_and_consumer_ones_left_out() -> None:
    cfg = KafkaSettings(client={
        "security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "svc", "sasl_plain_password": "pw", "ssl_cafile": "/ca.pem",
        "ssl_check_hostname": False, "max_poll_records": 7, "request_timeout_ms": 9000,
    })  # fmt: skip
    conf = librdkafka_config(cfg)
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanisms"] == "PLAIN"
    assert (conf["sasl.username"], conf["sasl.password"]) == ("svc", "pw")
    assert conf["ssl.ca.location"] == "/ca.pem"
    assert conf["ssl.endpoint.identification.algorithm"] == "none"
    assert conf["request.timeout.ms"] == 9000
    assert not any("poll" in key for key in conf)


def test_a_producer_setting_without_a_translation_is_refused_by_name() -> None:
    cfg = KafkaSettings(bootstrap_servers="127.0.0.1:1", api_version="0.9",
                        client={"sasl_kerberos_service_name": "kafka"})  # fmt: skip
    with pytest.raises(ValueError, match=r"'sasl_kerberos_service_name' has no librdkafka"):
        librdkafka_config(cfg)
    # kafka-python's producer takes it as it is
    producer = make_output_producer(cfg.model_copy(update={"producer": "kafka-python"}))
    assert isinstance(producer, KafkaPythonProducer)
    assert producer.producer.config["sasl_kerberos_service_name"] == "kafka"
    producer.producer.close(timeout=0)


def test_librdkafka_properties_pass_through_last() -> None:
    cfg = KafkaSettings(linger_ms=5, librdkafka={"linger.ms": 50, "compression.type": "lz4"})
    conf = librdkafka_config(cfg)
    assert conf["linger.ms"] == 50 and conf["compression.type"] == "lz4"


def test_librdkafka_properties_with_the_other_producer_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"librdkafka settings \(linger\.ms\) are for producer"):
        KafkaSettings(producer="kafka-python", librdkafka={"linger.ms": 50})


def test_a_property_librdkafka_refuses_is_one_error_naming_it() -> None:
    cfg = KafkaSettings(bootstrap_servers="127.0.0.1:1", librdkafka={"no.such.thing": 1})
    with pytest.raises(ValueError, match=r"refused by librdkafka: .*no\.such\.thing"):
        make_output_producer(cfg)


def test_the_default_producer_is_librdkafka() -> None:
    producer = make_output_producer(KafkaSettings(bootstrap_servers="127.0.0.1:1"))
    assert isinstance(producer, LibrdkafkaProducer)
    assert producer.delivery_timeout_s == 120.0


def _producer(broker: Broker, which: str, **settings: Any) -> OutProducer:
    return make_output_producer(KafkaSettings(
        bootstrap_servers=broker.bootstrap, api_version=broker.api_version, producer=which,
        **settings))  # fmt: skip


def _batch(n: int) -> ForecastBatch:
    from pipelines.bench.kafka import forecast_messages

    return forecast_messages(n, horizon=3)


@pytest.mark.kafka
@pytest.mark.parametrize("which", ["librdkafka", "kafka-python"])
def test_forecasts_reach_each_series_partition_through_either_producer(
    broker: Broker, which: str
) -> None:
    from kafka.partitioner import DefaultPartitioner

    topic = broker.new_topic(f"out-{which}")
    producer = _producer(broker, which)
    sink = KafkaForecastSink(producer, topic)
    first = _batch(300)
    second = first.issued(1.8e9)  # each series twice, different messages: order is checked
    sink.write(first)
    sink.write(second)
    sink.flush()
    producer.close()
    sent = first.messages + second.messages
    assert first.messages[0] != second.messages[0]
    got = broker.read_all(topic, expect=len(sent))
    assert sorted(r.value for r in got) == sorted(v for _, v in sent)
    parts = sorted(broker.end_offsets(topic))
    part = DefaultPartitioner()
    for r in got:  # the partition every Kafka client's default partitioner picks for the key
        assert r.partition == part(r.key, parts, parts)
    for series in {r.key for r in got}:  # each series' messages in the order sent
        assert [r.value for r in got if r.key == series] == [v for k, v in sent if k == series]


@pytest.mark.kafka
@pytest.mark.parametrize("which", ["librdkafka", "kafka-python"])
def test_a_record_too_large_is_a_delivery_error_naming_the_topic(
    broker: Broker, which: str
) -> None:
    topic = broker.new_topic(f"dlq-{which}")
    producer = _producer(broker, which, max_message_bytes=10_000)
    out = Producing(producer, topic)
    with pytest.raises(DeliveryError, match=topic):
        out.send(b"k", b"x" * 50_000)
        out.flush()
    out.send(b"k", b"fits")  # and the producer goes on
    out.flush()
    producer.close()
    assert [r.value for r in broker.read_all(topic, expect=1)] == [b"fits"]
