"""Reading what the pipeline wrote, straight from the broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer

from cefpipe.records import unpack_messages


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


def messages_of(records: list[Record]) -> list[bytes]:
    """The syslog messages raw records carry, unpacking packed records."""
    messages: list[bytes] = []
    for record in records:
        count = record.headers.get("messages")
        if count is None:
            messages.append(record.value)
        else:
            messages.extend(unpack_messages(record.value, int(count)))
    return messages


def read_messages(
    bootstrap: str, topic: str, expected: int, timeout_secs: float = 60.0
) -> list[bytes]:
    """The syslog messages of a raw topic, once ``expected`` of them arrived."""
    return messages_of(
        read_records(bootstrap, topic, expected, timeout_secs, count=_message_count)
    )


def _message_count(records: list[Record]) -> int:
    return sum(int(r.headers.get("messages", b"1")) for r in records)


def read_records(
    bootstrap: str,
    topic: str,
    expected: int,
    timeout_secs: float = 60.0,
    count: Callable[[list[Record]], int] = len,
) -> list[Record]:
    """Read a topic from the start until ``expected`` records arrived or time ran out.

    Keeps reading one more second after reaching ``expected`` so that a test
    also sees records that should not be there.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records: list[Record] = []
    deadline = time.monotonic() + timeout_secs
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if settle_until is not None and time.monotonic() > settle_until:
                break
            for message in consumer.consume(500, timeout=0.5):
                if message.error() is not None:
                    continue
                records.append(
                    Record(
                        message.topic(),
                        message.partition(),
                        message.offset(),
                        message.key(),
                        message.value() or b"",
                        {
                            name: value
                            for name, value in (message.headers() or [])
                            if isinstance(value, bytes)
                        },
                    )
                )
            if count(records) >= expected and settle_until is None:
                settle_until = time.monotonic() + 1.0
    finally:
        consumer.close()
    return records
