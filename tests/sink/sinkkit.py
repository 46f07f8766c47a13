"""Helpers for sink tests on a real broker: fill a topic, run a sink, count rows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from cefpipe.settings import Settings
from emulator.server import EmulatorThread
from sink.main import SinkApp
from tests.conftest import REPO_ROOT, PipelineTopics
from tests.sink.rows import enriched_value
from tests.support.kafka import Record, read_records

ROW_ID = re.compile(r"cefpipeRowId=([^;]+)")


def wait_for(
    condition: Callable[[], bool],
    timeout_secs: float,
    what: str,
    poll_secs: float = 0.2,
) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after a generous deadline."""
    deadline = time.monotonic() + timeout_secs
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll_secs)
    raise AssertionError(f"timed out after {timeout_secs:.0f}s waiting for {what}")


def produce_rows(
    bootstrap: str,
    topic: str,
    count: int,
    value: Callable[[int], bytes] | None = None,
) -> list[str]:
    """Write ``count`` enriched rows; return their row ids in order."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    ids = []
    for index in range(count):
        row_id = f"0-{index}"
        payload = value(index) if value else enriched_value(0, index)
        producer.produce(topic, payload, key=str(index % 97).encode())
        ids.append(row_id)
        if index % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
    return ids


def stored_ids(emu: EmulatorThread) -> Counter[str]:
    """How often each row id arrived at the emulator."""
    found: Counter[str] = Counter()
    for row in emu.rows(None):
        match = ROW_ID.search(str(row.get("AdditionalExtensions", "")))
        if match:
            found[match.group(1)] += 1
    return found


def topic_size(bootstrap: str, topic: str) -> int:
    """Records in ``topic`` (sum over partitions of high minus low watermark)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        total = 0
        for partition in metadata.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10
            )
            total += high - low
        return total
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = [
            TopicPartition(topic, p) for p in metadata.topics[topic].partitions
        ]
        return {
            tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)
        }
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in metadata.topics[topic].partitions
        }
    finally:
        consumer.close()


def sink_settings(
    sink_env: dict[str, str], bootstrap: str, topics: PipelineTopics, **extra: str
) -> Settings:
    return Settings.from_env(
        {**sink_env, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, **topics.env(), **extra}
    )


@dataclass
class RunningSink:
    app: SinkApp
    group_id: str
    exit_code: int | None = None


def new_group_id() -> str:
    return f"test-sink-{uuid.uuid4().hex[:8]}"


@contextmanager
def sink_in_thread(
    settings: Settings, group_id: str | None = None
) -> Iterator[RunningSink]:
    """Run a sink on a thread (in its own consumer group unless told); stop on exit."""
    group_id = group_id or new_group_id()
    app = SinkApp.build(settings, group_id=group_id)
    running = RunningSink(app, group_id)

    def run() -> None:
        running.exit_code = app.worker.run()

    thread = threading.Thread(target=run, name="sink-under-test", daemon=True)
    thread.start()
    try:
        yield running
    finally:
        app.worker.stop()
        thread.join(timeout=settings.sink.shutdown_grace_secs + 30)
        app.close()
    assert not thread.is_alive(), "the sink did not stop"
    assert running.exit_code == 0


def start_sink_process(env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    """``python -m cefpipe sink`` with ``env`` added to a clean environment."""
    base = {key: value for key, value in os.environ.items() if not _is_ours(key)}
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "cefpipe", "sink"],
            cwd=REPO_ROOT,
            env={**base, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _is_ours(name: str) -> bool:
    prefixes = (
        "SINK_",
        "SENTINEL_",
        "AZURE_",
        "KAFKA_",
        "TOPIC_",
        "CEFPIPE_",
        "EMULATOR_",
    )
    return name.startswith(prefixes)


def duplicates(counts: Counter[str]) -> int:
    return sum(count - 1 for count in counts.values())


def missing(expected: Iterable[str], counts: Counter[str]) -> list[str]:
    return [row_id for row_id in expected if row_id not in counts]


def dead_letters(bootstrap: str, topic: str, expected: int) -> list[Record]:
    return read_records(bootstrap, topic, expected, timeout_secs=60)
