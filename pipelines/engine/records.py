"""Records: what a source delivers, and why one is rejected instead of learned.

A record is a message as Kafka delivers it (topic, partition, offset, key, value); a
file row or a test message has the same fields (:class:`Message`). A record that is not
an event is :class:`Rejected` with one of :data:`REASONS`, and the stream goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Why a record was rejected: the label of the dead letter and of the rejected counter.
UNDECODABLE = "undecodable"  # not UTF-8 JSON, or not a JSON object
MISSING_FIELD = "missing_field"  # no series (and no key), ts or value
WRONG_TYPE = "wrong_type"  # a field of the wrong JSON type
BAD_TIMESTAMP = "bad_timestamp"  # a ts string that is not ISO-8601
NON_FINITE = "non_finite"  # NaN or infinity in value, ts or a feature
UNKNOWN_FEATURE = "unknown_feature"  # a feature the model is not configured with
MISSING_FEATURE = "missing_feature"  # a configured feature left out
SERIES_MISMATCH = "series_mismatch"  # the key and the "series" field disagree
OUT_OF_ORDER = "out_of_order"  # older than the series' latest event (decided by the model)
BAD_SERIES = "bad_series"  # an empty series id, or one over MAX_SERIES_BYTES
OUT_OF_RANGE = "out_of_range"  # a value or feature beyond MAX_ABS_VALUE
REASONS = (UNDECODABLE, MISSING_FIELD, WRONG_TYPE, BAD_TIMESTAMP, NON_FINITE, UNKNOWN_FEATURE,
           MISSING_FEATURE, SERIES_MISMATCH, OUT_OF_ORDER, BAD_SERIES, OUT_OF_RANGE)  # fmt: skip

MAX_SERIES_BYTES = 512  # a key, a label and a file name all stay small
# No sensor reads 1e100; beyond it, squares in training and interval bounds would overflow.
MAX_ABS_VALUE = 1e100


class Record(Protocol):
    """What the loop needs of a message (kafka-python's ``ConsumerRecord`` has it)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True)
class Message:
    """A record not from Kafka (files, tests): the same fields as a ``ConsumerRecord``."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Rejected:
    """A record that is not an event, with the reason (one of :data:`REASONS`)."""

    record: Record
    reason: str
    detail: str
