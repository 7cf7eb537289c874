"""`forecaster bench checkpoints`: both stores measured on the same checkpoint, every figure."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from pipelines.cli import main
from tests.conftest import needs_compiled_speed
from tests.pipelines.broker import Broker


@pytest.mark.kafka
@needs_compiled_speed  # the shipped fleet model fills 256 events a series
def test_bench_checkpoints_reports_both_stores_for_each_size(broker: Broker) -> None:
    args = ["bench", "checkpoints", "--series", "20,40", "--rounds", "2", "--json",
            "--bootstrap", broker.bootstrap, "--api-version", broker.api_version]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.output)
    assert [row["series"] for row in out["rows"]] == [20, 40]
    for row in out["rows"]:
        snapshot = row["snapshot_bytes"]
        folder, kafka = row["folder"], row["kafka"]
        # The same snapshot through both: the file adds its header, Kafka keys and framing.
        assert snapshot < folder["bytes"] < snapshot + 4096
        chunks = -(-snapshot // kafka["chunk_bytes"])
        assert snapshot < kafka["bytes"] < snapshot + 4096 + 200 * chunks
        for store in (folder, kafka):
            assert store["write_seconds"] > 0 and store["restore_seconds"] > 0
    assert out["rows"][1]["snapshot_bytes"] > out["rows"][0]["snapshot_bytes"]


def test_bench_checkpoints_refuses_sizes_that_are_not_integers() -> None:
    result = CliRunner().invoke(main, ["bench", "checkpoints", "--series", "1000,many"])
    assert result.exit_code == 2
    assert "--series must be comma-separated integers, got '1000,many'" in result.output
