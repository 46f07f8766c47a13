"""Shutdown: what senders already wrote is published before the listener closes."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from tests.conftest import PipelineTopics
from tests.ingest.conftest import StartListener
from tests.ingest.helpers import CEF_LINE, wait_until
from tests.support.kafka import read_messages

pytestmark = pytest.mark.broker


async def test_stop_publishes_what_a_sender_wrote_but_was_not_yet_read(
    start_listener: StartListener,
    kafka_bootstrap: str,
    pipeline_topics: PipelineTopics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    listener = await start_listener()
    lines = [CEF_LINE + b" n=%d" % index for index in range(300)]
    with socket.create_connection(("127.0.0.1", listener.bound["tcp"])) as sender:
        await wait_until(lambda: listener.open_connections == 1, "connection served")
        # A blocking write: the listener's event loop cannot read any of it
        # before stop() begins. The last line has no line feed.
        sender.sendall(b"\n".join(lines))

        with caplog.at_level(logging.ERROR, logger="asyncio"):
            await listener.stop()

    messages = await asyncio.to_thread(
        read_messages, kafka_bootstrap, pipeline_topics.raw, len(lines)
    )
    assert messages == lines
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


async def test_stop_ends_within_the_grace_while_a_sender_keeps_sending(
    start_listener: StartListener,
) -> None:
    listener = await start_listener(SYSLOG_SHUTDOWN_GRACE_SECS="1")
    _, writer = await asyncio.open_connection("127.0.0.1", listener.bound["tcp"])

    async def send_for_ever() -> None:
        try:
            while True:
                writer.write(CEF_LINE + b"\n")
                await writer.drain()
                await asyncio.sleep(0.01)
        except ConnectionError:
            pass

    sending = asyncio.create_task(send_for_ever())
    await wait_until(lambda: listener.open_connections == 1, "connection served")

    await asyncio.wait_for(listener.stop(), 60)

    assert listener.open_connections == 0
    sending.cancel()
    writer.close()


async def test_stop_publishes_udp_datagrams_already_received(
    start_listener: StartListener,
    kafka_bootstrap: str,
    pipeline_topics: PipelineTopics,
) -> None:
    listener = await start_listener()
    address = ("127.0.0.1", listener.bound["udp"])
    lines = [CEF_LINE + b" n=%d" % index for index in range(50)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(lines[0], address)
        await asyncio.to_thread(read_messages, kafka_bootstrap, pipeline_topics.raw, 1)
        # Blocking sends: the listener cannot read any of these before stop().
        for line in lines[1:]:
            sender.sendto(line, address)

        await listener.stop()

    messages = await asyncio.to_thread(
        read_messages, kafka_bootstrap, pipeline_topics.raw, len(lines)
    )
    assert messages == lines
