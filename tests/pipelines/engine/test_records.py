from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from pipelines.engine.decode import Decoder
from pipelines.engine.records import REASONS, Message


def msg(value: bytes | None, key: bytes | None = None, offset: int = 0) -> Message:
    return Message("t", 0, offset, key, value)


def test_a_good_batch_becomes_arrays_in_order() -> None:
    dec = Decoder(("load", "temp"))
    recs = [
        msg(b'{"series": "a", "ts": "2024-05-01T12:00:00Z", "value": 1.5, '
            b'"features": {"temp": 20, "load": 0.5}}', b"a", 0),
        msg(b'{"ts": 1714564800500, "value": -2, "features": {"load": 1, "temp": 2.5}}', b"b", 1),
        msg(b'{"series": "c", "ts": "2024-05-01T14:00:00+02:00", "value": 0, '
            b'"features": {"load": 0, "temp": 0}}', None, 2),
    ]  # fmt: skip
    out = dec.decode(recs)
    assert not out.rejected
    assert out.series == ["a", "b", "c"]
    ts, values, cov = out.arrays(2)
    assert ts.tolist() == [1714564800.0, 1714564800.5, 1714564800.0]  # naive = UTC; +02:00 kept
    assert values.tolist() == [1.5, -2.0, 0.0]
    assert cov.tolist() == [[0.5, 20.0], [1.0, 2.5], [0.0, 0.0]]  # in the configured order
    assert [r.offset for r in out.records] == [0, 1, 2]


BAD = [
    (None, None, "undecodable", "empty message"),
    (b"\xff\xfe", None, "undecodable", "not JSON"),
    (b"[1, 2]", None, "undecodable", "a JSON list"),
    (b'{"ts": 1, "value": 1}', None, "missing_field", "no 'series' and no message key"),
    (b'{"series": "a", "value": 1}', None, "missing_field", "no 'ts'"),
    (b'{"series": "a", "ts": 1}', None, "missing_field", "no 'value'"),
    (b'{"series": 7, "ts": 1, "value": 1}', None, "wrong_type", "'series' is int"),
    (b'{"series": "a", "ts": 1, "value": "1"}', None, "wrong_type", "'value' is str"),
    (b'{"series": "a", "ts": 1, "value": true}', None, "wrong_type", "'value' is bool"),
    (b'{"series": "a", "ts": [1], "value": 1}', None, "wrong_type", "'ts' is list"),
    (b'{"series": "a", "ts": 1, "value": 1, "features": [1]}', None, "wrong_type", "'features'"),
    (b'{"series": "a", "ts": "soon", "value": 1}', None, "bad_timestamp", "'soon'"),
    (b'{"series": "a", "ts": 1, "value": NaN}', None, "non_finite", "'value' is nan"),
    (b'{"series": "a", "ts": 1, "value": -Infinity}', None, "non_finite", "'value' is -inf"),
    (b'{"series": "a", "ts": 1, "value": 1e999}', None, "non_finite", "'value' is inf"),
    (b'{"series": "a", "ts": Infinity, "value": 1}', None, "non_finite", "'ts' is inf"),
    (b'{"series": "a", "ts": 1, "value": 1, "features": {"load": 1, "x": 2}}', None,
     "unknown_feature", "'x'"),
    (b'{"series": "a", "ts": 1, "value": 1, "features": {}}', None, "missing_feature", "'load'"),
    (b'{"series": "a", "ts": 1, "value": 1, "features": {"load": NaN}}', None, "non_finite",
     "'load' is nan"),
    (b'{"series": "a", "ts": 1, "value": 1, "features": {"load": 1}}', b"b", "series_mismatch",
     "key b'b' but series 'a'"),
    (b'{"ts": 1, "value": 1, "features": {"load": 1}}', b"\xff", "undecodable", "not UTF-8"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "key", "reason", "detail"), BAD)
def test_each_bad_record_is_rejected_with_its_reason(
    value: bytes | None, key: bytes | None, reason: str, detail: str
) -> None:
    good = msg(b'{"series": "ok", "ts": 5, "value": 1, "features": {"load": 1}}', None, 1)
    out = Decoder(("load",)).decode([msg(value, key), good])
    assert reason in REASONS
    assert [(r.reason, r.record.offset) for r in out.rejected] == [(reason, 0)]
    assert detail in out.rejected[0].detail
    assert out.series == ["ok"]  # the batch goes on


def test_epoch_milliseconds_and_iso_agree() -> None:
    when = "2024-05-01T12:00:00.250Z"
    a = Decoder().decode([msg(orjson.dumps({"series": "s", "ts": when, "value": 1}))])
    b = Decoder().decode([msg(orjson.dumps({"series": "s", "ts": 1714564800250, "value": 1}))])
    assert a.ts == b.ts == [1714564800.25]
    assert math.isfinite(a.ts[0])


def test_a_huge_batch_without_features_has_an_empty_covariate_matrix() -> None:
    recs = [msg(orjson.dumps({"series": f"s{i % 7}", "ts": i, "value": i}), None, i)
            for i in range(500)]  # fmt: skip
    out = Decoder().decode(recs)
    _, values, cov = out.arrays(0)
    assert cov.shape == (500, 0)
    assert np.array_equal(values, np.arange(500.0))
