"""The Kafka record contracts between stages: raw, enriched and dead-letter.

Raw topic (written by ingest, read by enrich): each record carries the bytes of
syslog messages exactly as framed off the wire (framing removed, nothing else
touched). Without a ``messages`` header the value is one message. With it, the
value holds that many messages read together from one sender, each written as
an RFC 6587 octet-counted frame (``LEN SP MSG``, LEN in decimal bytes), so that
any consumer can split it and a message may contain line breaks. Batching only
amortises the per-record cost downstream; every message still becomes its own
row or its own dead letter. The key is the sender's address, so one sender's
messages stay in order on one partition. Headers carry what only the receiver
knows, and apply to every message of the record.

Enriched topic (written by enrich, read by the sink): one record per row, the
value an orjson-encoded JSON object holding CommonSecurityLog columns plus the
record-only fields ``Rule`` and ``Outcome`` (see :mod:`cefpipe.schema`). The
sink puts these bytes into an upload unchanged, so each row is serialised once.

Dead-letter topic (written by every stage): the value is the original bytes of
what could not be handled (a raw message, or an enriched row the service
refused); headers say which stage gave up, why, and where the bytes came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

# Raw record headers, set by ingest.
HEADER_RECEIVED_AT_US: Final = "received_at_us"  # epoch microseconds, ASCII digits
HEADER_PEER: Final = "peer"  # sender address "ip:port" as seen by the listener
HEADER_TRANSPORT: Final = "transport"  # tcp, udp or tls
HEADER_COLLECTOR: Final = "collector"  # the ingest instance that received it
HEADER_MESSAGES: Final = "messages"  # present when the value packs N messages

# Dead-letter record headers.
HEADER_STAGE: Final = "stage"  # ingest, enrich or sink
HEADER_REASON: Final = "reason"  # short stable code, e.g. not_cef
HEADER_MESSAGE: Final = "message"  # one human sentence
HEADER_SOURCE: Final = (
    "source"  # where the bytes came from: peer or topic/partition/offset
)
HEADER_DETAIL: Final = "detail"  # optional: service error code, request id, ...

# Headers as Kafka clients hand them over (confluent-kafka and aiokafka alike).
Headers = Sequence[tuple[str, str | bytes | None]]
# Headers as confluent-kafka's produce() takes them.
KafkaHeaders = list[tuple[str, str | bytes | None]]


def header(headers: Headers | None, name: str) -> str | None:
    """The last value of header ``name`` decoded as UTF-8, or None."""
    if not headers:
        return None
    found: str | bytes | None = None
    for key, value in headers:
        if key == name:
            found = value
    if isinstance(found, bytes):
        return found.decode("utf-8", "replace")
    return found


class MalformedRecordError(ValueError):
    """A packed raw record whose frames do not add up; the message says where."""


def pack_messages(messages: Sequence[bytes]) -> bytes:
    """Several messages as one raw record value (octet-counted frames)."""
    return b"".join(b"%d %b" % (len(message), message) for message in messages)


def unpack_messages(value: bytes, count: int) -> list[bytes]:
    """The ``count`` messages of a packed raw record value, in order.

    Raises:
        MalformedRecordError: a length is missing or wrong, or the count differs.
    """
    messages: list[bytes] = []
    position = 0
    end = len(value)
    while position < end:
        space = value.find(b" ", position, position + 11)
        digits = value[position:space] if space > position else b""
        if not digits.isdigit():
            raise MalformedRecordError(f"no frame length at byte {position}")
        start = space + 1
        stop = start + int(digits)
        if stop > end:
            raise MalformedRecordError(f"frame at byte {position} runs past the end")
        messages.append(value[start:stop])
        position = stop
    if len(messages) != count:
        raise MalformedRecordError(f"{len(messages)} frames, header says {count}")
    return messages


@dataclass(frozen=True)
class DeadLetter:
    """Why some bytes could not be carried further, and where they came from."""

    stage: str
    reason: str
    message: str
    source: str
    detail: str = ""

    def headers(self, extra: Headers = ()) -> KafkaHeaders:
        """Kafka headers for this dead letter, followed by ``extra``."""
        out: KafkaHeaders = [
            (HEADER_STAGE, self.stage.encode()),
            (HEADER_REASON, self.reason.encode()),
            (HEADER_MESSAGE, self.message.encode()),
            (HEADER_SOURCE, self.source.encode()),
        ]
        if self.detail:
            out.append((HEADER_DETAIL, self.detail.encode()))
        out.extend(extra)
        return out

    @classmethod
    def from_headers(cls, headers: Headers | None) -> DeadLetter:
        return cls(
            stage=header(headers, HEADER_STAGE) or "",
            reason=header(headers, HEADER_REASON) or "",
            message=header(headers, HEADER_MESSAGE) or "",
            source=header(headers, HEADER_SOURCE) or "",
            detail=header(headers, HEADER_DETAIL) or "",
        )
