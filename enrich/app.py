"""The Faust app: one agent that reads the raw topic in batches and enriches them.

Faust owns the consumer group, partition assignment and offset commits; the
agent's body owns parsing and delivery (see :mod:`enrich.batch`). Settings that
matter for correctness:

- ``at_least_once`` with manual acknowledgement: a batch is acknowledged to
  Faust only once Kafka acknowledged every row and dead letter it produced, while
  the agent already works on the next batches (bounded by
  ``ENRICH_MAX_IN_FLIGHT_EVENTS``).
- one actor per agent: in this Faust version ``concurrency > 1`` can commit past
  an unfinished message and lose it on a crash.
- no tables, no leader topic, no topic creation: the stage is stateless and the
  pipeline's topics are created explicitly, with enough partitions to scale.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import faust
from confluent_kafka import Producer

from cefpipe.kafka_logging import with_logger
from cefpipe.settings import Settings
from enrich.batch import BatchEnricher, batches_by_messages

logger = logging.getLogger(__name__)

_HEARTBEAT_SECS = 5.0
# Records per take: a packed record holds up to INGEST_RECORD_MAX_BYTES of
# messages, so this bounds the messages held before and during parsing.
_TAKE_MAX_RECORDS = 256
_DELIVERY_POLL_SECS = 0.002
_IDLE_POLL_SECS = 0.05


@dataclass
class EnrichRuntime:
    """What the health checks and the shutdown hook need to see of a running app."""

    app: faust.App
    enricher: BatchEnricher
    # Faust insists on a data directory even without tables; removed at exit.
    workdir: tempfile.TemporaryDirectory[str]
    last_heartbeat: float = field(default_factory=time.monotonic)
    batches: int = 0


def producer_config(settings: Settings) -> dict[str, Any]:
    """The librdkafka settings of the producer that writes rows and dead letters."""
    return {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "client.id": f"cefpipe-enrich-{settings.instance}",
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 5,
    }


def build_app(settings: Settings) -> EnrichRuntime:
    """Create the Faust app, its agent and the producer its agent writes with."""
    kafka = settings.kafka
    (settings.home / "enrich").mkdir(parents=True, exist_ok=True)
    workdir = tempfile.TemporaryDirectory(
        prefix=f"{settings.instance}-", dir=settings.home / "enrich"
    )
    app = faust.App(
        settings.enrich.consumer_group,
        broker=[
            f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")
        ],
        processing_guarantee="at_least_once",
        key_serializer="raw",
        value_serializer="raw",
        topic_disable_leader=True,
        topic_allow_declare=False,
        table_standby_replicas=0,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # A worker that died is noticed in seconds, not a minute, so its
        # partitions move to the others (heartbeats run off the event loop).
        broker_session_timeout=10.0,
        datadir=workdir.name,
        # A raw record may pack hundreds of messages: few records in memory.
        stream_buffer_maxsize=_TAKE_MAX_RECORDS,
    )
    producer = Producer(with_logger(producer_config(settings)))
    enricher = BatchEnricher(producer, kafka.topic_enriched, kafka.topic_dead_letter)
    runtime = EnrichRuntime(app, enricher, workdir)

    raw_topic = app.topic(kafka.topic_raw, key_type=bytes, value_type=bytes)
    batch_max = settings.enrich.batch_max_events
    batch_wait = settings.enrich.batch_wait_secs
    max_in_flight = settings.enrich.max_in_flight_events

    @app.agent(raw_topic, name="enrich-raw", concurrency=1)
    async def enrich_raw(stream: Any) -> None:
        acknowledger = asyncio.create_task(_acknowledge_completed(stream, runtime))
        try:
            async for events in stream.noack_take(_TAKE_MAX_RECORDS, within=batch_wait):
                messages = [event.message for event in events]
                for start, stop in batches_by_messages(messages, batch_max):
                    enricher.submit(messages[start:stop], events[start:stop])
                    runtime.batches += 1
                    while enricher.pending_messages > max_in_flight:
                        await asyncio.sleep(_DELIVERY_POLL_SECS)
        finally:
            acknowledger.cancel()

    @app.task  # type: ignore[untyped-decorator]
    async def drop_per_event_monitor() -> None:
        """Faust's Monitor sensor books every event; nothing here reads it.

        The stage exports its own metrics per batch, so the per-event work is
        pure overhead (it shows in profiles as a tenth of the worker's time).
        """
        app.sensors.remove(app.monitor)

    @app.timer(_HEARTBEAT_SECS)  # type: ignore[untyped-decorator]
    async def heartbeat() -> None:
        runtime.last_heartbeat = time.monotonic()

    @app.on_before_shutdown.connect
    async def flush_producer(
        sender: faust.App, /, *args: Any, signal: Any, **kwargs: Any
    ) -> None:
        remaining = enricher.flush(30.0)
        if remaining:
            logger.error(
                "%d enriched records were not delivered at shutdown", remaining
            )

    return runtime


async def _acknowledge_completed(stream: Any, runtime: EnrichRuntime) -> None:
    """Acknowledge each batch to Faust once Kafka acknowledged all its outputs.

    Faust commits only offsets of acknowledged events, and only up to the first
    gap, so a batch still in flight holds back the commit of everything after
    it on the same partition.
    """
    enricher = runtime.enricher
    while True:
        for batch in enricher.completed():
            for event in batch.tokens:
                await stream.ack(event)
        idle = enricher.pending_messages == 0
        await asyncio.sleep(_IDLE_POLL_SECS if idle else _DELIVERY_POLL_SECS)
