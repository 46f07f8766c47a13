"""Create the pipeline's three topics explicitly, with enough partitions to scale.

Relying on broker auto-creation gives whatever ``num.partitions`` the broker has,
which silently caps how many enrich and sink workers can share the load.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from cefpipe.kafka_logging import with_logger
from cefpipe.settings import KafkaSettings, Settings

logger = logging.getLogger(__name__)


def pipeline_topics(kafka: KafkaSettings) -> tuple[str, str, str]:
    return (kafka.topic_raw, kafka.topic_enriched, kafka.topic_dead_letter)


def ensure_topics(
    bootstrap_servers: str,
    names: tuple[str, ...],
    partitions: int,
    timeout_secs: float = 30.0,
) -> None:
    """Create each topic that does not exist yet; safe to call any number of times.

    Raises:
        KafkaException: a topic could not be created for another reason than
            already existing.
    """
    admin = AdminClient(with_logger({"bootstrap.servers": bootstrap_servers}))
    cluster = admin.list_topics(timeout=timeout_secs)
    existing = cluster.topics
    # Three copies where the cluster has three brokers, else as many as it has.
    replication = max(1, min(3, len(cluster.brokers)))
    for name in names:
        if name in existing and len(existing[name].partitions) < partitions:
            logger.warning(
                "topic %s has %d partitions, fewer than the %d configured: at most "
                "that many workers of the stage reading it will get work",
                name,
                len(existing[name].partitions),
                partitions,
            )
    wanted = [
        NewTopic(name, num_partitions=partitions, replication_factor=replication)
        for name in names
        if name not in existing
    ]
    if not wanted:
        return
    for name, future in admin.create_topics(
        wanted, request_timeout=timeout_secs
    ).items():
        try:
            future.result()
            logger.info("created topic %s with %d partitions", name, partitions)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def run(settings: Settings) -> int:
    """``cefpipe topics``: create the raw, enriched and dead-letter topics."""
    from cefpipe.logconfig import configure_logging

    configure_logging(
        "topics", settings.instance, settings.log_level, settings.log_format
    )
    ensure_topics(
        settings.kafka.bootstrap_servers,
        pipeline_topics(settings.kafka),
        settings.kafka.topic_partitions,
    )
    print("topics ready: " + ", ".join(pipeline_topics(settings.kafka)))
    return 0
