"""Connection limits: idle connections give way; one host cannot take every slot."""

from __future__ import annotations

import asyncio

import pytest

from ingest.connections import (
    EVICTABLE_AFTER_SECS,
    SENDER_LIMIT,
    TOTAL_LIMIT,
    Connection,
    ConnectionTable,
)
from ingest.sender import Sender
from tests.conftest import PipelineTopics
from tests.ingest.conftest import StartListener
from tests.ingest.helpers import CEF_LINE, metric, send_tcp, wait_until
from tests.support.kafka import read_messages

EVICTED = "cefpipe_ingest_connections_evicted_total"
IDLE = EVICTABLE_AFTER_SECS + 1.0  # seconds since a connection last sent
NOW = 1000.0


def connection(host: str, idle_secs: float, reading: bool = True) -> Connection:
    """A connection from ``host`` that last sent ``idle_secs`` before NOW."""
    opened = Connection(
        Sender(host, 40000, "tcp"),
        asyncio.WriteTransport(),
        last_active=NOW - idle_secs,
    )
    if reading:
        opened.read_timer = asyncio.Timeout(None)
    return opened


def table_of(
    *connections: Connection, max_total: int = 100, max_per_sender: int = 100
) -> ConnectionTable:
    table = ConnectionTable(max_total, max_per_sender)
    for each in sorted(connections, key=lambda c: c.last_active):
        assert table.admit(each, each.last_active).refused is None
    return table


def test_below_the_limits_a_newcomer_is_admitted_and_nobody_evicted() -> None:
    table = table_of(connection("10.0.0.1", IDLE))

    admission = table.admit(connection("10.0.0.2", 0), NOW)

    assert admission.refused is None
    assert admission.evicted == ()
    assert len(table) == 2


def test_at_the_sender_limit_that_senders_idlest_connection_gives_way() -> None:
    other = connection("10.0.0.9", IDLE * 3)  # idle longer, but another host's
    oldest, newer = connection("10.0.0.1", IDLE * 2), connection("10.0.0.1", IDLE)
    table = table_of(other, oldest, newer, max_per_sender=2)

    admission = table.admit(connection("10.0.0.1", 0), NOW)

    assert admission.refused is None
    assert admission.evicted == ((oldest, SENDER_LIMIT),)
    assert len(table) == 3


def test_at_the_total_limit_the_idlest_connection_of_anyone_gives_way() -> None:
    oldest, newer = connection("10.0.0.1", IDLE * 2), connection("10.0.0.2", IDLE)
    table = table_of(oldest, newer, max_total=2)

    admission = table.admit(connection("10.0.0.3", 0), NOW)

    assert admission.evicted == ((oldest, TOTAL_LIMIT),)
    assert len(table) == 2


def test_one_host_holding_idle_connections_cannot_lock_out_another() -> None:
    table = ConnectionTable(max_total=4, max_per_sender=2)
    for opened in range(10):  # one every IDLE seconds, each staying silent
        hog = connection("10.0.0.1", IDLE * (10 - opened))
        assert table.admit(hog, hog.last_active).refused is None

    newcomer = table.admit(connection("10.0.0.2", 0), NOW)

    assert len(table) == 3
    assert newcomer.refused is None
    assert newcomer.evicted == ()


def test_a_connection_that_sent_within_the_last_second_is_not_evicted() -> None:
    busy = [connection("10.0.0.1", EVICTABLE_AFTER_SECS / 2) for _ in range(2)]
    table = table_of(*busy, max_per_sender=2)

    admission = table.admit(connection("10.0.0.1", 0), NOW)

    assert admission.refused == SENDER_LIMIT
    assert admission.evicted == ()
    assert len(table) == 2


def test_when_every_connection_is_active_the_newcomer_is_refused() -> None:
    table = table_of(
        connection("10.0.0.1", 0.1), connection("10.0.0.2", 0.2), max_total=2
    )

    assert table.admit(connection("10.0.0.3", 0), NOW).refused == TOTAL_LIMIT


def test_a_connection_handing_data_to_kafka_is_busy_however_long_ago_it_read() -> None:
    stuck = connection("10.0.0.1", IDLE * 10, reading=False)
    table = table_of(stuck, max_total=1)

    assert table.admit(connection("10.0.0.2", 0), NOW).refused == TOTAL_LIMIT


