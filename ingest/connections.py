"""Which stream connections are open, and which one gives way when slots run out.

Slots are limited in total (``SYSLOG_MAX_CONNECTIONS``) and per sender host
(``SYSLOG_MAX_CONNECTIONS_PER_SENDER``), so that one host cannot take them all.
At a limit the newcomer is served and the connection idle longest gives way (of
that host for the per-sender limit, of anyone for the total), provided it has
been idle for a moment: a sender that opened connections and went quiet must not
lock out one that has something to say. Only when every candidate is busy is the
newcomer refused.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from ingest.sender import Sender

SENDER_LIMIT: Final = "sender_limit"
TOTAL_LIMIT: Final = "total_limit"
# A connection quiet for less than this may be between two messages: keep it.
EVICTABLE_AFTER_SECS: Final = 1.0


@dataclass(eq=False, slots=True)
class Connection:
    """One open stream connection, as the table tracks it.

    Attributes:
        sender: who connected.
        transport: aborted when the connection gives way to a newcomer.
        last_active: ``time.monotonic()`` when it last delivered bytes, or opened.
        read_timer: the timeout of the read in progress; None while the
            connection hands what it read to Kafka, so it is busy, not idle.
    """

    sender: Sender
    transport: asyncio.WriteTransport
    last_active: float
    read_timer: asyncio.Timeout | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to a newcomer.

    Attributes:
        refused: the limit that turned it away, or None when it was admitted.
        evicted: connections that gave way to it, each with the limit it hit;
            already out of the table, for the caller to close.
    """

    refused: str | None = None
    evicted: tuple[tuple[Connection, str], ...] = ()


_ADMITTED: Final = Admission()


class ConnectionTable:
    """Open connections, least recently active first, overall and per host.

    Not thread-safe; the event loop owns it. :meth:`touch` costs two dictionary
    moves, so it is cheap enough to call for every read.
    """

    def __init__(
        self,
        max_total: int,
        max_per_sender: int,
        evictable_after_secs: float = EVICTABLE_AFTER_SECS,
    ) -> None:
        self._max_total = max_total
        self._max_per_sender = max_per_sender
        self._evictable_after = evictable_after_secs
        self._by_activity: OrderedDict[Connection, None] = OrderedDict()
        self._by_host: dict[str, OrderedDict[Connection, None]] = {}

    def __len__(self) -> int:
        return len(self._by_activity)

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._by_activity))

    def admit(self, newcomer: Connection, now: float) -> Admission:
        """Add ``newcomer``, making room by evicting idle connections if needed."""
        evicted: list[tuple[Connection, str]] = []
        peers = self._by_host.get(newcomer.sender.host)
        if peers is not None and len(peers) >= self._max_per_sender:
            victim = self._idlest(peers, now)
            if victim is None:
                return Admission(refused=SENDER_LIMIT)
            evicted.append((victim, SENDER_LIMIT))

        if len(self._by_activity) - len(evicted) >= self._max_total:
            spared = evicted[0][0] if evicted else None
            victim = self._idlest(self._by_activity, now, spared)
            if victim is None:
                return Admission(refused=TOTAL_LIMIT)
            evicted.append((victim, TOTAL_LIMIT))

        for victim, _ in evicted:
            self.remove(victim)
        self._by_activity[newcomer] = None
        self._by_host.setdefault(newcomer.sender.host, OrderedDict())[newcomer] = None
        return Admission(evicted=tuple(evicted)) if evicted else _ADMITTED

    def touch(self, connection: Connection, now: float) -> None:
        """Record that ``connection`` delivered bytes just now."""
        connection.last_active = now
        try:
            self._by_activity.move_to_end(connection)
            self._by_host[connection.sender.host].move_to_end(connection)
        except KeyError:
            pass  # evicted, reading what was already received before closing

    def remove(self, connection: Connection) -> None:
        """Forget ``connection``; safe to call again for one already removed."""
        if connection not in self._by_activity:
            return
        del self._by_activity[connection]
        host = connection.sender.host
        peers = self._by_host[host]
        del peers[connection]
        if not peers:
            del self._by_host[host]

    def _idlest(
        self,
        candidates: OrderedDict[Connection, None],
        now: float,
        spared: Connection | None = None,
    ) -> Connection | None:
        """The connection idle longest if it may be evicted, else None.

        Busy connections are skipped; after the first idle one, every other is
        more recently active, so the scan stops there.
        """
        for connection in candidates:
            if connection is spared or connection.read_timer is None:
                continue
            if now - connection.last_active >= self._evictable_after:
                return connection
            return None
        return None
