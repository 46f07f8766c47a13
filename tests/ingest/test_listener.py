"""The listener on a real broker: what a sender writes is what lands in Kafka."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from ingest.listener import SyslogListener
from tests.conftest import PipelineTopics
from tests.ingest.helpers import CEF_LINE, send_tcp
from tests.support.kafka import messages_of, read_messages, read_records

pytestmark = pytest.mark.broker


async def test_tcp_messages_arrive_byte_for_byte_with_receiver_headers(
    listener: SyslogListener, kafka_bootstrap: str, pipeline_topics: PipelineTopics
) -> None:
    before_us = time.time_ns() // 1000
    octet = b"<134>1 2024-06-05T10:11:12Z h app - - - CEF:0|a|b|c|d|e|f|msg=x\ny"
    await send_tcp(
        listener.bound["tcp"],
        CEF_LINE + b"\r\n" + str(len(octet)).encode() + b" " + octet,
    )

    records = await asyncio.to_thread(
        read_records, kafka_bootstrap, pipeline_topics.raw, 1
    )

    assert messages_of(records) == [CEF_LINE + b"\r", octet]
    for record in records:
        assert record.key == b"127.0.0.1"
        assert record.headers["transport"] == b"tcp"
        assert record.headers["collector"] == b"ingest-under-test"
        assert record.headers["peer"].startswith(b"127.0.0.1:")
        assert int(record.headers["received_at_us"]) >= before_us


async def test_udp_datagram_is_one_message_without_its_line_feed(
    listener: SyslogListener, kafka_bootstrap: str, pipeline_topics: PipelineTopics
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(CEF_LINE + b"\n", ("127.0.0.1", listener.bound["udp"]))

    records = await asyncio.to_thread(
        read_records, kafka_bootstrap, pipeline_topics.raw, 1
    )

    assert [r.value for r in records] == [CEF_LINE]
    assert records[0].headers["transport"] == b"udp"


async def test_lines_packed_into_one_udp_datagram_become_separate_messages(
    listener: SyslogListener, kafka_bootstrap: str, pipeline_topics: PipelineTopics
) -> None:
    first, second = CEF_LINE + b" cs1=ev12", CEF_LINE + b" cs1=ev13"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(first + b"\r\n" + second, ("127.0.0.1", listener.bound["udp"]))

    messages = await asyncio.to_thread(
        read_messages, kafka_bootstrap, pipeline_topics.raw, 2
    )

    assert messages == [first + b"\r", second]


async def test_tls_connection_is_served(
    listener: SyslogListener, kafka_bootstrap: str, pipeline_topics: PipelineTopics
) -> None:
    await send_tcp(listener.bound["tls"], CEF_LINE + b"\n", tls=True)

    records = await asyncio.to_thread(
        read_records, kafka_bootstrap, pipeline_topics.raw, 1
    )

    assert [r.value for r in records] == [CEF_LINE]
    assert records[0].headers["transport"] == b"tls"


async def test_oversized_message_goes_to_dead_letters_with_its_head(
    listener: SyslogListener, kafka_bootstrap: str, pipeline_topics: PipelineTopics
) -> None:
    huge = b"<134>" + b"A" * 5000
    await send_tcp(listener.bound["tcp"], huge + b"\n" + CEF_LINE + b"\n")

    raw = await asyncio.to_thread(read_records, kafka_bootstrap, pipeline_topics.raw, 1)
    dead = await asyncio.to_thread(
        read_records, kafka_bootstrap, pipeline_topics.dead_letter, 1
    )

    assert [r.value for r in raw] == [CEF_LINE]
    assert [r.value for r in dead] == [huge[:2048]]
    assert dead[0].headers["reason"] == b"message_oversized"
    assert dead[0].headers["stage"] == b"ingest"
    assert dead[0].headers["source"].startswith(b"127.0.0.1:")


async def test_many_concurrent_senders_lose_nothing(
    listener: SyslogListener, kafka_bootstrap: str, pipeline_topics: PipelineTopics
) -> None:
    async def sender(index: int) -> None:
        lines = b"".join(
            CEF_LINE + f" n={index}-{line}".encode() + b"\n" for line in range(50)
        )
        await send_tcp(listener.bound["tcp"], lines)

    await asyncio.gather(*(sender(index) for index in range(40)))

    messages = await asyncio.to_thread(
        read_messages, kafka_bootstrap, pipeline_topics.raw, 2000
    )
    expected = {
        CEF_LINE + f" n={index}-{line}".encode()
        for index in range(40)
        for line in range(50)
    }
    assert set(messages) == expected
    assert len(messages) == 2000


async def test_messages_read_together_share_a_record_up_to_the_size_limit(
    listener: SyslogListener, kafka_bootstrap: str, pipeline_topics: PipelineTopics
) -> None:
    lines = [CEF_LINE + f" n={line}".encode() for line in range(300)]
    await send_tcp(listener.bound["tcp"], b"".join(line + b"\n" for line in lines))

    records = await asyncio.to_thread(
        read_records, kafka_bootstrap, pipeline_topics.raw, 7
    )

    assert messages_of(records) == lines
    assert all("messages" in r.headers for r in records)
    # Packed up to INGEST_RECORD_MAX_BYTES (plus the framing of each message).
    assert all(len(r.value) <= 4096 + 8 * int(r.headers["messages"]) for r in records)
    assert len(records) >= sum(len(line) for line in lines) // 4096


async def test_a_burst_of_udp_datagrams_all_arrive_in_order(
    listener: SyslogListener, kafka_bootstrap: str, pipeline_topics: PipelineTopics
) -> None:
    lines = [CEF_LINE + f" n={index}".encode() for index in range(500)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for start in range(0, len(lines), 50):
            for line in lines[start : start + 50]:
                sock.sendto(line, ("127.0.0.1", listener.bound["udp"]))
            await asyncio.sleep(0.01)  # stay within the socket's receive buffer

    records = await asyncio.to_thread(
        read_records, kafka_bootstrap, pipeline_topics.raw, 1
    )

    assert messages_of(records) == lines
