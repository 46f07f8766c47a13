"""The kernel's side of the UDP socket: its receive buffer and what it dropped.

UDP has no flow control. When the listener falls behind, the kernel drops
datagrams once the socket's receive buffer is full, and nothing else would ever
say so. A large buffer absorbs bursts; the kernel's own drop count for the
socket, read from ``/proc/net/udp`` (Linux), makes the rest visible.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Final, Protocol

from cefpipe.ratelog import RateLimitedLog
from ingest import metrics

logger = logging.getLogger(__name__)

_LINUX: Final = sys.platform.startswith("linux")
# Linux's SO_RCVBUFFORCE, which Python's socket module does not export: like
# SO_RCVBUF but past net.core.rmem_max, for a process with CAP_NET_ADMIN.
_SO_RCVBUFFORCE: Final = 33
_DROPS_SAMPLE_SECS: Final = 5.0
# Columns of /proc/net/udp and /proc/net/udp6 lines.
_INODE_COLUMN: Final = 9
_DROPS_COLUMN: Final = 12


class UdpSocket(Protocol):
    """What asyncio's and uvloop's transports hand out as their socket."""

    @property
    def family(self) -> int: ...

    def fileno(self) -> int: ...

    def getsockopt(self, level: int, option: int, /) -> int: ...

    def setsockopt(self, level: int, option: int, value: int, /) -> None: ...


def set_receive_buffer(sock: UdpSocket, size_bytes: int) -> int:
    """Ask for a receive buffer of ``size_bytes``; log and return what was granted.

    Without CAP_NET_ADMIN the kernel caps the size at ``net.core.rmem_max``.
    Called once, at start.
    """
    try:
        if not _LINUX:
            raise PermissionError("SO_RCVBUFFORCE is Linux only")
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, size_bytes)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size_bytes)
    granted = receive_buffer_bytes(sock)
    if granted < size_bytes:
        logger.warning(
            "UDP receive buffer is %d bytes, not the %d asked for "
            "(SYSLOG_UDP_RECEIVE_BUFFER_BYTES): raise net.core.rmem_max or grant "
            "CAP_NET_ADMIN, or bursts will be dropped sooner",
            granted,
            size_bytes,
        )
    else:
        logger.info("UDP receive buffer is %d bytes", granted)
    return granted


def receive_buffer_bytes(sock: UdpSocket) -> int:
    """The usable size of the socket's receive buffer."""
    reported = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    # Linux reports twice the size asked for: its bookkeeping included.
    return reported // 2 if _LINUX else reported


def kernel_drops(sock: UdpSocket) -> int | None:
    """Datagrams the kernel dropped for ``sock`` since it opened; None if unknown."""
    table = "udp6" if sock.family == socket.AF_INET6 else "udp"
    inode = str(os.fstat(sock.fileno()).st_ino).encode()
    try:
        lines = Path("/proc/net", table).read_bytes().splitlines()
    except OSError:
        return None
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > _DROPS_COLUMN and fields[_INODE_COLUMN] == inode:
            return int(fields[_DROPS_COLUMN])
    return None


class KernelDrops:
    """Carries the kernel's drop count for one UDP socket into a metric.

    Reading the count costs one small file read per sample, so it is sampled
    every few seconds rather than looked at per datagram.
    """

    def __init__(self, sock: UdpSocket) -> None:
        self._sock = sock
        self._last = kernel_drops(sock)
        self._problems = RateLimitedLog(logger)
        if self._last is None:
            # TODO: count kernel drops where /proc/net/udp is missing (not Linux);
            # SO_RXQ_OVFL would need recvmsg, which the event loop's transport hides.
            logger.info("the kernel's UDP drop count cannot be read here; not exported")

    def sample(self) -> int:
        """Add the drops since the last sample to the metric; return how many."""
        if self._last is None:
            return 0
        now = kernel_drops(self._sock)
        if now is None or now <= self._last:
            return 0
        dropped, self._last = now - self._last, now
        metrics.DATAGRAMS_KERNEL_DROPPED.inc(dropped)
        self._problems.log(
            logging.WARNING,
            "kernel_drops",
            "the kernel dropped %d UDP datagrams: the listener fell behind or "
            "the receive buffer (SYSLOG_UDP_RECEIVE_BUFFER_BYTES) is too small",
            dropped,
        )
        return dropped

    async def run(self, interval_secs: float = _DROPS_SAMPLE_SECS) -> None:
        """Sample every ``interval_secs`` until cancelled."""
        if self._last is None:
            return
        while True:
            await asyncio.sleep(interval_secs)
            self.sample()
