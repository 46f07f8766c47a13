"""``cefpipe kafka start|stop|status``: the local broker from the command line."""

from __future__ import annotations

from cefpipe.kafka_broker import BrokerConfig, BrokerError, LocalBroker, is_reachable
from cefpipe.logconfig import configure_logging
from cefpipe.settings import Settings
from cefpipe.topics import ensure_topics, pipeline_topics


def broker_config(settings: Settings) -> BrokerConfig:
    kafka = settings.kafka
    return BrokerConfig(
        home=settings.home,
        cache_dir=settings.cache_dir,
        version=kafka.version,
        broker_port=kafka.broker_port,
        controller_port=kafka.controller_port,
        heap_mb=kafka.heap_mb,
        partitions=kafka.topic_partitions,
    )


def run(settings: Settings, action: str) -> int:
    configure_logging(
        "kafka", settings.instance, settings.log_level, settings.log_format
    )
    kafka = settings.kafka
    if kafka.external:
        reachable = is_reachable(kafka.bootstrap_servers)
        state = "reachable" if reachable else "NOT reachable"
        print(
            "using the broker at KAFKA_BOOTSTRAP_SERVERS="
            f"{kafka.bootstrap_servers} ({state})"
        )
        if action == "start" and reachable:
            ensure_topics(
                kafka.bootstrap_servers, pipeline_topics(kafka), kafka.topic_partitions
            )
        return 0 if reachable or action == "stop" else 1

    broker = LocalBroker(broker_config(settings))
    try:
        if action == "start":
            broker.start()
            ensure_topics(
                kafka.bootstrap_servers, pipeline_topics(kafka), kafka.topic_partitions
            )
            print(f"Kafka {kafka.version} running at {kafka.bootstrap_servers}")
            return 0
        if action == "stop":
            stopped = broker.stop()
            print("Kafka stopped" if stopped else "Kafka was not running")
            return 0
    except BrokerError as exc:
        print(f"cefpipe kafka {action}: {exc}")
        return 1

    pid = broker.running_pid()
    if pid is not None and is_reachable(kafka.bootstrap_servers):
        print(f"Kafka running at {kafka.bootstrap_servers} (pid {pid})")
        return 0
    print("Kafka not running" if pid is None else f"Kafka pid {pid} not answering")
    return 1
