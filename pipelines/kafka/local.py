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

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "broker"
LOCAL_API_VERSION = "0.9"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalBroker:
    """ZooKeeper and Kafka on free ports under ``run_dir``, stopped and started at will."""

    def __init__(
        self, run_dir: Path, partitions: int = 4, max_message_bytes: int = 1_000_012
    ) -> None:
        self.run_dir = run_dir
        ports = {"KAFKA_PORT": str(free_port()), "ZOOKEEPER_PORT": str(free_port())}
        self.env = {**os.environ, **ports, "KAFKA_PARTITIONS": str(partitions),
                    "KAFKA_MAX_MESSAGE_BYTES": str(max_message_bytes)}  # fmt: skip
        self.bootstrap = f"127.0.0.1:{self.env['KAFKA_PORT']}"

    def _script(self, command: str, *args: str) -> str:
        out = subprocess.run([SCRIPT, command, str(self.run_dir), *args], env=self.env,
                             capture_output=True, text=True, check=False)  # fmt: skip
        if out.returncode != 0:
            msg = f"the local Kafka broker did not {command}: {out.stderr.strip()}"
            raise RuntimeError(msg)
        return out.stdout

    def start(self, keep_data: bool = False) -> str:
        """Start (with ``keep_data``: again, with the topics and offsets it had)."""
        self._script("restart" if keep_data else "start")
        return self.bootstrap

    def create_topic(self, name: str, partitions: int, config: dict[str, str]) -> None:
        """Create ``name`` with topic settings such as ``cleanup.policy=compact``.

        Kafka 0.9 has no admin API: this runs Kafka's own topic tool against ZooKeeper.
        """
        self._script("topic", name, str(partitions), *(f"{k}={v}" for k, v in config.items()))

    def stop(self) -> None:
        """Stop both processes (SIGTERM, then SIGKILL after 10 s)."""
        self._script("stop")


@contextmanager
def local_broker(run_dir: Path, partitions: int = 4) -> Iterator[str]:
    """Start ZooKeeper and Kafka on free ports under ``run_dir``; yield ``host:port``.

    Both are stopped on exit. Raises ``RuntimeError`` with the script's message when the
    broker cannot start (no Java, no npm, ports taken).
    """
    broker = LocalBroker(run_dir, partitions)
    try:
        yield broker.start()
    finally:
        broker.stop()
