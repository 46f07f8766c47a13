"""Fixtures shared by the whole suite: a real Kafka broker and isolated topics.

The broker is Apache Kafka itself, fetched from Maven Central and run natively in
KRaft mode once per test session on free loopback ports; set
``KAFKA_BOOTSTRAP_SERVERS`` to run the suite against a broker you already have.
Every test that needs topics gets its own, named with a random suffix, so tests
never see each other's records.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cefpipe.kafka_broker import BrokerConfig, LocalBroker
from cefpipe.ports import free_port
from cefpipe.settings import DEFAULT_KAFKA_VERSION
from cefpipe.topics import ensure_topics

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a running broker, started for this session if needed."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        yield external
        return
    config = BrokerConfig(
        home=tmp_path_factory.mktemp("kafka-home"),
        cache_dir=Path.home() / ".cache" / "cefpipe",
        version=DEFAULT_KAFKA_VERSION,
        broker_port=free_port(),
        controller_port=free_port(),
        heap_mb=768,
    )
    broker = LocalBroker(config)
    broker.start()
    try:
        yield config.bootstrap_servers
    finally:
        broker.stop()


@dataclass(frozen=True)
class PipelineTopics:
    raw: str
    enriched: str
    dead_letter: str

    def env(self) -> dict[str, str]:
        """The settings that point a cefpipe process at these topics."""
        return {
            "TOPIC_RAW": self.raw,
            "TOPIC_ENRICHED": self.enriched,
            "TOPIC_DEAD_LETTER": self.dead_letter,
        }


@pytest.fixture
def pipeline_topics(kafka_bootstrap: str) -> PipelineTopics:
    """Fresh raw, enriched and dead-letter topics (4 partitions) for one test."""
    suffix = uuid.uuid4().hex[:10]
    topics = PipelineTopics(
        raw=f"test-raw-{suffix}",
        enriched=f"test-enriched-{suffix}",
        dead_letter=f"test-dead-letter-{suffix}",
    )
    ensure_topics(kafka_bootstrap, (topics.raw, topics.enriched, topics.dead_letter), 4)
    return topics
