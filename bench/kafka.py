"""The broker a benchmark runs against, and the topic bookkeeping every script does.

A benchmark starts its own broker (free loopback ports, a temporary home) unless
``KAFKA_BOOTSTRAP_SERVERS`` names one; ``run_all`` starts one and shares it.
Topics get a random suffix, so rounds and scripts never read each other's
records. Counting a topic's records by its end offsets costs one request per
partition and reads nothing, so it can be sampled while a stage runs.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from cefpipe.kafka_broker import BrokerConfig, LocalBroker
from cefpipe.ports import free_port
from cefpipe.records import (
    HEADER_COLLECTOR,
    HEADER_PEER,
    HEADER_RECEIVED_AT_US,
    HEADER_TRANSPORT,
)
from cefpipe.settings import DEFAULT_KAFKA_VERSION, Settings
from cefpipe.topics import ensure_topics
from ingest.publisher import producer_config

PARTITIONS = 8  # the pipeline's default TOPIC_PARTITIONS


@dataclass(frozen=True)
class Broker:
    """Where the broker answers, and its pid when this process started it."""

    bootstrap: str
    pid: int | None
    external: bool


@contextmanager
def running_broker(work: Path) -> Iterator[Broker]:
    """The broker to use: ``KAFKA_BOOTSTRAP_SERVERS`` if set, else a private one."""
    settings = Settings.from_env()
    if settings.kafka.external:
        yield Broker(settings.kafka.bootstrap_servers, None, external=True)
        return
    config = BrokerConfig(
        home=work / "kafka-home",
        cache_dir=settings.cache_dir,
        version=DEFAULT_KAFKA_VERSION,
        broker_port=free_port(),
        controller_port=free_port(),
        heap_mb=768,
    )
    broker = LocalBroker(config)
    try:
        broker.start()
        yield Broker(config.bootstrap_servers, broker.running_pid(), external=False)
    finally:
        gc.collect()  # closes forgotten clients now, not noisily after the broker
        broker.stop()


def new_topics(bootstrap: str, *roles: str) -> list[str]:
    """Fresh topics named ``bench-<role>-<suffix>``, 8 partitions each."""
    suffix = uuid.uuid4().hex[:8]
    names = [f"bench-{role}-{suffix}" for role in roles]
    ensure_topics(bootstrap, tuple(names), PARTITIONS)
    _wait_for_leaders(AdminClient({"bootstrap.servers": bootstrap}), names)
    return names


def _wait_for_leaders(admin: AdminClient, names: Sequence[str]) -> None:
    """Created topics answer offset requests only once every partition has a leader."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=10).topics
        if all(
            name in topics
            and len(topics[name].partitions) == PARTITIONS
            and all(p.leader >= 0 for p in topics[name].partitions.values())
            for name in names
        ):
            return
        time.sleep(0.1)


def delete_topics(bootstrap: str, names: Sequence[str]) -> None:
    """Drop topics a round no longer needs, so the broker's disk stays small."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(list(names), operation_timeout=30).values():
        with contextlib.suppress(KafkaException):  # already gone: nothing to clean
            future.result()


def delete_group(bootstrap: str, group: str, timeout_secs: float = 30.0) -> None:
    """Forget a consumer group's offsets once its members have left.

    The enrich and sink stages use fixed group names, so a second run on the
    same topic would otherwise start where the first one stopped.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout_secs
    while True:
        future = admin.delete_consumer_groups([group], request_timeout=10)[group]
        try:
            future.result()
            return
        except KafkaException as exc:
            error = exc.args[0]
            if error.name() == "GROUP_ID_NOT_FOUND":
                return
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


class TopicCounter:
    """Counts the records in topics by their end offsets; one instance per script.

    Use as a context manager, so its client is closed before the broker stops.
    """

    def __init__(self, bootstrap: str) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "bench-counter"}
        )

    def records(self, topic: str) -> int:
        """Records in ``topic``; retries while a partition is changing leader."""
        for attempt in range(50):
            try:
                return sum(high - low for low, high in self._offsets(topic))
            except KafkaException:
                if attempt == 49:
                    raise
                time.sleep(0.1)
        return 0

    def _offsets(self, topic: str) -> list[tuple[int, int]]:
        return [
            self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            for p in range(PARTITIONS)
        ]

    def per_partition(self, topic: str) -> list[int]:
        return [
            self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[
                1
            ]
            for p in range(PARTITIONS)
        ]

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> TopicCounter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def ingest_producer_config(bootstrap: str) -> dict[str, object]:
    """The producer settings ingest publishes with, on its default settings."""
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": bootstrap})
    return {**producer_config(settings), "client.id": "bench-bare-producer"}


def raw_headers(
    sender: str, received_at_us: int
) -> list[tuple[str, str | bytes | None]]:
    """Headers ingest stamps on a raw record from ``sender`` (see cefpipe.records)."""
    return [
        (HEADER_RECEIVED_AT_US, str(received_at_us).encode()),
        (HEADER_PEER, f"{sender}:40000".encode()),
        (HEADER_TRANSPORT, b"tcp"),
        (HEADER_COLLECTOR, b"bench"),
    ]


def produce_all(
    producer: Producer,
    topic: str,
    values: Sequence[bytes],
    keys: Sequence[bytes | None],
    headers: Sequence[list[tuple[str, str | bytes | None]] | None],
) -> int:
    """Produce every value and wait for the broker; return how many it acknowledged."""
    acknowledged = 0

    def on_delivery(error: object, _: object) -> None:
        nonlocal acknowledged
        if error is None:
            acknowledged += 1

    for index, value in enumerate(values):
        while True:
            try:
                producer.produce(
                    topic,
                    value,
                    keys[index],
                    headers=headers[index],
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.005)
        if index % 1000 == 0:
            producer.poll(0)
    producer.flush(120)
    return acknowledged


RecordHeaders = list[tuple[str, str | bytes | None]]


@dataclass(frozen=True)
class StoredRecord:
    value: bytes
    key: bytes | None
    headers: RecordHeaders | None


def read_topic(bootstrap: str, topic: str, count: int) -> list[StoredRecord]:
    """The first ``count`` records of ``topic`` (every partition), to replay them."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records: list[StoredRecord] = []
    deadline = time.monotonic() + 120
    try:
        while len(records) < count and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error() is None:
                    headers = cast(RecordHeaders | None, message.headers())
                    records.append(
                        StoredRecord(message.value() or b"", message.key(), headers)
                    )
    finally:
        consumer.close()
    return records


def replay(bootstrap: str, topic: str, records: Sequence[StoredRecord]) -> None:
    """Write ``records`` to ``topic`` as fast as the broker takes them."""
    producer = Producer(ingest_producer_config(bootstrap))
    produce_all(
        producer,
        topic,
        [record.value for record in records],
        [record.key for record in records],
        [record.headers for record in records],
    )


def wait_for_members(
    bootstrap: str, group: str, members: int, timeout_secs: float = 90.0
) -> None:
    """Wait until ``group`` is stable with ``members`` members, each assigned work."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout_secs
    while time.monotonic() < deadline:
        try:
            future = admin.describe_consumer_groups([group], request_timeout=5)[group]
            description = future.result()
        except KafkaException:
            time.sleep(0.3)  # the coordinator is still loading
            continue
        if (
            description.state.name == "STABLE"
            and len(description.members) == members
            and all(m.assignment.topic_partitions for m in description.members)
        ):
            return
        time.sleep(0.3)
    raise RuntimeError(f"group {group} did not settle with {members} members")


def set_env(**values: str) -> dict[str, str]:
    """The current environment plus ``values``, for a child process."""
    return {**os.environ, **values}
