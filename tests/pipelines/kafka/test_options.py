"""One set of options for every Kafka client: servers, version, tuning, then ``client``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipelines.kafka.options import (
    KafkaSettings,
    consumer_options,
    parse_api_version,
    producer_options,
)


def test_api_version_is_parsed_in_one_place() -> None:
    assert parse_api_version("auto") is None
    assert parse_api_version("0.10.2") == (0, 10, 2)
    for bad in ("0", "1.2.3.4", "one.two", ""):
        with pytest.raises(ValueError, match="api_version must be 'auto'"):
            parse_api_version(bad)
    with pytest.raises(ValidationError, match="api_version must be 'auto'"):
        KafkaSettings(api_version="0.9.x")
    assert KafkaSettings(api_version="0.9").version_tuple() == (0, 9)


def test_each_client_gets_the_client_keys_it_knows_and_they_win() -> None:
    cfg = KafkaSettings(bootstrap_servers="a:1,b:2", api_version="2.8", client={
        "security_protocol": "SSL", "fetch_max_wait_ms": 50, "linger_ms": 9})  # fmt: skip
    consumer = consumer_options(cfg, group_id=None, fetch_max_wait_ms=500)
    producer = producer_options(cfg, linger_ms=20, acks=1)
    assert consumer["bootstrap_servers"] == producer["bootstrap_servers"] == ["a:1", "b:2"]
    assert consumer["api_version"] == producer["api_version"] == (2, 8)
    assert consumer["security_protocol"] == producer["security_protocol"] == "SSL"
    assert consumer["fetch_max_wait_ms"] == 50 and "linger_ms" not in consumer  # consumer keys
    assert producer["linger_ms"] == 9 and "fetch_max_wait_ms" not in producer  # producer keys
    assert consumer["group_id"] is None and producer["acks"] == 1  # the caller's tuning
