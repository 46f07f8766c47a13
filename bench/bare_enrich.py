"""The bare consume-parse-produce loop the Faust enrich worker is measured against.

Same work per message as the enrich stage (split packed records, ``enrich`` with
the same envelope and row id, ``encode_row``, produce to the enriched or
dead-letter topic with the enrich stage's producer settings), with none of the
stream machinery: confluent-kafka's consumer, a plain loop, and an asynchronous
commit after each batch without waiting for delivery. It is a ceiling, not a
design: it does not hold a commit back until its outputs are acknowledged.

Run by ``bench.bench_enrich`` as its own process until SIGTERM::

    python -m bench.bare_enrich BOOTSTRAP RAW ENRICHED DEAD GROUP
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import cast

from confluent_kafka import Consumer, Message, Producer

from cefpipe.records import (
    HEADER_COLLECTOR,
    HEADER_MESSAGES,
    HEADER_PEER,
    HEADER_RECEIVED_AT_US,
    Headers,
    header,
    unpack_messages,
)
from cefpipe.settings import Settings
from enrich.app import producer_config
from enrich.pipeline import Enriched, Envelope, encode_row, enrich

_BATCH_RECORDS = 2000  # ENRICH_BATCH_MAX_EVENTS's default


def _convert(record: Message, producer: Producer, enriched: str, dead: str) -> None:
    value = record.value() or b""
    headers = cast(Headers | None, record.headers())
    count = header(headers, HEADER_MESSAGES)
    messages = unpack_messages(value, int(count)) if count else [value]
    received = header(headers, HEADER_RECEIVED_AT_US) or "0"
    peer, collector = header(headers, HEADER_PEER), header(headers, HEADER_COLLECTOR)
    partition, offset, key = record.partition(), record.offset(), record.key()
    for index, message in enumerate(messages):
        row_id = f"{partition}-{offset}-{index}-{received}"  # as enrich.batch does
        envelope = Envelope(int(received), peer, collector, row_id)
        outcome = enrich(message, envelope)
        if isinstance(outcome, Enriched):
            _produce(producer, enriched, encode_row(outcome.row), key)
        else:
            _produce(producer, dead, message, key)


def _produce(producer: Producer, topic: str, value: bytes, key: bytes | None) -> None:
    while True:
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:
            producer.poll(0.01)


def run(bootstrap: str, raw: str, enriched: str, dead: str, group: str) -> int:
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": bootstrap})
    producer = Producer({**producer_config(settings), "client.id": "bench-bare-enrich"})
    consumer.subscribe([raw])
    while not stopping:
        records = [
            record
            for record in consumer.consume(_BATCH_RECORDS, 0.1)
            if record.error() is None
        ]
        for record in records:
            _convert(record, producer, enriched, dead)
        producer.poll(0)
        if records:
            consumer.commit(asynchronous=True)
    producer.flush(30)
    consumer.close()
    return 0


def main(argv: Sequence[str]) -> int:
    bootstrap, raw, enriched, dead, group = argv
    return run(bootstrap, raw, enriched, dead, group)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
