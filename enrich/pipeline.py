"""One raw syslog message in, one CommonSecurityLog row (or a rejection) out.

``enrich`` is the single entry point every caller shares: the Faust stage calls
it once per Kafka record and ``cefpipe parse`` once per input line. It is pure
(no I/O, no logging, no clock: the receive time comes in the envelope) and never
raises, whatever the bytes, so a bad message becomes a dead letter, not a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import orjson

from cefpipe.schema import MAX_FIELD_BYTES
from enrich import contrast
from enrich.cef import CefEvent, CefSyntaxError, parse_cef
from enrich.mapping import Row, map_extensions, receipt_time
from enrich.syslog import SyslogEnvelope, parse_syslog
from enrich.timestamps import format_receive_time

_BLANK: Final = " \t\r\n\x0b\x0c\ufeff"
# No string of this many characters or fewer can exceed the byte limit.
_SAFE_CHARS: Final = MAX_FIELD_BYTES // 4


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the receiver knows about a message besides its bytes."""

    received_at_us: int  # receive time, epoch microseconds
    peer: str | None = None  # sender "ip:port" or "[v6]:port"
    collector: str | None = None  # CollectorHostName: the ingest instance
    row_id: str | None = None  # appended last to AdditionalExtensions


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message makes no row.

    Attributes:
        reason: short stable code: empty_message, not_cef, cef_header_incomplete,
            cef_version_invalid, cef_extension_malformed or internal_error.
        message: one human sentence.
    """

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Enriched:
    """A row ready for the enriched topic.

    Attributes:
        row: CommonSecurityLog columns plus ``Rule``/``Outcome``; no None values.
        truncated_columns: columns cut to the service's per-field byte limit.
        duplicate_keys: extension keys that appeared more than once.
    """

    row: Row
    truncated_columns: tuple[str, ...] = ()
    duplicate_keys: tuple[str, ...] = ()


_EMPTY: Final = Rejection("empty_message", "empty message")
_NOT_CEF: Final = Rejection("not_cef", "not CEF: no 'CEF:' marker at a token boundary")


def enrich(raw: bytes, envelope: Envelope) -> Enriched | Rejection:
    """Parse one syslog message and map it to a CommonSecurityLog row.

    Safe to call from any thread, any number of times; never raises.
    """
    try:
        return _enrich(raw, envelope)
    except Exception as exc:  # the contract is "never raises", whatever the bytes
        return Rejection("internal_error", f"internal error: {type(exc).__name__}")


def encode_row(row: Mapping[str, object]) -> bytes:
    """The row as the enriched topic's JSON value."""
    return orjson.dumps(row)


def _enrich(raw: bytes, envelope: Envelope) -> Enriched | Rejection:
    text = raw.decode("utf-8", "replace").rstrip("\r\n")
    if not text.strip(_BLANK):
        return _EMPTY

    syslog = parse_syslog(text)
    if syslog is None:
        return _NOT_CEF
    try:
        event = parse_cef(text, syslog.cef_offset)
    except CefSyntaxError as exc:
        return Rejection(exc.reason, exc.message)

    row = _build_row(event, syslog, envelope)
    truncated = _truncate_long_values(row) if _may_be_too_long(text, envelope) else ()
    return Enriched(row, truncated, event.duplicate_keys)


def _build_row(event: CefEvent, syslog: SyslogEnvelope, envelope: Envelope) -> Row:
    """Columns in a stable order: time, origin, header, extension, record fields."""
    row: Row = {"TimeGenerated": ""}
    computer = syslog.hostname or _peer_host(envelope.peer)
    if computer:
        row["Computer"] = computer
    if envelope.collector is not None:
        row["CollectorHostName"] = envelope.collector
    _add_header(row, event)

    extensions = event.extensions
    is_contrast = contrast.is_contrast(event.device_vendor)
    if is_contrast:
        contrast.drop_placeholders(extensions)
    extra = map_extensions(
        extensions,
        row,
        received_at_us=envelope.received_at_us,
        echo_keys=contrast.ECHOED_KEYS if is_contrast else (),
    )
    if envelope.row_id is not None:
        extra.append(f"cefpipeRowId={envelope.row_id}")
    if extra:
        row["AdditionalExtensions"] = ";".join(extra)
    if is_contrast:
        contrast.add_rule_and_outcome(row, extensions)

    # TODO: an rt far from the receive time (a ten-digit epoch read as
    # milliseconds lands in 1970) still becomes TimeGenerated; how old a
    # TimeGenerated the service accepts is unverified, so no window applies yet.
    row["TimeGenerated"] = (
        receipt_time(extensions, envelope.received_at_us)
        or syslog.timestamp
        or format_receive_time(envelope.received_at_us)
    )
    return row


def _add_header(row: Row, event: CefEvent) -> None:
    """Header fields verbatim; an empty field is a missing value, as in extensions."""
    if event.device_vendor:
        row["DeviceVendor"] = event.device_vendor
    if event.device_product:
        row["DeviceProduct"] = event.device_product
    if event.device_version:
        row["DeviceVersion"] = event.device_version
    if event.signature_id:
        row["DeviceEventClassID"] = event.signature_id
    if event.name:
        row["Activity"] = event.name
    if event.severity:
        row["LogSeverity"] = event.severity


def _peer_host(peer: str | None) -> str | None:
    """The host part of ``ip:port``, ``[v6]:port``, or of a bare address."""
    if not peer:
        return None
    if peer.startswith("["):
        return peer[1:].partition("]")[0] or None
    if peer.count(":") == 1:
        return peer.partition(":")[0] or None
    return peer


def _may_be_too_long(text: str, envelope: Envelope) -> bool:
    """Whether any value could pass the byte limit; False saves a scan of the row.

    Every value is a piece of the message or an envelope field, except
    AdditionalExtensions, which is at most the message twice (an echoed
    outcome) plus the row id.
    """
    envelope_chars = (
        len(envelope.peer or "")
        + len(envelope.collector or "")
        + len(envelope.row_id or "")
    )
    return 2 * len(text) + envelope_chars + 64 > _SAFE_CHARS


def _truncate_long_values(row: Row) -> tuple[str, ...]:
    """Cut values over the per-field byte limit on a character boundary."""
    truncated: list[str] = []
    for column, value in row.items():
        if isinstance(value, str) and len(value) > _SAFE_CHARS:
            encoded = value.encode()
            if len(encoded) > MAX_FIELD_BYTES:
                row[column] = encoded[:MAX_FIELD_BYTES].decode("utf-8", "ignore")
                truncated.append(column)
    return tuple(truncated)
