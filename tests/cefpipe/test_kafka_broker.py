"""The native broker really runs Kafka: topics can be created, written and read."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from cefpipe.kafka_broker import (
    BrokerConfig,
    BrokerError,
    LocalBroker,
    _cluster_id,
    cluster_id_at,
    is_reachable,
)
from cefpipe.settings import DEFAULT_KAFKA_VERSION
from tests.conftest import PipelineTopics, free_port

pytestmark = pytest.mark.broker


def test_broker_answers_metadata_requests(kafka_bootstrap: str) -> None:
    assert is_reachable(kafka_bootstrap)


def test_nothing_answers_on_an_unused_port() -> None:
    assert not is_reachable(f"127.0.0.1:{free_port()}", timeout_secs=1.0)


def test_records_round_trip_through_the_broker(
    kafka_bootstrap: str, pipeline_topics: PipelineTopics
) -> None:
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "compression.type": "lz4"}
    )
    for index in range(100):
        producer.produce(pipeline_topics.raw, f"message {index}".encode(), key=b"k")
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([pipeline_topics.raw])
    received: list[bytes] = []
    try:
        for _ in range(60):
            for message in consumer.consume(200, timeout=1.0):
                assert message.error() is None
                received.append(message.value())
            if len(received) >= 100:
                break
    finally:
        consumer.close()
    assert received == [f"message {index}".encode() for index in range(100)]


def test_a_second_broker_on_a_taken_port_refuses_to_start(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    taken = int(kafka_bootstrap.rsplit(":", 1)[1])
    broker = LocalBroker(
        BrokerConfig(
            home=tmp_path,
            cache_dir=Path.home() / ".cache" / "cefpipe",
            version=DEFAULT_KAFKA_VERSION,
            broker_port=taken,
            controller_port=free_port(),
        )
    )
    with pytest.raises(BrokerError, match="already in use"):
        broker.start()
    assert broker.running_pid() is None


def test_cluster_ids_never_start_with_a_dash() -> None:
    assert not any(_cluster_id().startswith("-") for _ in range(2000))


def test_the_answering_cluster_is_identified(kafka_bootstrap: str) -> None:
    assert cluster_id_at(kafka_bootstrap)
    assert cluster_id_at(f"127.0.0.1:{free_port()}", timeout_secs=1.0) is None
