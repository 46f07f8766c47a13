"""``cefpipe enrich``: run one Faust worker of the enrich stage.

Scale out by starting more of these (same settings): they share the raw topic's
partitions through the consumer group. Stops warmly on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust
import uvloop

from cefpipe.binding import BindError
from cefpipe.logconfig import configure_logging
from cefpipe.metrics import Health, MetricsServer, kafka_reachable_check
from cefpipe.settings import Settings
from enrich.app import EnrichRuntime, build_app

logger = logging.getLogger(__name__)

_STALL_SECS = 60.0


def run(settings: Settings) -> int:
    configure_logging(
        "enrich", settings.instance, settings.log_level, settings.log_format
    )
    runtime = build_app(settings)
    health = Health()
    health.register("event_loop", lambda: _loop_health(runtime))
    health.register("kafka_delivery", lambda: _delivery_health(runtime))
    health.register("kafka", kafka_reachable_check(settings.kafka.bootstrap_servers))
    try:
        metrics_server = MetricsServer(
            settings.metrics_bind_host,
            settings.enrich.metrics_port,
            health,
            port_setting="ENRICH_METRICS_PORT",
        ).start()
    except BindError as exc:
        logger.error("enrich could not start: %s", exc)
        return 1
    logger.info(
        "enriching %s into %s (dead letters to %s) at %s",
        settings.kafka.topic_raw,
        settings.kafka.topic_enriched,
        settings.kafka.topic_dead_letter,
        settings.kafka.bootstrap_servers,
    )
    # uvloop's event loop costs less per callback than asyncio's, and a Faust
    # worker runs several callbacks per record.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    worker = faust.Worker(
        runtime.app,
        loglevel=settings.log_level,
        override_logging=False,
        redirect_stdouts=False,
        quiet=True,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    finally:
        metrics_server.stop()
        runtime.workdir.cleanup()
    return 0


def _loop_health(runtime: EnrichRuntime) -> tuple[bool, str]:
    silent = time.monotonic() - runtime.last_heartbeat
    return (
        silent < _STALL_SECS,
        f"{runtime.batches} batches; heartbeat {silent:.0f}s ago",
    )


def _delivery_health(runtime: EnrichRuntime) -> tuple[bool, str]:
    since = runtime.enricher.delivery_failing_since
    if since is None:
        return True, "delivering"
    failing = time.monotonic() - since
    return failing < _STALL_SECS, f"Kafka refusing writes for {failing:.0f}s"
