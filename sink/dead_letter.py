"""Rows the service will never take go to the dead-letter topic, never away.

A row is dead-lettered with its original bytes and headers saying the sink gave
up, why, and where it came from. Its offset counts as done only once the broker
acknowledged the dead letter, so a crash in between redelivers the row rather
than losing it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from cefpipe.records import DeadLetter
from sink.row import Row

logger = logging.getLogger(__name__)

STAGE = "sink"

# Stable reason codes of the sink's dead letters.
REASON_ROW_TOO_LARGE = "row_too_large"
REASON_ROW_REJECTED = "row_rejected"
REASON_RETRIES_EXHAUSTED = "retries_exhausted"
REASON_NOT_A_JSON_OBJECT = "not_a_json_object"


@dataclass(frozen=True)
class Rejection:
    """Why rows are being dead-lettered, shared by every row of one decision.

    Args:
        reason: one of the stable reason codes above.
        message: one human sentence.
        detail: the service's error code and request id, when there was one.
    """

    reason: str
    message: str
    detail: str = ""


# A row too large for any request, found before it was sent.
TOO_LARGE_FOR_ANY_REQUEST = Rejection(
    reason=REASON_ROW_TOO_LARGE,
    message="The row does not fit in one request even on its own.",
)


Acked = Callable[[Row, Rejection], None]
Failed = Callable[[Row, Rejection, str], None]


class DeadLetterWriter:
    """Produces dead letters and reports each acknowledgement or failure.

    Callbacks run inside :meth:`poll`, on the thread that calls it (the
    consuming thread). Not for concurrent use.

    Args:
        producer: an idempotent, acks=all producer (see :func:`producer_config`).
        topic: the dead-letter topic.
        source_topic: the topic the rows were read from, for the source header.
    """

    def __init__(self, producer: Producer, topic: str, source_topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._source_topic = source_topic
        self.waiting = 0

    def send(
        self, row: Row, rejection: Rejection, on_acked: Acked, on_failed: Failed
    ) -> None:
        """Queue one dead letter; exactly one of the callbacks fires later."""
        letter = DeadLetter(
            stage=STAGE,
            reason=rejection.reason,
            message=rejection.message,
            source=row.source(self._source_topic),
            detail=rejection.detail,
        )

        def delivered(error: KafkaError | None, message: Message) -> None:
            self.waiting -= 1
            if error is None:
                on_acked(row, rejection)
            else:
                on_failed(row, rejection, str(error))

        while True:
            try:
                self._producer.produce(
                    self._topic,
                    value=row.value,
                    key=f"{row.partition}-{row.offset}".encode(),
                    headers=letter.headers(),
                    on_delivery=delivered,
                )
                break
            except BufferError:  # local queue full: let deliveries drain first
                self._producer.poll(0.1)
        self.waiting += 1

    def poll(self, timeout_secs: float = 0.0) -> None:
        """Serve delivery callbacks that are due."""
        self._producer.poll(timeout_secs)

    def flush(self, timeout_secs: float) -> int:
        """Wait up to ``timeout_secs`` for every queued dead letter; return the rest."""
        remaining: int = self._producer.flush(timeout_secs)
        return remaining

    def close(self) -> None:
        """Drop what is still unacknowledged and close the producer.

        Call after the last commit: rows whose dead letters are dropped here
        were never counted done, so they are read and dead-lettered again.
        """
        self._producer.purge()
        self._producer.flush(0)
        self._producer.close()


def producer_config(bootstrap_servers: str, instance: str) -> dict[str, Any]:
    """Settings for the dead-letter producer: nothing acknowledged can be lost."""
    return {
        "bootstrap.servers": bootstrap_servers,
        "client.id": f"cefpipe-sink-dead-letter-{instance}",
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 20,
    }
