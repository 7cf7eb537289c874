"""The input topic, read in a consumer group through kafka-python.

Nothing here depends on a broker version: ``api_version`` is a setting ("auto" asks the
broker), no record headers or timestamps are used (event time is in the payload), and
topics are expected to exist or be auto-created.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from pipelines.engine.batches import TP
from pipelines.engine.ports import Listener
from pipelines.engine.records import Record
from pipelines.kafka.options import KafkaSettings, consumer_options

log = logging.getLogger(__name__)


def make_consumer(cfg: KafkaSettings) -> KafkaConsumer:
    """A consumer in ``group_id`` that never commits on its own."""
    partition_bytes = max(8 << 20, cfg.max_message_bytes + (64 << 10))
    tuned: dict[str, Any] = dict(
        group_id=cfg.group_id, enable_auto_commit=False,
        auto_offset_reset=cfg.auto_offset_reset, max_poll_records=cfg.max_poll_records,
        session_timeout_ms=cfg.session_timeout_ms,
        heartbeat_interval_ms=cfg.heartbeat_interval_ms,
        max_partition_fetch_bytes=partition_bytes,
        fetch_max_bytes=max(64 << 20, 2 * cfg.max_message_bytes),
        # kafka-python drops any response frame over 1 MB by default, closing the
        # connection, so every fetch of a backlog failed once before it was read. The
        # fetch sizes bound the responses instead (brokers before 0.10.1 ignore
        # fetch_max_bytes: there it is partitions x max_partition_fetch_bytes).
        receive_message_max_bytes=2**31 - 1,
    )  # fmt: skip
    if cfg.max_poll_interval_ms is not None:
        tuned["max_poll_interval_ms"] = cfg.max_poll_interval_ms
    consumer = KafkaConsumer(**consumer_options(cfg, **tuned))
    finish_pending_joins(consumer)
    return consumer


def finish_pending_joins(consumer: KafkaConsumer) -> None:
    """Work around a kafka-python bug that leaves a consumer with no partitions for good.

    A rebalance the consumer starts because the topic's metadata changed (the input
    topic created after the service subscribed, partitions added) is not flagged as
    needed. If the ``poll`` timeout ends before the join completes, the join completes
    in the background, and as group leader the consumer has already recorded the new
    metadata as assigned, so it never asks again and never takes its assignment: it
    owns the partitions on the broker and reads nothing. The local broker showed this
    in 4 of 5 tries with 1 ms polls, and it hung a CI run. Java's client counts a
    pending join as a reason to rejoin; this makes kafka-python do the same (its
    ``rejoining`` flag is set from the start of a rejoin until its completion is
    handled). A client without these internals is left as it is.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    need_rejoin = getattr(coordinator, "need_rejoin", None)
    if coordinator is None or need_rejoin is None or not hasattr(coordinator, "rejoining"):
        return

    def need_rejoin_or_pending() -> bool:
        return bool(need_rejoin() or coordinator.rejoining)

    coordinator.need_rejoin = need_rejoin_or_pending


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Calls the loop's callbacks and keeps their first error.

    kafka-python would log and swallow a listener's exception, leaving an assigned
    partition unhandled; the source raises it from ``poll`` instead.
    """

    def __init__(self, on_assigned: Listener, on_revoked: Listener) -> None:
        self.on_assigned, self.on_revoked = on_assigned, on_revoked
        self.error: Exception | None = None

    def on_partitions_revoked(self, revoked: Any) -> None:
        try:
            self.on_revoked([(tp.topic, tp.partition) for tp in revoked])
        except Exception as exc:
            self.error = self.error or exc

    def on_partitions_assigned(self, assigned: Any) -> None:
        try:
            self.on_assigned([(tp.topic, tp.partition) for tp in assigned])
        except Exception as exc:
            self.error = self.error or exc


def _log_failed_commit(offsets: Any, response: Any) -> None:
    if isinstance(response, BaseException):
        log.warning("offset commit failed, the checkpoints hold the offsets: %r", response)


class KafkaSource:
    """The input topic, read in a consumer group; offsets are committed only when told."""

    def __init__(
        self, consumer: KafkaConsumer, topic: str, commit_timeout_ms: int = 10_000
    ) -> None:
        self.consumer, self.topic = consumer, topic
        self.commit_timeout_ms = commit_timeout_ms
        self._listener: _Rebalance | None = None

    def start(self, on_assigned: Listener, on_revoked: Listener) -> None:
        self._listener = _Rebalance(on_assigned, on_revoked)
        self.consumer.subscribe([self.topic], listener=self._listener)

    def poll(self, timeout_ms: int) -> dict[TP, list[Record]]:
        got = self.consumer.poll(timeout_ms=timeout_ms)
        if self._listener is not None and self._listener.error is not None:
            error, self._listener.error = self._listener.error, None
            raise error
        return {(tp.topic, tp.partition): recs for tp, recs in got.items()}

    def position(self, tp: TP) -> int:
        return int(self.consumer.position(TopicPartition(*tp)))

    def seek(self, tp: TP, offset: int) -> None:
        self.consumer.seek(TopicPartition(*tp), offset)

    def pause(self, tps: Sequence[TP]) -> None:
        if tps:
            self.consumer.pause(*[TopicPartition(*tp) for tp in tps])

    def resume(self, tps: Sequence[TP]) -> None:
        paused = self.consumer.paused()
        back = [TopicPartition(*tp) for tp in tps if TopicPartition(*tp) in paused]
        if back:
            self.consumer.resume(*back)

    def commit(self, offsets: dict[TP, int], wait: bool = True) -> bool:
        meta = {TopicPartition(*tp): OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()}
        if not wait:
            # Inside a rebalance callback, which runs on the client's IO thread, a
            # blocking commit is refused; this one is sent as the callback returns.
            self.consumer.commit_async(meta, callback=_log_failed_commit)
            return False
        try:
            self.consumer.commit(meta, timeout_ms=self.commit_timeout_ms)
        except (CommitFailedError, KafkaError) as exc:
            # The group moved on (a rebalance) or the broker is away. Nothing is lost: the
            # offsets are in the checkpoints, which the partitions' owners restore and
            # seek to; the next commit carries them to Kafka.
            log.warning("offset commit failed, the checkpoints hold the offsets: %r", exc)
            return False
        return True

    def group_committed(self, tp: TP) -> int | None:
        """The group's committed offset of ``tp`` (None: none, or the broker did not say)."""
        try:
            offset = self.consumer.committed(TopicPartition(*tp), timeout_ms=self.commit_timeout_ms)
        except KafkaError as exc:  # only a warning depends on it: never stop the loop
            log.warning("committed offset of %s unknown: %r", tp, exc)
            return None
        return None if offset is None or offset < 0 else int(offset)

    def lag(self) -> dict[TP, int]:
        """Messages between each assigned partition's position and its end (as last fetched)."""
        out = {}
        for tp in self.consumer.assignment():
            end = self.consumer.highwater(tp)
            if end is not None:
                out[(tp.topic, tp.partition)] = max(0, end - self.consumer.position(tp))
        return out

    def close(self) -> None:
        self.consumer.close(autocommit=False)
