"""The metrics endpoint: ``/metrics``, ``/healthz`` and ``/readyz`` over HTTP.

What is served is declared in :mod:`pipelines.service.telemetry`; this module only answers
requests, on a daemon thread, at the configured address (loopback by default).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def _handler(registry: CollectorRegistry, readiness: Callable[[], dict[str, bool]]) -> type:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._reply(200, b"ok\n")
            elif path == "/readyz":
                state = readiness()
                if all(state.values()):
                    self._reply(200, b"ready\n")
                else:
                    missing = ", ".join(k for k, ok in state.items() if not ok)
                    self._reply(503, f"not ready: {missing}\n".encode())
            else:
                self._reply(404, b"not found: try /metrics, /healthz or /readyz\n")

        def _reply(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("metrics http: " + format, *args)

    return Handler


class MetricsServer:
    r"""``/metrics``, ``/healthz`` and ``/readyz`` over HTTP, served by a daemon thread.

    ``port`` 0 picks a free port; :attr:`port` and :attr:`url` give the one bound.

    Examples
    --------
    >>> from urllib.request import urlopen
    >>> server = MetricsServer(CollectorRegistry(), "127.0.0.1", 0, lambda: {"up": True})
    >>> urlopen(f"http://127.0.0.1:{server.port}/healthz").read()
    b'ok\n'
    >>> urlopen(f"http://127.0.0.1:{server.port}/readyz").status
    200
    >>> server.stop()
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str,
        port: int,
        readiness: Callable[[], dict[str, bool]],
    ) -> None:
        server_class = _Server6 if ":" in host else _Server
        try:
            self.httpd = server_class((host, port), _handler(registry, readiness))
        except OSError as exc:
            msg = f"[metrics] cannot listen on {host}:{port}: {exc}"
            raise OSError(msg) from exc
        self.host, self.port = host, int(self.httpd.server_address[1])
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="metrics-http", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The ``/metrics`` address (a wildcard bind is shown as the loopback address)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()
