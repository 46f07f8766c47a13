"""``cefpipe sink``: build the sink from settings, serve health, run until a signal.

SIGTERM and SIGINT start a clean shutdown (stop reading, drain uploads within the
grace period, commit what the service accepted) and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol

from confluent_kafka import Consumer, Producer

from cefpipe.binding import BindError
from cefpipe.kafka_logging import with_logger
from cefpipe.logconfig import configure_logging
from cefpipe.metrics import Health, MetricsServer, kafka_reachable_check
from cefpipe.settings import Settings, SinkSettings
from sink.batch import BatchLimits
from sink.credential import RenewableCredential, build_credential
from sink.dead_letter import DeadLetterWriter, producer_config
from sink.delivery import ConfigFault, Delivery, DeliveryPolicy
from sink.inflight import InFlight
from sink.ratelimit import RateLimiter
from sink.retry import Backoff
from sink.uploader import Uploader
from sink.worker import SinkWorker, WorkerLimits, consumer_config

logger = logging.getLogger(__name__)

# The consuming loop iterates every fraction of a second unless a revocation
# is draining, which may take the whole grace period.
_LOOP_STALL_MARGIN_SECS = 60.0


@dataclass
class SinkApp:
    """Every long-lived part of one sink process, built from settings.

    Tests build one in-process and run :attr:`worker` on a thread; the command
    line runs it on the main thread. :meth:`close` is safe to call twice.
    """

    worker: SinkWorker
    health: Health
    uploader: Uploader
    credential: RenewableCredential

    @classmethod
    def build(
        cls,
        settings: Settings,
        group_id: str | None = None,
        **client_options: Any,
    ) -> SinkApp:
        """Wire the sink together; connects to nothing until the worker runs.

        Args:
            settings: the process settings.
            group_id: the Kafka consumer group; ``SINK_CONSUMER_GROUP`` if None.
            client_options: extra keyword arguments for the SDK client.
        """
        sink = settings.sink
        cancel = threading.Event()
        fault = ConfigFault()
        credential = RenewableCredential(lambda: build_credential(sink))
        uploader = Uploader(sink, credential, **client_options)
        limits = BatchLimits.from_settings(sink)
        delivery = Delivery(
            uploader=uploader,
            credential=credential,
            limits=limits,
            rate_limiter=RateLimiter(
                sink.max_requests_per_minute, sink.max_bytes_per_minute
            ),
            policy=_delivery_policy(sink),
            fault=fault,
            cancel=cancel,
        )
        kafka = settings.kafka
        worker = SinkWorker(
            consumer=Consumer(
                with_logger(
                    consumer_config(
                        kafka.bootstrap_servers,
                        group_id or sink.consumer_group,
                        settings.instance,
                    )
                )
            ),
            topic=kafka.topic_enriched,
            in_flight=InFlight(delivery.deliver),
            dead_letters=DeadLetterWriter(
                Producer(
                    with_logger(
                        producer_config(kafka.bootstrap_servers, settings.instance)
                    )
                ),
                topic=kafka.topic_dead_letter,
                source_topic=kafka.topic_enriched,
            ),
            fault=fault,
            cancel=cancel,
            limits=WorkerLimits(
                batch=limits,
                flush_interval_secs=sink.flush_interval_secs,
                max_in_flight=sink.max_in_flight,
                max_buffered_bytes=sink.max_buffered_bytes,
                shutdown_grace_secs=sink.shutdown_grace_secs,
            ),
        )
        health = Health()
        register_health_checks(health, worker, fault, sink)
        health.register("kafka", kafka_reachable_check(kafka.bootstrap_servers))
        return cls(
            worker=worker, health=health, uploader=uploader, credential=credential
        )

    def close(self) -> None:
        self.uploader.close()
        self.credential.close()


def run(settings: Settings) -> int:
    """Run the sink until SIGTERM or SIGINT; return the exit code."""
    configure_logging(
        "sink", settings.instance, settings.log_level, settings.log_format
    )
    sink = settings.sink
    logger.info(
        "sink starting endpoint=%s rule=%s stream=%s topic=%s local_emulator=%s",
        sink.endpoint,
        sink.dcr_immutable_id,
        sink.stream_name,
        settings.kafka.topic_enriched,
        sink.uses_local_emulator,
    )
    app = SinkApp.build(settings)
    try:
        server = MetricsServer(
            settings.metrics_bind_host,
            sink.metrics_port,
            app.health,
            port_setting="SINK_METRICS_PORT",
        ).start()
    except BindError as exc:
        logger.error("sink could not start: %s", exc)
        app.close()
        return 1
    _stop_on_signals(app.worker)
    try:
        return app.worker.run()
    finally:
        app.close()
        server.stop()


def _delivery_policy(sink: SinkSettings) -> DeliveryPolicy:
    return DeliveryPolicy(
        retry_max_secs=sink.retry_max_secs,
        # A held batch asks again at the slowest retry pace: a role assignment
        # can take up to half an hour to reach the service.
        probe_interval_secs=sink.retry_max_backoff_secs,
        backoff=Backoff(sink.retry_initial_backoff_secs, sink.retry_max_backoff_secs),
    )


class WorkerProgress(Protocol):
    """What the health checks read from the worker (see :class:`SinkWorker`)."""

    def outstanding_rows(self) -> int: ...

    def secs_since_loop(self) -> float: ...

    def secs_since_progress(self) -> float: ...


def register_health_checks(
    health: Health, worker: WorkerProgress, fault: ConfigFault, sink: SinkSettings
) -> None:
    """Unhealthy on a configuration fault, a stalled loop, or rows that never commit.

    "Never" means longer than a batch may spend retrying before it is
    dead-lettered, plus one attempt's timeouts and a flush interval.
    """
    loop_stall_secs = sink.shutdown_grace_secs + _LOOP_STALL_MARGIN_SECS
    stuck_secs = (
        sink.retry_max_secs
        + sink.connect_timeout_secs
        + sink.read_timeout_secs
        + sink.flush_interval_secs
        + _LOOP_STALL_MARGIN_SECS
    )

    def uploads() -> tuple[bool, str]:
        return (not fault.active, fault.describe())

    def consuming() -> tuple[bool, str]:
        idle = worker.secs_since_loop()
        return idle < loop_stall_secs, f"last loop {idle:.0f}s ago"

    def committing() -> tuple[bool, str]:
        outstanding = worker.outstanding_rows()
        since = worker.secs_since_progress()
        stuck = outstanding > 0 and since > stuck_secs
        return (
            not stuck,
            f"{outstanding} rows uncommitted, last commit {since:.0f}s ago",
        )

    health.register("uploads", uploads)
    health.register("consuming", consuming)
    health.register("committing", committing)


def _stop_on_signals(worker: SinkWorker) -> None:
    def stop(signum: int, frame: FrameType | None) -> None:
        logger.info("signal %s received, shutting down", signal.Signals(signum).name)
        worker.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
