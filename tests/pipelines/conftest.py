from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pipelines.broker import Broker, local_broker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from local_broker(tmp_path_factory.mktemp("kafka"))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
