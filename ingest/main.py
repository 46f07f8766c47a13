"""``cefpipe ingest``: run the syslog listener until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl

import uvloop

from cefpipe.binding import BindError
from cefpipe.logconfig import configure_logging
from cefpipe.metrics import Health, MetricsServer
from cefpipe.settings import IngestSettings, Settings
from ingest.listener import SyslogListener
from ingest.publisher import RawPublisher

logger = logging.getLogger(__name__)

_SHUTDOWN_FLUSH_SECS = 30.0
# Messages queued this long with none delivered make ingest unhealthy.
_DELIVERY_STALL_SECS = 30.0


def run(settings: Settings) -> int:
    configure_logging(
        "ingest", settings.instance, settings.log_level, settings.log_format
    )
    try:
        # uvloop's sockets and callbacks cost less per message than asyncio's.
        return uvloop.run(_serve(settings))
    except (BindError, OSError) as exc:
        logger.error("ingest could not start: %s", exc)
        return 1


async def _serve(settings: Settings) -> int:
    health = Health()
    metrics_server = _metrics_server(settings, health)
    publisher = RawPublisher(settings)
    listener = SyslogListener(
        settings.ingest, publisher, settings.instance, _tls_context(settings.ingest)
    )
    try:
        await listener.start()
    except BindError:
        metrics_server.stop()
        raise
    health.register("listening", lambda: (True, f"bound {listener.bound}"))
    health.register("kafka_delivery", lambda: publisher.health(_DELIVERY_STALL_SECS))
    logger.info(
        "syslog listening on %s: %s; publishing to %s at %s",
        settings.ingest.bind_host,
        ", ".join(f"{name} {port}" for name, port in listener.bound.items()),
        settings.kafka.topic_raw,
        settings.kafka.bootstrap_servers,
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    reports = asyncio.create_task(publisher.run_delivery_reports())
    await stop.wait()

    logger.info(
        "stopping: reading what senders already sent for up to %ss, then "
        "flushing the %d messages queued for Kafka",
        settings.ingest.shutdown_grace_secs,
        publisher.queued,
    )
    await listener.stop()
    reports.cancel()
    lost = publisher.close(_SHUTDOWN_FLUSH_SECS)
    metrics_server.stop()
    return 0 if lost == 0 else 1


def _metrics_server(settings: Settings, health: Health) -> MetricsServer:
    host, port = settings.metrics_bind_host, settings.ingest.metrics_port
    return MetricsServer(host, port, health, port_setting="INGEST_METRICS_PORT").start()


def _tls_context(settings: IngestSettings) -> ssl.SSLContext | None:
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    return context
