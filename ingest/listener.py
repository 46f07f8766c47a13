"""The syslog listener: TCP and UDP on one port, optionally TLS on another.

It stays thin on purpose. It cuts frames, stamps each message with what only the
receiver knows (receive time, sender, transport, this instance), and hands the
bytes to Kafka untouched. Parsing belongs to the enrich stage, which can scale
out; a listener that parsed would become the bottleneck.

A UDP datagram is cut at LF and NUL like a newline-framed TCP stream: relays
pack several lines into one datagram, and a raw LF is never part of a CEF
message. Empty lines are dropped; a CR before the LF stays in the message.

Stream connections are limited in total and per sender host; at a limit the
connection idle longest gives way to the newcomer (see :mod:`ingest.connections`).
At shutdown nothing a sender already wrote is thrown away: the listener stops
accepting, reads each connection until it has been quiet for a moment, publishes
what it read, and only then closes.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
import time
from collections.abc import Sequence
from typing import Any, Final

from cefpipe.binding import BindError, bind
from cefpipe.ratelog import RateLimitedLog
from cefpipe.records import (
    HEADER_COLLECTOR,
    HEADER_MESSAGES,
    HEADER_PEER,
    HEADER_RECEIVED_AT_US,
    HEADER_TRANSPORT,
    DeadLetter,
    KafkaHeaders,
    pack_messages,
)
from cefpipe.settings import IngestSettings
from ingest import metrics, udp_socket
from ingest.connections import (
    SENDER_LIMIT,
    TOTAL_LIMIT,
    Connection,
    ConnectionTable,
)
from ingest.framing import Frame, FrameDecoder, split_datagram
from ingest.publisher import RawPublisher
from ingest.sender import Sender

__all__ = ["BindError", "Sender", "SyslogListener"]

logger = logging.getLogger(__name__)

_READ_BYTES: Final = 256 * 1024
_UDP_BACKLOG: Final = 50_000
# At shutdown, a sender quiet for this long has nothing more in flight.
_QUIET_SECS: Final = 0.5
_LIMIT_SETTINGS: Final = {
    SENDER_LIMIT: "SYSLOG_MAX_CONNECTIONS_PER_SENDER",
    TOTAL_LIMIT: "SYSLOG_MAX_CONNECTIONS",
}


class SyslogListener:
    """Accepts syslog over TCP, UDP and TLS and publishes every message.

    The entry point calls ``start`` once, which binds every socket, and ``stop``
    once at shutdown.
    """

    def __init__(
        self,
        settings: IngestSettings,
        publisher: RawPublisher,
        instance: str,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._settings = settings
        self._publisher = publisher
        self._collector = instance.encode()
        self._tls_context = tls_context
        self._servers: list[asyncio.Server] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_protocol: _UdpProtocol | None = None
        self._kernel_drops: udp_socket.KernelDrops | None = None
        self._sampling: asyncio.Task[None] | None = None
        self._connections = ConnectionTable(
            settings.max_connections, settings.max_connections_per_sender
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._stopped = False
        self._problems = RateLimitedLog(logger)
        self.bound: dict[str, int] = {}

    @property
    def open_connections(self) -> int:
        """Stream connections being served now."""
        return len(self._tasks)

    async def start(self) -> None:
        """Bind the TCP, UDP and (with a certificate) TLS sockets.

        Raises:
            BindError: a port is taken; the message names its setting.
        """
        try:
            await self._bind_streams()
            await self._bind_udp()
        except BindError:
            self._close_sockets()
            raise

    async def _bind_streams(self) -> None:
        cfg = self._settings
        tcp = await bind(
            asyncio.start_server(
                self._tcp_connection, cfg.bind_host, cfg.port, limit=_READ_BYTES
            ),
            "SYSLOG_PORT",
            "syslog over TCP",
            cfg.bind_host,
            cfg.port,
        )
        self._servers.append(tcp)
        self.bound["tcp"] = tcp.sockets[0].getsockname()[1]
        if self._tls_context is None:
            return
        # TODO: a TLS connection counts toward the connection limits only once
        # its handshake is done; until then asyncio's 60 s handshake timeout is
        # all that bounds it, as the limits are enforced in the connected callback.
        tls = await bind(
            asyncio.start_server(
                self._tls_connection,
                cfg.bind_host,
                cfg.tls_port,
                ssl=self._tls_context,
                limit=_READ_BYTES,
            ),
            "SYSLOG_TLS_PORT",
            "syslog over TLS",
            cfg.bind_host,
            cfg.tls_port,
        )
        self._servers.append(tls)
        self.bound["tls"] = tls.sockets[0].getsockname()[1]

    async def _bind_udp(self) -> None:
        cfg = self._settings
        port = self.bound["tcp"] if cfg.port == 0 else cfg.port
        protocol = _UdpProtocol(self, cfg.max_message_bytes)
        transport, _ = await bind(
            asyncio.get_running_loop().create_datagram_endpoint(
                lambda: protocol, local_addr=(cfg.bind_host, port)
            ),
            "SYSLOG_PORT",
            "syslog over UDP",
            cfg.bind_host,
            port,
        )
        self._udp_protocol = protocol
        self._udp = transport
        self.bound["udp"] = transport.get_extra_info("sockname")[1]
        sock = transport.get_extra_info("socket")
        udp_socket.set_receive_buffer(sock, cfg.udp_receive_buffer_bytes)
        self._kernel_drops = udp_socket.KernelDrops(sock)
        self._sampling = asyncio.create_task(self._kernel_drops.run())

    async def stop(self) -> None:
        """Stop accepting, publish what senders already wrote, then close.

        Each open connection (and the UDP socket) is read until it has been quiet
        for a moment or its sender closes it, within ``SYSLOG_SHUTDOWN_GRACE_SECS``
        overall; connections still busy after that are cancelled. Safe to call
        twice: the second call returns at once.
        """
        if self._stopping:
            return
        self._stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.shutdown_grace_secs
        for server in self._servers:
            server.close()
        self._end_reads_when_quiet(loop.time() + _QUIET_SECS)
        await asyncio.gather(self._finish_streams(deadline), self._finish_udp(deadline))
        for server in self._servers:
            await server.wait_closed()
        self._stopped = True

    @property
    def udp_receive_buffer_bytes(self) -> int:
        """The UDP socket's receive buffer as the kernel reports it now."""
        assert self._udp is not None, "call start() first"
        sock = self._udp.get_extra_info("socket")
        return udp_socket.receive_buffer_bytes(sock)

    def _close_sockets(self) -> None:
        for server in self._servers:
            server.close()
        if self._sampling is not None:
            self._sampling.cancel()
        if self._udp is not None and not self._udp.is_closing():
            if self._kernel_drops is not None:
                self._kernel_drops.sample()
            self._udp.close()

    def _end_reads_when_quiet(self, when: float) -> None:
        """Make every read now waiting give up at ``when`` unless data arrives."""
        for connection in self._connections:
            timer = connection.read_timer
            if timer is None or timer.expired():
                continue  # busy, or quiet already: its next read is short
            current = timer.when()
            if current is None or current > when:
                timer.reschedule(when)

    async def _finish_streams(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while self._tasks and deadline > loop.time():
            await asyncio.wait(set(self._tasks), timeout=deadline - loop.time())
        if not self._tasks:
            return
        logger.warning(
            "%d connections were still busy after SYSLOG_SHUTDOWN_GRACE_SECS=%s; "
            "closing them, what they had not yet handed to Kafka is lost",
            len(self._tasks),
            self._settings.shutdown_grace_secs,
        )
        unfinished = list(self._tasks)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)

    async def _finish_udp(self, deadline: float) -> None:
        if self._udp is None or self._udp_protocol is None:
            return
        loop = asyncio.get_running_loop()
        await self._udp_protocol.wait_until_quiet(_QUIET_SECS, deadline)
        self._close_sockets()
        # The backlog goes straight into the producer queue unless Kafka is full;
        # it gets what is left of the grace, and at least a moment.
        timeout = max(deadline - loop.time(), _QUIET_SECS)
        try:
            await asyncio.wait_for(self._udp_protocol.finish(), timeout)
        except TimeoutError:
            logger.error(
                "%d UDP messages could not be queued for Kafka within "
                "SYSLOG_SHUTDOWN_GRACE_SECS and are lost",
                self._udp_protocol.backlog_messages,
            )

    def _tcp_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._accept(reader, writer, "tcp")

    def _tls_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._accept(reader, writer, "tls")

    def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, transport: str
    ) -> None:
        """Serve a new connection in a task of its own, or turn it away.

        A plain function, not a coroutine, so that the listener owns the task:
        asyncio would report a task cancelled at shutdown as an error.
        """
        sender = Sender.from_peername(writer.get_extra_info("peername"), transport)
        if self._stopped:
            self._refuse(writer, sender, "shutting_down")
            return
        connection = Connection(sender, writer.transport, time.monotonic())
        admission = self._connections.admit(connection, connection.last_active)
        for victim, limit in admission.evicted:
            self._evict(victim, limit, sender)
        if admission.refused is not None:
            self._refuse(writer, sender, admission.refused)
            return
        task = asyncio.get_running_loop().create_task(
            self._serve_stream(reader, writer, connection)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _evict(self, victim: Connection, limit: str, newcomer: Sender) -> None:
        metrics.CONNECTIONS_EVICTED.labels(limit).inc()
        self.report(
            f"evicted_{limit}",
            "closed the %s connection from %s, idle for %.0fs, to admit one from "
            "%s: %s reached",
            victim.sender.transport,
            victim.sender.address,
            time.monotonic() - victim.last_active,
            newcomer.address,
            _LIMIT_SETTINGS[limit],
        )
        # A reset, not a FIN: the sender learns at its next write and reconnects.
        victim.transport.abort()

    def _refuse(
        self, writer: asyncio.StreamWriter, sender: Sender, reason: str
    ) -> None:
        metrics.CONNECTIONS_REFUSED.labels(reason).inc()
        if reason == "shutting_down":
            explanation = "the listener is shutting down"
        else:
            explanation = (
                f"{_LIMIT_SETTINGS[reason]} reached and every open connection "
                "sent data within the last second"
            )
        self.report(
            f"refused_{reason}",
            "refused a %s connection from %s: %s",
            sender.transport,
            sender.address,
            explanation,
        )
        writer.transport.abort()

    async def _serve_stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: Connection,
    ) -> None:
        sender = connection.sender
        gauge = metrics.CONNECTIONS_OPEN.labels(sender.transport)
        gauge.inc()
        try:
            idle = await self._read_frames(reader, connection)
            if idle:
                logger.info(
                    "closed %s connection from %s: idle for %.0fs",
                    sender.transport,
                    sender.address,
                    self._settings.idle_timeout_secs,
                )
        except (ConnectionError, ssl.SSLError) as exc:
            logger.info(
                "%s connection from %s ended: %s", sender.transport, sender.address, exc
            )
        except Exception:
            metrics.ERRORS.labels("ingest", "connection").inc()
            logger.exception(
                "%s connection from %s failed; what it sent after the last "
                "published message is lost",
                sender.transport,
                sender.address,
            )
        finally:
            self._connections.remove(connection)
            gauge.dec()
            writer.close()

    async def _read_frames(
        self, reader: asyncio.StreamReader, connection: Connection
    ) -> bool:
        """Read and publish until the sender closes or goes quiet.

        Returns:
            True if the connection was idle for ``SYSLOG_IDLE_TIMEOUT_SECS``.
        """
        sender = connection.sender
        decoder = FrameDecoder(self._settings.max_message_bytes)
        static = self._sender_headers(sender)
        received = metrics.MESSAGES_RECEIVED.labels(sender.transport)
        read_bytes = metrics.BYTES_RECEIVED.labels(sender.transport)
        connections = self._connections
        empty_before = 0
        while True:
            chunk = await self._read_chunk(reader, connection)
            if not chunk:
                break
            connections.touch(connection, time.monotonic())
            read_bytes.inc(len(chunk))
            frames = decoder.feed(chunk)
            if frames:
                received.inc(len(frames))
                await self.publish_frames(frames, sender, _stamped(static))
            if decoder.empty_frames != empty_before:
                metrics.EMPTY_FRAMES.inc(decoder.empty_frames - empty_before)
                empty_before = decoder.empty_frames
        frames = decoder.close()
        if frames:
            received.inc(len(frames))
            await self.publish_frames(frames, sender, _stamped(static))
        return chunk is None and not self._stopping

    async def _read_chunk(
        self, reader: asyncio.StreamReader, connection: Connection
    ) -> bytes | None:
        """The sender's next bytes: b"" when it closed, None when it fell quiet.

        Quiet means idle for ``SYSLOG_IDLE_TIMEOUT_SECS``, or for a moment once
        the listener is stopping. Meanwhile the connection may be evicted.
        """
        timeout = _QUIET_SECS if self._stopping else self._settings.idle_timeout_secs
        try:
            async with asyncio.timeout(timeout) as timer:
                connection.read_timer = timer
                return await reader.read(_READ_BYTES)
        except TimeoutError:
            # The timeout may strike just as bytes arrive: keep those.
            return await _read_buffered(reader) or None
        finally:
            connection.read_timer = None

    def headers_for(self, sender: Sender) -> KafkaHeaders:
        """Record headers for a message from ``sender`` received just now."""
        return _stamped(self._sender_headers(sender))

    async def publish_frames(
        self, frames: Sequence[Frame], sender: Sender, headers: KafkaHeaders
    ) -> None:
        """Publish frames in order, waiting while the producer queue is full.

        Messages read together are packed into as few raw records as
        ``INGEST_RECORD_MAX_BYTES`` allows (see :mod:`cefpipe.records`): the
        enrich stage pays its per-record cost once per record, not per message.
        """
        key = sender.host.encode()
        group: list[bytes] = []
        group_bytes = 0
        for frame in frames:
            if frame.oversized:
                await self._publish_group(group, key, headers)
                group, group_bytes = [], 0
                await self._dead_letter_oversized(frame.data, headers, sender)
                continue
            if (
                group
                and group_bytes + len(frame.data) > self._settings.record_max_bytes
            ):
                await self._publish_group(group, key, headers)
                group, group_bytes = [], 0
            group.append(frame.data)
            group_bytes += len(frame.data) + 8
        await self._publish_group(group, key, headers)

    async def _publish_group(
        self, messages: list[bytes], key: bytes, headers: KafkaHeaders
    ) -> None:
        if not messages:
            return
        if len(messages) == 1:
            value = messages[0]
        else:
            value = pack_messages(messages)
            headers = [*headers, (HEADER_MESSAGES, str(len(messages)).encode())]
        publisher = self._publisher
        if not publisher.try_publish(value, key, headers, len(messages)):
            await publisher.publish(value, key, headers, len(messages))

    def report(self, key: str, msg: str, *args: object) -> None:
        """Log a per-message problem at most once per interval."""
        self._problems.log(logging.WARNING, key, msg, *args)

    async def _dead_letter_oversized(
        self, data: bytes, headers: KafkaHeaders, sender: Sender
    ) -> None:
        limit = self._settings.max_message_bytes
        self.report(
            "oversized",
            "message from %s over SYSLOG_MAX_MESSAGE_BYTES=%d; its first %d bytes "
            "went to the dead-letter topic",
            sender.address,
            limit,
            limit,
        )
        await self._publisher.dead_letter(
            data,
            DeadLetter(
                stage="ingest",
                reason="message_oversized",
                message=f"message longer than {limit} bytes; first {limit} kept",
                source=sender.address,
            ),
            headers,
        )

    def _sender_headers(self, sender: Sender) -> KafkaHeaders:
        return [
            (HEADER_PEER, sender.address.encode()),
            (HEADER_TRANSPORT, sender.transport.encode()),
            (HEADER_COLLECTOR, self._collector),
        ]


