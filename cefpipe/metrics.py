"""The HTTP page every component serves: Prometheus metrics and a health check.

Metric names follow one rule: ``cefpipe_<stage>_<noun>_<unit>_total`` for counters,
with ``stage`` and ``reason`` labels where they apply. Each stage defines its own
metrics next to its code; this module only serves them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
)

from cefpipe.binding import BindError

logger = logging.getLogger(__name__)

HealthCheck = Callable[[], tuple[bool, str]]

# Shared by every stage; each process only ever sets its own stage label.
ERRORS = Counter("cefpipe_errors", "Errors by stage and kind.", ["stage", "kind"])


@dataclass
class Health:
    """Named checks that together say whether this process is doing its job.

    Components register checks at start-up; the ``/healthz`` page runs them all
    on each request. A check must be cheap and must not block.
    """

    checks: dict[str, HealthCheck] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)

    def register(self, name: str, check: HealthCheck) -> None:
        self.checks[name] = check

    def report(self) -> tuple[bool, dict[str, Any]]:
        results: dict[str, Any] = {}
        healthy = True
        for name, check in self.checks.items():
            try:
                ok, detail = check()
            except Exception as exc:  # a broken check is itself unhealthy
                ok, detail = False, f"check raised {exc!r}"
            results[name] = {"ok": ok, "detail": detail}
            healthy = healthy and ok
        return healthy, {
            "status": "ok" if healthy else "unhealthy",
            "uptime_secs": round(time.time() - self.started_at, 1),
            "checks": results,
        }


def kafka_reachable_check(bootstrap_servers: str) -> HealthCheck:
    """A health check that fails while no broker answers at ``bootstrap_servers``.

    A worker whose broker is gone has nothing to do and looks idle, not broken;
    this check makes the outage visible on ``/healthz`` and to ``cefpipe status``.
    One client serves every request, so a check costs a metadata request.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0})

    def check() -> tuple[bool, str]:
        try:
            admin.list_topics(timeout=1.0)
        except KafkaException:
            return False, f"no broker answers at {bootstrap_servers}"
        return True, f"broker answers at {bootstrap_servers}"

    return check


class MetricsServer:
    """Serves ``/metrics`` and ``/healthz`` on a daemon thread.

    Safe to start once per process; ``stop`` is idempotent.
    """

    def __init__(
        self,
        host: str,
        port: int,
        health: Health,
        registry: CollectorRegistry = REGISTRY,
        port_setting: str = "the metrics port",
    ) -> None:
        """Bind at once; a taken port raises a BindError naming ``port_setting``."""
        handler = _make_handler(health, registry)
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise BindError(port_setting, "metrics", host, port, exc) from exc
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        logger.info("metrics and health served on port %s", self.port)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def _make_handler(
    health: Health, registry: CollectorRegistry
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/metrics", "/"):
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path in ("/healthz", "/health"):
                healthy, body = health.report()
                self._send(
                    200 if healthy else 503,
                    "application/json",
                    json.dumps(body).encode(),
                )
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Scrapes every few seconds are not news; keep them out of the log."""

    return Handler
