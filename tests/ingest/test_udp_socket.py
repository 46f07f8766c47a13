"""The UDP socket's receive buffer, and datagrams the kernel dropped, made visible."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ingest.udp_socket import KernelDrops, kernel_drops, set_receive_buffer
from tests.ingest.conftest import StartListener
from tests.ingest.helpers import metric, wait_until

KERNEL_DROPPED = "cefpipe_ingest_kernel_dropped_datagrams_total"
RMEM_MAX = Path("/proc/sys/net/core/rmem_max")

linux_only = pytest.mark.skipif(
    not Path("/proc/net/udp").exists(), reason="reads Linux's /proc/net/udp"
)


def rmem_max() -> int:
    """The largest buffer an unprivileged process may ask for."""
    return int(RMEM_MAX.read_text()) if RMEM_MAX.exists() else 0


def overflow(receiver: socket.socket, datagrams: int = 2000) -> None:
    """Send more than ``receiver``'s buffer holds, without reading any of it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(datagrams):
            sender.sendto(b"x" * 1000, receiver.getsockname())


def test_receive_buffer_is_what_was_asked_or_the_most_the_kernel_allows() -> None:
    asked = 8 * 1024 * 1024
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        granted = set_receive_buffer(sock, asked)

    assert granted >= min(asked, rmem_max())


@linux_only
def test_kernel_drops_of_an_overflowing_socket_are_counted() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        set_receive_buffer(receiver, 65536)
        drops = KernelDrops(receiver)
        before = metric(KERNEL_DROPPED)
        assert kernel_drops(receiver) == 0

        overflow(receiver)

        dropped = drops.sample()
        assert dropped > 0
        assert dropped == kernel_drops(receiver)
        assert metric(KERNEL_DROPPED) == before + dropped
        assert drops.sample() == 0


@pytest.mark.broker
async def test_listener_asks_for_the_configured_udp_receive_buffer(
    start_listener: StartListener,
) -> None:
    asked = 8 * 1024 * 1024

    listener = await start_listener(SYSLOG_UDP_RECEIVE_BUFFER_BYTES=str(asked))

    assert listener.udp_receive_buffer_bytes >= min(asked, rmem_max())


@linux_only
@pytest.mark.broker
async def test_listener_exports_the_kernels_udp_drops(
    start_listener: StartListener,
) -> None:
    listener = await start_listener(SYSLOG_UDP_RECEIVE_BUFFER_BYTES="65536")
    before = metric(KERNEL_DROPPED)
    address = ("127.0.0.1", listener.bound["udp"])

    # Blocking sends: the listener's event loop reads none of them meanwhile.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(2000):
            sender.sendto(b"<134>" + b"x" * 1000, address)

    await wait_until(lambda: metric(KERNEL_DROPPED) > before, "kernel drops counted")
