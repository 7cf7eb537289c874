"""The bundled local Kafka broker (``deploy/kafka/broker``), for benchmarks and tests.

It runs Apache Kafka 0.9.0.1, whose clients need ``api_version`` 0.9. Nothing else here
depends on that version: pass any other broker's address instead where one is given.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "kafka" / "broker"
LOCAL_API_VERSION = "0.9"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_broker(run_dir: Path, partitions: int = 4) -> Iterator[str]:
    """Start ZooKeeper and Kafka on free ports under ``run_dir``; yield ``host:port``.

    Both are stopped on exit. Raises ``RuntimeError`` with the script's message when the
    broker cannot start (no Java, no npm, ports taken).
    """
    env = {**os.environ, "KAFKA_PORT": str(free_port()), "ZOOKEEPER_PORT": str(free_port()),
           "KAFKA_PARTITIONS": str(partitions)}  # fmt: skip
    subprocess.run([SCRIPT, "stop", str(run_dir)], env=env, check=False, capture_output=True)
    out = subprocess.run([SCRIPT, "start", str(run_dir)], env=env, capture_output=True,
                         text=True, check=False)  # fmt: skip
    if out.returncode != 0:
        msg = f"the local Kafka broker did not start: {out.stderr.strip()}"
        raise RuntimeError(msg)
    try:
        yield out.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([SCRIPT, "stop", str(run_dir)], env=env, check=False, capture_output=True)