def test_sending_moves_a_connection_to_the_back_of_the_line() -> None:
    first, second = connection("10.0.0.1", IDLE * 2), connection("10.0.0.1", IDLE)
    table = table_of(first, second, max_per_sender=2)
    table.touch(first, NOW - EVICTABLE_AFTER_SECS - 0.1)

    admission = table.admit(connection("10.0.0.1", 0), NOW)

    assert admission.evicted == ((second, SENDER_LIMIT),)


def test_sender_victim_is_not_counted_twice_when_both_limits_are_reached() -> None:
    mine, theirs = connection("10.0.0.1", IDLE), connection("10.0.0.2", IDLE * 2)
    table = table_of(mine, theirs, max_total=2, max_per_sender=1)

    admission = table.admit(connection("10.0.0.1", 0), NOW)

    assert admission.evicted == ((mine, SENDER_LIMIT),)
    assert len(table) == 2


def test_removing_or_touching_an_evicted_connection_is_harmless() -> None:
    gone = connection("10.0.0.1", IDLE)
    table = table_of(gone, max_total=1)
    table.admit(connection("10.0.0.2", 0), NOW)

    table.touch(gone, NOW)
    table.remove(gone)
    table.remove(gone)

    assert len(table) == 1


@pytest.mark.broker
async def test_an_idle_connection_gives_way_at_the_total_limit(
    start_listener: StartListener,
    kafka_bootstrap: str,
    pipeline_topics: PipelineTopics,
) -> None:
    listener = await start_listener(SYSLOG_MAX_CONNECTIONS="3")
    port = listener.bound["tcp"]
    idlest = await asyncio.open_connection("127.0.0.1", port)
    await wait_until(lambda: listener.open_connections == 1, "first connection served")
    others = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    for index, (_, writer) in enumerate(others):
        writer.write(CEF_LINE + b" n=%d\n" % index)
        await writer.drain()
    await asyncio.to_thread(read_messages, kafka_bootstrap, pipeline_topics.raw, 2)
    evicted_before = metric(EVICTED, reason=TOTAL_LIMIT)
    await asyncio.sleep(EVICTABLE_AFTER_SECS)  # let every connection become idle

    await send_tcp(port, CEF_LINE + b" n=newcomer\n")
    others[0][1].write(CEF_LINE + b" n=still-open\n")
    await others[0][1].drain()
    messages = await asyncio.to_thread(
        read_messages, kafka_bootstrap, pipeline_topics.raw, 4
    )

    assert CEF_LINE + b" n=newcomer" in messages
    assert CEF_LINE + b" n=still-open" in messages
    assert await closed_by_listener(idlest[0])
    assert metric(EVICTED, reason=TOTAL_LIMIT) == evicted_before + 1
    for _, writer in [idlest, *others]:
        writer.close()


@pytest.mark.broker
async def test_an_idle_connection_of_the_same_sender_gives_way_at_its_limit(
    start_listener: StartListener,
    kafka_bootstrap: str,
    pipeline_topics: PipelineTopics,
) -> None:
    listener = await start_listener(SYSLOG_MAX_CONNECTIONS_PER_SENDER="2")
    port = listener.bound["tcp"]
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    await wait_until(lambda: listener.open_connections == 2, "both connections served")
    evicted_before = metric(EVICTED, reason=SENDER_LIMIT)
    await asyncio.sleep(EVICTABLE_AFTER_SECS)  # let both become idle

    await send_tcp(port, CEF_LINE + b" n=newcomer\n")
    messages = await asyncio.to_thread(
        read_messages, kafka_bootstrap, pipeline_topics.raw, 1
    )

    assert messages == [CEF_LINE + b" n=newcomer"]
    assert await closed_by_listener(held[0][0])
    assert metric(EVICTED, reason=SENDER_LIMIT) == evicted_before + 1
    for _, writer in held:
        writer.close()


async def closed_by_listener(reader: asyncio.StreamReader) -> bool:
    """True once the listener has closed the connection ``reader`` reads."""
    try:
        return await asyncio.wait_for(reader.read(), 60) == b""
    except ConnectionResetError:
        return True
