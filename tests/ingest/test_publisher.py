"""The producer waits for an absent broker, and health says when nothing moves."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cefpipe.kafka_broker import BrokerConfig, BrokerError, LocalBroker
from cefpipe.settings import DEFAULT_KAFKA_VERSION, Settings
from cefpipe.topics import ensure_topics
from ingest.listener import SyslogListener
from ingest.publisher import RawPublisher, producer_config
from tests.conftest import free_port
from tests.ingest.helpers import CEF_LINE, send_tcp, wait_until
from tests.support.kafka import read_messages

STALL_SECS = 1.0  # how long queued messages may wait undelivered in these tests


def test_queued_records_wait_for_the_broker_and_the_queue_is_bounded_in_bytes() -> None:
    config = producer_config(
        Settings.from_env({"INGEST_QUEUE_MAX_KBYTES": "65536", "CEFPIPE_HOME": "/"})
    )

    assert config["message.timeout.ms"] == 0
    assert config["enable.idempotence"] is True
    assert config["queue.buffering.max.kbytes"] == 65536


@pytest.fixture
async def private_broker(tmp_path: Path) -> AsyncIterator[LocalBroker]:
    """A broker of this test's own, which it may stop and start again."""
    broker = LocalBroker(
        BrokerConfig(
            home=tmp_path / "private-broker",
            cache_dir=Path.home() / ".cache" / "cefpipe",
            version=DEFAULT_KAFKA_VERSION,
            broker_port=free_port(),
            controller_port=free_port(),
            heap_mb=512,
        )
    )
    await asyncio.to_thread(broker.start)
    try:
        yield broker
    finally:
        await asyncio.to_thread(broker.stop)


@pytest.mark.broker
@pytest.mark.slow
async def test_messages_queued_during_an_outage_arrive_once_the_broker_returns(
    private_broker: LocalBroker, tmp_path: Path
) -> None:
    bootstrap = private_broker.config.bootstrap_servers
    raw = f"test-raw-{uuid.uuid4().hex[:10]}"
    ensure_topics(bootstrap, (raw, f"{raw}-dead-letter"), 2)
    settings = Settings.from_env(
        {
            "CEFPIPE_HOME": str(tmp_path),
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "TOPIC_RAW": raw,
            "TOPIC_DEAD_LETTER": f"{raw}-dead-letter",
            "SYSLOG_PORT": "0",
        }
    )
    publisher = RawPublisher(settings)
    listener = SyslogListener(settings.ingest, publisher, "outage-test")
    await listener.start()
    reports = asyncio.create_task(publisher.run_delivery_reports())
    lines = [CEF_LINE + b" n=%d" % index for index in range(200)]
    try:
        await send_tcp(listener.bound["tcp"], lines[0] + b"\n")
        await asyncio.to_thread(read_messages, bootstrap, raw, 1)
        assert publisher.health(STALL_SECS)[0]

        await asyncio.to_thread(private_broker.stop)
        await send_tcp(listener.bound["tcp"], b"\n".join(lines[1:]) + b"\n")
        await wait_until(
            lambda: not publisher.health(STALL_SECS)[0], "unhealthy while stalled"
        )
        assert publisher.queued > 0
        assert publisher.last_delivery_error is None

        await restart(private_broker)
        messages = await asyncio.to_thread(
            read_messages, bootstrap, raw, len(lines), 120.0
        )
        assert messages == lines
        await wait_until(lambda: publisher.health(STALL_SECS)[0], "healthy again")
    finally:
        await listener.stop()
        reports.cancel()
        assert publisher.close(30) == 0


async def restart(broker: LocalBroker, timeout_secs: float = 180.0) -> None:
    """Start ``broker`` again on its ports, once the kernel lets them go.

    Connections the broker closed linger in TIME_WAIT on its port for up to a
    minute, and ``start`` refuses a port it cannot bind meanwhile.
    """
    deadline = time.monotonic() + timeout_secs
    while True:
        try:
            await asyncio.to_thread(broker.start)
            return
        except BrokerError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)
