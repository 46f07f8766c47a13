"""``cefpipe dead-letters``: what the pipeline could not carry, and why.

Reads the newest records of the dead-letter topic (every partition) without
joining a consumer group, so looking never moves anyone's offsets.
"""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import asdict

from confluent_kafka import Consumer, KafkaException, TopicPartition

from cefpipe.kafka_broker import is_reachable
from cefpipe.kafka_logging import with_logger
from cefpipe.records import DeadLetter, Headers
from cefpipe.settings import Settings

_PREVIEW_CHARS = 160


def newest_dead_letters(
    settings: Settings, limit: int
) -> list[tuple[DeadLetter, bytes, int]]:
    """Up to ``limit`` newest dead letters as (why, original bytes, timestamp ms)."""
    topic = settings.kafka.topic_dead_letter
    consumer = Consumer(
        with_logger(
            {
                "bootstrap.servers": settings.kafka.bootstrap_servers,
                "group.id": f"cefpipe-inspect-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
            }
        )
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        assignments = []
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10
            )
            if high > low:
                assignments.append(
                    TopicPartition(topic, partition, max(low, high - limit))
                )
        if not assignments:
            return []
        consumer.assign(assignments)
        wanted = sum(
            consumer.get_watermark_offsets(tp, timeout=10)[1] - tp.offset
            for tp in assignments
        )
        found: list[tuple[DeadLetter, bytes, int]] = []
        while len(found) < wanted:
            batch = consumer.consume(500, timeout=5.0)
            if not batch:
                break
            for message in batch:
                if message.error() is None:
                    found.append(
                        (
                            DeadLetter.from_headers(_as_pairs(message.headers())),
                            message.value() or b"",
                            message.timestamp()[1],
                        )
                    )
    finally:
        consumer.close()
    found.sort(key=lambda item: item[2])
    return found[-limit:]


def _as_pairs(headers: object) -> Headers:
    """confluent-kafka returns headers as a list of pairs (or None)."""
    return headers if isinstance(headers, list) else []


def run(settings: Settings, *, limit: int, as_json: bool) -> int:
    bootstrap = settings.kafka.bootstrap_servers
    if not is_reachable(bootstrap):
        print(
            f"cefpipe dead-letters: no Kafka broker answers at {bootstrap}",
            file=sys.stderr,
        )
        return 1
    try:
        letters = newest_dead_letters(settings, limit)
    except KafkaException as exc:
        print(f"cefpipe dead-letters: {exc.args[0].str()}", file=sys.stderr)
        return 1
    for dead, value, timestamp_ms in letters:
        text = value.decode("utf-8", "replace")
        if as_json:
            print(
                json.dumps(
                    {**asdict(dead), "timestamp_ms": timestamp_ms, "value": text}
                )
            )
        else:
            preview = (
                text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "…"
            )
            print(f"[{dead.stage}] {dead.reason}: {dead.message}")
            print(f"    from {dead.source}{'  ' + dead.detail if dead.detail else ''}")
            print(f"    {preview!r}")
    if not as_json:
        print(f"{len(letters)} dead letters shown", file=sys.stderr)
    return 0
