"""Hand raw syslog messages to Kafka with confluent-kafka, and push back when full.

The producer is idempotent with ``acks=all``, so a broker hiccup neither loses
nor duplicates what it already accepted, and a queued record waits for the broker
however long it is away (``message.timeout.ms`` 0) instead of being failed after
five minutes. The local queue is bounded in messages and in bytes; when it is
full the listener must stop reading from senders (TCP flow control then slows
them down) rather than spin or drop: :meth:`RawPublisher.publish` waits for room.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from cefpipe.kafka_logging import with_logger
from cefpipe.ratelog import RateLimitedLog
from cefpipe.records import DeadLetter, KafkaHeaders
from cefpipe.settings import Settings
from ingest import metrics

logger = logging.getLogger(__name__)


_POLL_INTERVAL_SECS = 0.05
_FULL_QUEUE_WAIT_SECS = 0.01


def producer_config(settings: Settings) -> dict[str, Any]:
    """The librdkafka settings of ingest's producer."""
    ingest = settings.ingest
    return {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "client.id": f"cefpipe-ingest-{settings.instance}",
        "enable.idempotence": True,
        "acks": "all",
        # 0 waits for the broker for ever; idempotence keeps the retries safe.
        "message.timeout.ms": 0,
        "compression.type": ingest.compression,
        "linger.ms": ingest.linger_ms,
        "queue.buffering.max.messages": ingest.queue_max_messages,
        "queue.buffering.max.kbytes": ingest.queue_max_kbytes,
        # Settings keep payloads under MAX_KAFKA_RECORD_PAYLOAD_BYTES; this
        # leaves room for the packing's frames and the headers.
        "message.max.bytes": 1_048_576,
    }


class RawPublisher:
    """Publishes raw messages and ingest's own dead letters.

    Call :meth:`run_delivery_reports` as a task for the publisher's lifetime and
    :meth:`close` once at shutdown.
    """

    def __init__(self, settings: Settings) -> None:
        ingest = settings.ingest
        self._topic = settings.kafka.topic_raw
        self._dead_letter_topic = settings.kafka.topic_dead_letter
        self._keyed = ingest.partitioning == "sender"
        self._producer = Producer(with_logger(producer_config(settings)))
        self._failures = RateLimitedLog(logger)
        self.last_delivery_error: str | None = None
        self.last_delivery_ok = time.monotonic()
        # When the queue was last seen going from empty to holding messages.
        self._waiting_since: float | None = None

    def try_publish(
        self, value: bytes, key: bytes, headers: KafkaHeaders, messages: int = 1
    ) -> bool:
        """Queue one raw record of ``messages`` messages; False if the queue is full.

        A record the client refuses outright (it cannot ever be sent) counts as
        a failed delivery, like one the broker refuses later.
        """
        try:
            self._producer.produce(
                self._topic,
                value,
                key if self._keyed else None,
                headers=headers,
                on_delivery=self._on_delivery
                if messages == 1
                else self._batch_delivery(messages),
            )
        except BufferError:
            return False
        except KafkaException as exc:
            self._delivery_failed(exc.args[0], messages)
        return True

    async def publish(
        self, value: bytes, key: bytes, headers: KafkaHeaders, messages: int = 1
    ) -> None:
        """Queue one raw record, waiting (so not reading) while the queue is full."""
        if self.try_publish(value, key, headers, messages):
            return
        started = time.monotonic()
        while not self.try_publish(value, key, headers, messages):
            self._producer.poll(0)
            await asyncio.sleep(_FULL_QUEUE_WAIT_SECS)
        metrics.BACKPRESSURE_SECONDS.inc(time.monotonic() - started)

    async def dead_letter(
        self, value: bytes, dead: DeadLetter, headers: KafkaHeaders
    ) -> None:
        """Send bytes that will never become a raw record to the dead-letter topic."""
        while True:
            try:
                self._producer.produce(
                    self._dead_letter_topic,
                    value,
                    headers=dead.headers(headers),
                    on_delivery=self._on_dead_letter_delivery,
                )
                break
            except BufferError:
                self._producer.poll(0)
                await asyncio.sleep(_FULL_QUEUE_WAIT_SECS)
        metrics.MESSAGES_DEAD_LETTERED.labels(dead.reason).inc()

    async def run_delivery_reports(self) -> None:
        """Serve delivery reports until cancelled; they update metrics and health."""
        while True:
            self._producer.poll(0)
            queued = len(self._producer)
            metrics.PRODUCER_QUEUE.set(queued)
            if not queued:
                self._waiting_since = None
            elif self._waiting_since is None:
                self._waiting_since = time.monotonic()
            await asyncio.sleep(_POLL_INTERVAL_SECS)

    def stalled_secs(self) -> float:
        """How long messages have been queued with none delivered; 0 if none wait.

        Measured by :meth:`run_delivery_reports`, so 0 when that is not running.
        """
        since = self._waiting_since
        if since is None:
            return 0.0
        return time.monotonic() - max(since, self.last_delivery_ok)

    def health(self, stall_secs: float) -> tuple[bool, str]:
        """Unhealthy when nothing was delivered for ``stall_secs`` though it should.

        That is while messages wait in the queue (the broker is away: records
        wait for it rather than fail), or after a delivery failed. Cheap and safe
        to call from the metrics server's thread.
        """
        queued = self.queued
        stalled = self.stalled_secs()
        if stalled >= stall_secs:
            return False, (
                f"{queued} messages queued and none delivered for {stalled:.0f}s; "
                "is the broker reachable?"
            )
        if self.last_delivery_error is None:
            return True, f"{queued} queued"
        since_ok = time.monotonic() - self.last_delivery_ok
        return since_ok < stall_secs, (
            f"last delivery failed ({self.last_delivery_error}); "
            f"no delivery for {since_ok:.0f}s"
        )

    def close(self, timeout_secs: float) -> int:
        """Deliver what is queued within ``timeout_secs``; return how many were not."""
        remaining = int(self._producer.flush(timeout_secs))
        if remaining:
            logger.error(
                "%d messages were still queued for Kafka when ingest stopped and "
                "are lost; was the broker reachable?",
                remaining,
            )
        return remaining

    @property
    def queued(self) -> int:
        return len(self._producer)

    def _on_delivery(
        self, error: KafkaError | None, message: Message, messages: int = 1
    ) -> None:
        if error is None:
            metrics.MESSAGES_PUBLISHED.inc(messages)
            metrics.RECORDS_PUBLISHED.inc()
            self.last_delivery_ok = time.monotonic()
            self.last_delivery_error = None
            return
        self._delivery_failed(error, messages)

    def _batch_delivery(
        self, messages: int
    ) -> Callable[[KafkaError | None, Message], None]:
        return lambda error, message: self._on_delivery(error, message, messages)

    def _on_dead_letter_delivery(
        self, error: KafkaError | None, message: Message
    ) -> None:
        if error is not None:
            self._delivery_failed(error, 1)

    def _delivery_failed(self, error: KafkaError, messages: int) -> None:
        metrics.ERRORS.labels("ingest", "delivery").inc(messages)
        self.last_delivery_error = error.str()
        self._failures.log(
            logging.ERROR,
            "delivery",
            "Kafka refused a record of %d messages after all retries, lost: %s",
            messages,
            error.str(),
        )
