"""The syslog listener: TCP and UDP on one port, optionally TLS on another.

It stays thin on purpose. It cuts frames, stamps each message with what only the
receiver knows (receive time, sender, transport, this instance), and hands the
bytes to Kafka untouched. Parsing belongs to the enrich stage, which can scale
out; a listener that parsed would become the bottleneck.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
from ingest import metrics
from ingest.framing import Frame, FrameDecoder
from ingest.publisher import RawPublisher

logger = logging.getLogger(__name__)

_READ_BYTES = 256 * 1024
_UDP_BACKLOG = 50_000


@dataclass(frozen=True)
class Sender:
    """Who sent a message, as the listener saw it."""

    host: str
    port: int
    transport: str

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @classmethod
    def from_peername(cls, peername: Any, transport: str) -> Sender:
        if isinstance(peername, tuple) and len(peername) >= 2:
            return cls(str(peername[0]), int(peername[1]), transport)
        return cls(str(peername), 0, transport)


class SyslogListener:
    """Accepts syslog over TCP, UDP and TLS and publishes every message.

    ``start`` binds all sockets (raising if a port is taken); ``stop`` closes
    them and the open connections; both are called once by the entry point.
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
        self._connections: set[asyncio.Task[None]] = set()
        self._problems = RateLimitedLog(logger)
        self.bound: dict[str, int] = {}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self._settings
        tcp = await asyncio.start_server(
            self._tcp_connection, cfg.bind_host, cfg.port, limit=_READ_BYTES
        )
        self._servers.append(tcp)
        self.bound["tcp"] = tcp.sockets[0].getsockname()[1]

        udp_port = self.bound["tcp"] if cfg.port == 0 else cfg.port
        protocol = _UdpProtocol(self)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: protocol, local_addr=(cfg.bind_host, udp_port)
        )
        self._udp_protocol = protocol
        self._udp = transport
        self.bound["udp"] = transport.get_extra_info("sockname")[1]

        if self._tls_context is not None:
            tls = await asyncio.start_server(
                self._tls_connection,
                cfg.bind_host,
                cfg.tls_port,
                ssl=self._tls_context,
                limit=_READ_BYTES,
            )
            self._servers.append(tls)
            self.bound["tls"] = tls.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop accepting, close open connections, finish queued UDP messages."""
        for server in self._servers:
            server.close()
        if self._udp is not None:
            self._udp.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        if self._udp_protocol is not None:
            await self._udp_protocol.drain()

    async def _tcp_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self._serve_stream(reader, writer, "tcp")

    async def _tls_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self._serve_stream(reader, writer, "tls")

    async def _serve_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, transport: str
    ) -> None:
        sender = Sender.from_peername(writer.get_extra_info("peername"), transport)
        if len(self._connections) >= self._settings.max_connections:
            metrics.CONNECTIONS_REFUSED.labels("too_many_connections").inc()
            self._problems.log(
                logging.WARNING,
                "too_many",
                "refused a %s connection from %s: already %d open "
                "(SYSLOG_MAX_CONNECTIONS)",
                transport,
                sender.address,
                len(self._connections),
            )
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        metrics.CONNECTIONS_OPEN.labels(transport).inc()
        try:
            await self._read_frames(reader, sender)
        except (ConnectionError, ssl.SSLError) as exc:
            logger.info(
                "%s connection from %s ended: %s", transport, sender.address, exc
            )
        except TimeoutError:
            logger.info(
                "closed %s connection from %s: idle for %.0fs",
                transport,
                sender.address,
                self._settings.idle_timeout_secs,
            )
        finally:
            self._connections.discard(task)
            metrics.CONNECTIONS_OPEN.labels(transport).dec()
            writer.close()

    async def _read_frames(self, reader: asyncio.StreamReader, sender: Sender) -> None:
        decoder = FrameDecoder(self._settings.max_message_bytes)
        static = self._sender_headers(sender)
        received = metrics.MESSAGES_RECEIVED.labels(sender.transport)
        read_bytes = metrics.BYTES_RECEIVED.labels(sender.transport)
        empty_before = 0
        while True:
            chunk = await asyncio.wait_for(
                reader.read(_READ_BYTES), self._settings.idle_timeout_secs
            )
            if not chunk:
                break
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

    def headers_for(self, sender: Sender) -> KafkaHeaders:
        """Record headers for a message from ``sender`` received just now."""
        return _stamped(self._sender_headers(sender))

    def datagram_frame(self, data: bytes) -> Frame:
        limit = self._settings.max_message_bytes
        return Frame(data[:limit], oversized=len(data) > limit)

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


def _stamped(static: KafkaHeaders) -> KafkaHeaders:
    """Headers for messages read now: receive time first, then the sender's."""
    return [(HEADER_RECEIVED_AT_US, str(time.time_ns() // 1000).encode()), *static]


class _UdpProtocol(asyncio.DatagramProtocol):
    """One datagram is one message (RFC 5426).

    Datagrams that arrive in the same turn of the event loop from the same
    sender are published together, so that a flood packs into few raw records
    as a busy TCP stream does. UDP has no flow control: while the producer
    queue is full, datagrams wait in a bounded backlog; beyond it they are
    counted and dropped, as the kernel would drop them anyway.
    """

    def __init__(self, listener: SyslogListener) -> None:
        self._listener = listener
        self._arrived: dict[Any, list[bytes]] = {}
        self._backlog: collections.deque[tuple[list[Frame], Sender, KafkaHeaders]] = (
            collections.deque()
        )
        self._backlog_datagrams = 0
        self._draining: asyncio.Task[None] | None = None
        self._received = metrics.MESSAGES_RECEIVED.labels("udp")
        self._bytes = metrics.BYTES_RECEIVED.labels("udp")

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._received.inc()
        self._bytes.inc(len(data))
        if not self._arrived:
            asyncio.get_running_loop().call_soon(self._gather_arrivals)
        self._arrived.setdefault(addr, []).append(data)

    def _gather_arrivals(self) -> None:
        arrived, self._arrived = self._arrived, {}
        listener = self._listener
        for addr, datagrams in arrived.items():
            sender = Sender.from_peername(addr, "udp")
            if self._backlog_datagrams + len(datagrams) > _UDP_BACKLOG:
                self._drop(sender, len(datagrams))
                continue
            frames = [listener.datagram_frame(data) for data in datagrams]
            self._backlog.append((frames, sender, listener.headers_for(sender)))
            self._backlog_datagrams += len(datagrams)
        if self._backlog and (self._draining is None or self._draining.done()):
            self._draining = asyncio.ensure_future(self.drain())

    def _drop(self, sender: Sender, count: int) -> None:
        metrics.ERRORS.labels("ingest", "udp_backlog_full").inc(count)
        self._listener.report(
            "udp_backlog",
            "dropped %d UDP datagrams from %s: Kafka is not keeping up and the "
            "backlog of %d datagrams is full",
            count,
            sender.address,
            _UDP_BACKLOG,
        )

    async def drain(self) -> None:
        """Publish the backlog in arrival order; called again at shutdown."""
        if self._arrived:
            self._gather_arrivals()
        listener = self._listener
        while self._backlog:
            frames, sender, headers = self._backlog.popleft()
            self._backlog_datagrams -= len(frames)
            await listener.publish_frames(frames, sender, headers)

    def error_received(self, exc: Exception) -> None:
        logger.warning("UDP socket error: %s", exc)
