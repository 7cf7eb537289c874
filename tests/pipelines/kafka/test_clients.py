"""The kafka-python clients the service builds, against the real broker."""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from kafka import TopicPartition

from pipelines.kafka.options import KafkaSettings
from pipelines.kafka.producers import make_producer
from pipelines.kafka.source import make_consumer
from tests.pipelines.broker import PARTITIONS, Broker

pytestmark = pytest.mark.kafka


def test_a_backlog_bigger_than_one_megabyte_is_fetched_without_connection_errors(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    # kafka-python's default frame limit (1 MB) is far below the fetch sizes the service
    # asks for; each large fetch used to fail, drop the connection and start over.
    topic = broker.new_topic("backlog")
    n, value = 12_000, b"v" * 900  # about 11 MB, 2.7 MB per partition
    broker.produce(topic, [(str(i).encode(), value) for i in range(n)])
    cfg = KafkaSettings(bootstrap_servers=broker.bootstrap, api_version=broker.api_version,
                        group_id="g-backlog")  # fmt: skip
    cons = make_consumer(cfg)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    cons.assign(tps)
    cons.seek_to_beginning(*tps)
    seen, deadline = 0, time.monotonic() + 60
    with caplog.at_level(logging.ERROR, logger="kafka"):
        while seen < n and time.monotonic() < deadline:
            seen += sum(len(r) for r in cons.poll(timeout_ms=200).values())
    cons.close()
    assert seen == n
    assert not [r for r in caplog.records if "InvalidReceiveError" in r.getMessage()]


def test_client_settings_win_over_the_services_own() -> None:
    cfg = KafkaSettings(bootstrap_servers="127.0.0.1:1", api_version="0.9",
                        client={"linger_ms": 50, "max_poll_records": 7,
                                "receive_message_max_bytes": 123_456_789})  # fmt: skip
    # Building the clients must not fail on a key given twice; no broker is needed for
    # the producer's and consumer's config.
    prod = make_producer(cfg)
    cons = make_consumer(cfg)
    try:
        assert prod.config["linger_ms"] == 50
        assert cons.config["max_poll_records"] == 7
        assert cons.config["receive_message_max_bytes"] == 123_456_789
        assert cons.config["enable_auto_commit"] is False
    finally:
        prod.close(timeout=0)
        cons.close(autocommit=False)


@pytest.mark.parametrize("attempt", range(3))
def test_a_topic_created_after_subscribing_is_assigned_and_read(
    broker: Broker, attempt: int
) -> None:
    # kafka-python left a consumer that joined before its topic existed with no
    # partitions for good, when a poll's timeout ended inside the rejoin (4 of 5 tries
    # with 1 ms polls; a CI run hung on it). 1 ms polls make that window likely.
    topic = f"late-{attempt}-{uuid.uuid4().hex[:8]}"  # does not exist yet
    cfg = KafkaSettings(bootstrap_servers=broker.bootstrap, api_version=broker.api_version,
                        group_id=f"g-{topic}", client={"metadata_max_age_ms": 200})  # fmt: skip
    cons = make_consumer(cfg)
    cons.subscribe([topic])
    for _ in range(20):
        assert not cons.poll(timeout_ms=1)
    broker.produce(topic, [(b"k", b"v")])
    got = 0
    # A bound on polls, not on time: stuck, the consumer never reads, however long.
    for _ in range(20_000):
        got += sum(len(r) for r in cons.poll(timeout_ms=1).values())
        if got:
            break
    assignment = cons.assignment()
    cons.close(autocommit=False)
    assert len(assignment) == PARTITIONS and got == 1
