"""One raw syslog message in, one CommonSecurityLog row (or a rejection) out.

``enrich`` is the single entry point every caller shares: the Faust stage calls
it once per syslog message of a raw record and ``cefpipe parse`` once per input
line. It is pure
(no I/O, no logging, no clock: the receive time comes in the envelope) and never
raises, whatever the bytes, so a bad message becomes a dead letter, not a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import orjson

from cefpipe.schema import MAX_FIELD_BYTES
from enrich import contrast
from enrich.cef import CefEvent, CefSyntaxError, parse_cef
from enrich.mapping import Row, map_extensions, receipt_time
from enrich.syslog import SyslogEnvelope, parse_syslog
from enrich.timestamps import format_receive_time

ROW_ID_KEY: Final = "cefpipeRowId"
# Pairs of AdditionalExtensions that are never shortened to fit the field limit.
_KEPT_WHOLE: Final = ("pri=", "outcome=", "eventOutcome=", f"{ROW_ID_KEY}=")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_TWO_DAYS_US: Final = 2 * 86_400 * 1_000_000
_ONE_DAY_US: Final = 86_400 * 1_000_000
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
        cef_version: the CEF version the header named.
        time_out_of_window: TimeGenerated is implausibly far from the receive
            time (kept as stated, counted by the caller).
    """

    row: Row
    truncated_columns: tuple[str, ...] = ()
    duplicate_keys: tuple[str, ...] = ()
    cef_version: str = "0"
    # TimeGenerated (from rt or the syslog prefix) lies more than two days
    # before or a day after the receive time: the service may re-stamp it.
    time_out_of_window: bool = False


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

    row, extensions_cut, event_time = _build_row(event, syslog, envelope)
    truncated = _truncate_long_values(row) if _may_be_too_long(text, envelope) else ()
    if extensions_cut:
        truncated = ("AdditionalExtensions", *truncated)
    return Enriched(
        row,
        truncated,
        event.duplicate_keys,
        event.version,
        event_time is not None and _out_of_window(event_time, envelope.received_at_us),
    )


def _build_row(
    event: CefEvent, syslog: SyslogEnvelope, envelope: Envelope
) -> tuple[Row, bool, str | None]:
    """Columns in a stable order: time, origin, header, extension, record fields.

    Returns the row, whether AdditionalExtensions had to be shortened, and the
    event's own time when TimeGenerated came from it rather than from receipt.
    """
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
        extra.append(f"{ROW_ID_KEY}={envelope.row_id}")
    extensions_cut = False
    if extra:
        row["AdditionalExtensions"], extensions_cut = _join_extensions(extra)
    if is_contrast:
        contrast.add_rule_and_outcome(row, extensions)

    # TODO: an rt far from the receive time (a ten-digit epoch read as
    # milliseconds lands in 1970) still becomes TimeGenerated, flagged and
    # counted but not replaced: whether the service re-stamps or drops such
    # rows is unverified, and the stated rule is rt first.
    event_time = receipt_time(extensions, envelope.received_at_us) or syslog.timestamp
    row["TimeGenerated"] = event_time or format_receive_time(envelope.received_at_us)
    return row, extensions_cut, event_time


def _join_extensions(pairs: list[str]) -> tuple[str, bool]:
    """``k=v`` pairs joined by ``;``, kept under the field limit by their values.

    When the pairs would pass the service's per-field limit, the longest
    values are shortened, never ``pri``, the outcome or the row id: the stock
    queries and rules read those, and the row id is what removes duplicates.
    Returns the joined text and whether anything was shortened.
    """
    joined = ";".join(pairs)
    if len(joined) <= _SAFE_CHARS or len(joined.encode()) <= MAX_FIELD_BYTES:
        return joined, False
    sizes = [len(pair.encode()) for pair in pairs]
    excess = sum(sizes) + len(pairs) - 1 - MAX_FIELD_BYTES
    shortenable = sorted(
        (i for i, pair in enumerate(pairs) if not pair.startswith(_KEPT_WHOLE)),
        key=sizes.__getitem__,
        reverse=True,
    )
    for index in shortenable:
        if excess <= 0:
            break
        key, _, value = pairs[index].partition("=")
        keep = max(0, len(value.encode()) - excess)
        cut = value.encode()[:keep].decode("utf-8", "ignore")
        excess -= len(value.encode()) - len(cut.encode())
        pairs[index] = f"{key}={cut}"
    return ";".join(pairs), True


def _out_of_window(time_generated: str, received_at_us: int) -> bool:
    """Whether an event time lies further from receipt than the service accepts."""
    try:
        moment = datetime.fromisoformat(time_generated)
    except ValueError:
        return True
    offset_us = (moment - _EPOCH).total_seconds() * 1e6 - received_at_us
    return not -_TWO_DAYS_US <= offset_us <= _ONE_DAY_US


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
