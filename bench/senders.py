"""Syslog agents on loopback: many TCP senders, each from its own 127.0.0.x address.

Ingest keys raw records by the sender's address, so a fleet of agents spreads
over the raw topic's partitions while a single relay lands on one. Giving each
connection its own loopback source address reproduces a fleet without leaving
the machine. Messages are newline-framed, as most agents send them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Agent:
    """One sender: its source address and the messages it sends, in order."""

    source: str
    messages: Sequence[bytes]

    def framed(self) -> bytes:
        return b"".join(message + b"\n" for message in self.messages)


def fleet(messages: Sequence[bytes], agents: int) -> list[Agent]:
    """Deal ``messages`` round-robin to ``agents`` senders on 127.0.0.2 upwards.

    A single agent sends from 127.0.0.1, like a relay on the same host.
    """
    if agents == 1:
        return [Agent("127.0.0.1", list(messages))]
    return [
        Agent(f"127.0.{(n + 2) // 256}.{(n + 2) % 256}", messages[n::agents])
        for n in range(agents)
    ]


def _connect(agent: Agent, port: int) -> socket.socket:
    return socket.create_connection(
        ("127.0.0.1", port), timeout=120, source_address=(agent.source, 0)
    )


def _send_all(
    agent: Agent, payload: bytes, port: int, errors: list[BaseException]
) -> None:
    try:
        with _connect(agent, port) as connection:
            connection.sendall(payload)
            connection.shutdown(socket.SHUT_WR)
            connection.recv(1)  # the listener closes its side once it read all
    except OSError as exc:
        errors.append(exc)


class Blast:
    """Every agent sends everything at once, each on its own connection and thread.

    ``start`` returns at once; ``join`` waits until every byte was written and
    every connection closed, and raises the first send error.
    """

    def __init__(self, agents: Sequence[Agent], port: int) -> None:
        self._payloads = [(agent, agent.framed()) for agent in agents]
        self._port = port
        self._errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for agent, payload in self._payloads:
            thread = threading.Thread(
                target=_send_all,
                args=(agent, payload, self._port, self._errors),
                daemon=True,
            )
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()

    def join(self, timeout_secs: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_secs
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._errors:
            raise self._errors[0]


def send_paced(
    agents: Sequence[Agent], port: int, rate_per_sec: float, tick_secs: float = 0.005
) -> float:
    """Send every agent's messages at ``rate_per_sec`` in total; return the seconds.

    Agents take turns message by message; whatever is due is written every tick,
    so the offered rate holds even when a tick runs late.
    """
    connections = [_connect(agent, port) for agent in agents]
    order = [
        (index, message)
        for position in range(max(len(agent.messages) for agent in agents))
        for index, agent in enumerate(agents)
        if position < len(agent.messages)
        for message in (agent.messages[position],)
    ]
    started = time.monotonic()
    sent = 0
    try:
        while sent < len(order):
            due = min(len(order), int((time.monotonic() - started) * rate_per_sec) + 1)
            pending: dict[int, list[bytes]] = {}
            for index, message in order[sent:due]:
                pending.setdefault(index, []).append(message + b"\n")
            for index, chunks in pending.items():
                connections[index].sendall(b"".join(chunks))
            sent = due
            time.sleep(tick_secs)
        return time.monotonic() - started
    finally:
        for connection in connections:
            connection.close()