async def _read_buffered(reader: asyncio.StreamReader) -> bytes:
    """What ``reader`` already holds, without waiting for more."""
    try:
        async with asyncio.timeout(0):
            return await reader.read(_READ_BYTES)
    except TimeoutError:
        return b""


def _stamped(static: KafkaHeaders) -> KafkaHeaders:
    """Headers for messages read now: receive time first, then the sender's."""
    return [(HEADER_RECEIVED_AT_US, str(time.time_ns() // 1000).encode()), *static]


class _UdpProtocol(asyncio.DatagramProtocol):
    """Each LF- or NUL-terminated line of a datagram is one message.

    Datagrams that arrive in the same turn of the event loop from the same
    sender are published together, so that a flood packs into few raw records
    as a busy TCP stream does. UDP has no flow control: while the producer
    queue is full, messages wait in a bounded backlog; beyond it they are
    counted and dropped, as the kernel would drop them anyway.
    """

    def __init__(self, listener: SyslogListener, max_message_bytes: int) -> None:
        self._listener = listener
        self._max_message_bytes = max_message_bytes
        self._loop = asyncio.get_running_loop()
        self._arrived: dict[Any, list[bytes]] = {}
        self._backlog: collections.deque[tuple[list[Frame], Sender, KafkaHeaders]] = (
            collections.deque()
        )
        self.backlog_messages = 0
        self._last_arrival = self._loop.time()
        self._draining: asyncio.Task[None] | None = None
        self._received = metrics.MESSAGES_RECEIVED.labels("udp")
        self._bytes = metrics.BYTES_RECEIVED.labels("udp")

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if not self._arrived:
            self._loop.call_soon(self._gather_arrivals)
        self._arrived.setdefault(addr, []).append(data)

    def _gather_arrivals(self) -> None:
        arrived, self._arrived = self._arrived, {}
        self._last_arrival = self._loop.time()
        listener = self._listener
        for addr, datagrams in arrived.items():
            sender = Sender.from_peername(addr, "udp")
            frames = self._split(datagrams)
            if not frames:
                continue
            if self.backlog_messages + len(frames) > _UDP_BACKLOG:
                self._drop(sender, len(frames))
                continue
            self._backlog.append((frames, sender, listener.headers_for(sender)))
            self.backlog_messages += len(frames)
        if self._backlog and (self._draining is None or self._draining.done()):
            self._draining = asyncio.ensure_future(self._drain())

    def _split(self, datagrams: list[bytes]) -> list[Frame]:
        """The messages of one sender's datagrams, counted as received."""
        frames: list[Frame] = []
        empty = 0
        size = 0
        for datagram in datagrams:
            size += len(datagram)
            lines = split_datagram(datagram, self._max_message_bytes)
            if lines:
                frames += lines
            else:
                empty += 1
        self._bytes.inc(size)
        self._received.inc(len(frames))
        if empty:
            metrics.EMPTY_FRAMES.inc(empty)
        return frames

    def _drop(self, sender: Sender, count: int) -> None:
        metrics.ERRORS.labels("ingest", "udp_backlog_full").inc(count)
        self._listener.report(
            "udp_backlog",
            "dropped %d UDP messages from %s: Kafka is not keeping up and the "
            "backlog of %d messages is full",
            count,
            sender.address,
            _UDP_BACKLOG,
        )

    async def _drain(self) -> None:
        """Publish the backlog in arrival order, waiting while Kafka is full."""
        listener = self._listener
        while self._backlog:
            frames, sender, headers = self._backlog.popleft()
            self.backlog_messages -= len(frames)
            await listener.publish_frames(frames, sender, headers)

    async def finish(self) -> None:
        """Publish what was received and not yet published; called at shutdown."""
        if self._arrived:
            self._gather_arrivals()
        if self._draining is not None:
            await self._draining

    async def wait_until_quiet(self, quiet_secs: float, deadline: float) -> None:
        """Return once no datagram arrived for ``quiet_secs``, or at ``deadline``.

        Waits ``quiet_secs`` at least: datagrams may wait in the socket unread.
        """
        self._last_arrival = self._loop.time()
        while True:
            now = self._loop.time()
            quiet_at = self._last_arrival + quiet_secs
            if quiet_at <= now or deadline <= now:
                return
            await asyncio.sleep(min(quiet_at, deadline) - now)

    def error_received(self, exc: Exception) -> None:
        logger.warning("UDP socket error: %s", exc)
