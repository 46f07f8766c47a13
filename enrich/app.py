"""The Faust app: one agent that reads the raw topic in batches and enriches them.

Faust owns the consumer group, partition assignment and offset commits; the
agent's body owns parsing and delivery (see :mod:`enrich.batch`). Settings that
matter for correctness:

- ``at_least_once``: a batch is acknowledged only after its body returned,
  which is after Kafka acknowledged every row and dead letter it produced.
- one actor per agent: in this Faust version ``concurrency > 1`` can commit past
  an unfinished message and lose it on a crash.
- no tables, no leader topic, no topic creation: the stage is stateless and the
  pipeline's topics are created explicitly, with enough partitions to scale.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import faust
from confluent_kafka import Producer

from cefpipe.settings import Settings
from enrich.batch import BatchEnricher

logger = logging.getLogger(__name__)

APP_ID = "cefpipe-enrich"
_HEARTBEAT_SECS = 5.0


@dataclass
class EnrichRuntime:
    """What the health checks and the shutdown hook need to see of a running app."""

    app: faust.App
    producer: Producer
    enricher: BatchEnricher
    last_heartbeat: float = field(default_factory=time.monotonic)
    batches: int = 0


def build_app(settings: Settings) -> EnrichRuntime:
    """Create the Faust app, its agent and the producer its agent writes with."""
    kafka = settings.kafka
    app = faust.App(
        APP_ID,
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
        datadir=tempfile.mkdtemp(prefix="cefpipe-enrich-"),
    )
    producer = Producer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "client.id": f"cefpipe-enrich-{settings.instance}",
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 5,
        }
    )
    enricher = BatchEnricher(producer, kafka.topic_enriched, kafka.topic_dead_letter)
    runtime = EnrichRuntime(app, producer, enricher)

    raw_topic = app.topic(kafka.topic_raw, key_type=bytes, value_type=bytes)
    batch_max = settings.enrich.batch_max_events
    batch_wait = settings.enrich.batch_wait_secs

    @app.agent(raw_topic, name="enrich-raw", concurrency=1)
    async def enrich_raw(stream: Any) -> None:
        async for events in stream.take_events(batch_max, within=batch_wait):
            await enricher.handle([event.message for event in events])
            runtime.batches += 1

    @app.timer(_HEARTBEAT_SECS)  # type: ignore[untyped-decorator]
    async def heartbeat() -> None:
        runtime.last_heartbeat = time.monotonic()

    @app.on_before_shutdown.connect
    async def flush_producer(
        sender: faust.App, /, *args: Any, signal: Any, **kwargs: Any
    ) -> None:
        remaining = producer.flush(30.0)
        if remaining:
            logger.error(
                "%d enriched records were not delivered at shutdown", remaining
            )

    return runtime
