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


@pytest.fixture(autouse=True)
def no_service_outlives_its_test() -> Iterator[None]:
    """A failed test must not leave a service process running (it would hold CPU)."""
    from tests.pipelines.service.test_service_kafka import STARTED

    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
