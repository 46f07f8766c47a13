"""``cefpipe send FILE``: replay syslog messages to a listener, one per line.

Useful to try the pipeline with a sample or to replay a capture. Over TCP each
line is framed with a newline (or RFC 6587 octet counting with
``--octet-counted``); over UDP each line is one datagram. Blank lines are not
messages and are skipped.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path


def read_messages(file: Path) -> Iterator[bytes]:
    """Each non-blank line of ``file`` (``-`` for stdin) without its line break."""
    stream = sys.stdin.buffer if str(file) == "-" else file.open("rb")
    try:
        for line in stream:
            message = line.rstrip(b"\n")
            if message.strip(b"\r"):
                yield message
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def frame(message: bytes, octet_counted: bool) -> bytes:
    if octet_counted:
        return str(len(message)).encode() + b" " + message
    return message + b"\n"


def send_tcp(
    messages: Iterator[bytes], host: str, port: int, octet_counted: bool
) -> int:
    sent = 0
    with socket.create_connection((host, port), timeout=30) as connection:
        batch: list[bytes] = []
        for message in messages:
            batch.append(frame(message, octet_counted))
            sent += 1
            if len(batch) >= 512:
                connection.sendall(b"".join(batch))
                batch.clear()
        if batch:
            connection.sendall(b"".join(batch))
        connection.shutdown(socket.SHUT_WR)
        connection.recv(1)  # wait for the listener to close its side
    return sent


def send_udp(messages: Iterator[bytes], host: str, port: int) -> int:
    sent = 0
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        for message in messages:
            sock.sendto(message, (host, port))
            sent += 1
    return sent


def run(file: Path, *, host: str, port: int, udp: bool, octet_counted: bool) -> int:
    if str(file) != "-" and not file.is_file():
        print(f"cefpipe send: no such file: {file}", file=sys.stderr)
        return 2
    try:
        if udp:
            count = send_udp(read_messages(file), host, port)
        else:
            count = send_tcp(read_messages(file), host, port, octet_counted)
    except OSError as exc:
        print(f"cefpipe send: cannot reach {host}:{port}: {exc}", file=sys.stderr)
        return 1
    transport = "UDP" if udp else "TCP"
    print(f"sent {count} messages to {host}:{port} over {transport}")
    return 0
