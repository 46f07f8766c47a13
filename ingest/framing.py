"""Cut received bytes into syslog messages, without doing any I/O.

A TCP stream (RFC 6587) carries two framings, told apart frame by frame: a frame is
octet-counted (``LEN SP MSG``, where MSG may hold raw line breaks) when it starts
with ``[1-9][0-9]* SP`` followed by the start of a syslog message, ``<`` (PRI) or,
for bare CEF, ``CEF:``. Anything else runs to the next LF or NUL (non-transparent
framing), so a line that merely starts with digits, such as a timestamp with a
numeric month (``4 12 11:29:51 host CEF:0|...``), is not mistaken for a length.
A message longer than the limit is never held in memory whole: its first bytes
are kept for the dead-letter topic and the rest is skipped, so one bad sender
cannot exhaust the listener.

UDP carries no framing, but relays pack several lines into one datagram, and a
raw LF is never valid inside a CEF message: :func:`split_datagram` cuts a
datagram at LF and NUL as a newline-framed stream is cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_OCTET_PREFIX: Final = re.compile(rb"[1-9][0-9]{0,9} ")
_MAX_PREFIX_BYTES: Final = 11  # ten digits and the space
_PRI_START: Final = ord("<")
_BARE_CEF: Final = b"CEF:"


@dataclass(frozen=True, slots=True)
class Frame:
    """One message cut from the stream.

    Attributes:
        data: the message bytes, framing removed; for an oversized message only
            its first ``max_message_bytes`` bytes.
        oversized: True when the message exceeded the limit and was cut.
        octet_counted: True when the frame used RFC 6587 octet counting.
    """

    data: bytes
    oversized: bool = False
    octet_counted: bool = False


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, get whole frames back.

    Not thread-safe; use one decoder per connection.
    """

    def __init__(self, max_message_bytes: int) -> None:
        self._max = max_message_bytes
        self._buffer = bytearray()
        # When skipping the tail of an oversized frame: bytes still to drop of
        # an octet-counted frame, or (the flag) everything up to the next delimiter.
        self._skip_octets = 0
        self._skip_to_delimiter = False
        self.empty_frames = 0

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return every frame they complete, in order."""
        self._buffer += data
        frames: list[Frame] = []
        while self._buffer:
            if not self._drop_skipped_bytes():
                break
            frame = self._next_frame()
            if frame is None:
                break
            if frame.data or frame.oversized:
                frames.append(frame)
            else:
                self.empty_frames += 1
        return frames

    def close(self) -> list[Frame]:
        """End of stream: a trailing message without a delimiter still counts."""
        frames: list[Frame] = []
        if self._skip_octets or self._skip_to_delimiter:
            self._buffer.clear()
        if self._buffer.strip(b"\r\n\x00"):
            data = bytes(self._buffer)
            frames.append(Frame(data[: self._max], oversized=len(data) > self._max))
        self._buffer.clear()
        return frames

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    def _drop_skipped_bytes(self) -> bool:
        """Discard the tail of an oversized frame; False if more input is needed."""
        if self._skip_octets:
            dropped = min(self._skip_octets, len(self._buffer))
            del self._buffer[:dropped]
            self._skip_octets -= dropped
            return self._skip_octets == 0
        if self._skip_to_delimiter:
            end = _find_delimiter(self._buffer)
            if end < 0:
                self._buffer.clear()
                return False
            del self._buffer[: end + 1]
            self._skip_to_delimiter = False
        return True

    def _next_frame(self) -> Frame | None:
        if self._buffer[0] in b"123456789":
            frame = self._octet_frame()
            if not isinstance(frame, _NotOctet):
                return frame
        return self._delimited_frame()

    def _octet_frame(self) -> Frame | _NotOctet | None:
        """An octet-counted frame, None if incomplete, _NOT_OCTET if not one."""
        match = _OCTET_PREFIX.match(self._buffer)
        if match is None:
            if len(self._buffer) < _MAX_PREFIX_BYTES and self._buffer.isdigit():
                return None  # the length may still be arriving
            return _NOT_OCTET
        start = match.end()
        starts = _message_starts(self._buffer, start)
        if starts is None:
            return None
        if not starts:
            return _NOT_OCTET
        length = int(match.group()[:-1])
        if length > self._max:
            return self._oversized_octet_frame(start, length)
        end = start + length
        if len(self._buffer) < end:
            return None
        data = bytes(self._buffer[start:end])
        del self._buffer[:end]
        return Frame(data, octet_counted=True)

    def _oversized_octet_frame(self, start: int, length: int) -> Frame | None:
        if len(self._buffer) < start + self._max:
            return None
        data = bytes(self._buffer[start : start + self._max])
        available = len(self._buffer) - start
        consumed = min(length, available)
        del self._buffer[: start + consumed]
        self._skip_octets = length - consumed
        return Frame(data, oversized=True, octet_counted=True)

    def _delimited_frame(self) -> Frame | None:
        end = _find_delimiter(self._buffer)
        if end < 0:
            if len(self._buffer) > self._max:
                data = bytes(self._buffer[: self._max])
                self._buffer.clear()
                self._skip_to_delimiter = True
                return Frame(data, oversized=True)
            return None
        data = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        if len(data) > self._max:
            return Frame(data[: self._max], oversized=True)
        return Frame(data)


class _NotOctet:
    """Marks a frame that starts with a digit but is not octet-counted."""


_NOT_OCTET: Final = _NotOctet()


def _message_starts(buffer: bytearray, start: int) -> bool | None:
    """Whether a syslog message starts at ``start``, right after ``LEN SP``.

    True for ``<`` (PRI) or ``CEF:``; None while too few bytes arrived to tell.
    """
    if len(buffer) <= start:
        return None
    if buffer[start] == _PRI_START:
        return True
    opening = buffer[start : start + len(_BARE_CEF)]
    if opening == _BARE_CEF:
        return True
    if len(opening) < len(_BARE_CEF) and _BARE_CEF.startswith(opening):
        return None
    return False


def split_datagram(datagram: bytes, max_message_bytes: int) -> list[Frame]:
    """The messages of one UDP datagram: one per LF- or NUL-terminated line.

    Empty lines are dropped and a CR before the LF stays part of the message, as
    on a newline-framed TCP stream. A line longer than the limit is cut to its
    first ``max_message_bytes`` bytes and marked oversized.
    """
    if b"\x00" in datagram:
        datagram = datagram.replace(b"\x00", b"\n")
    lines = datagram.split(b"\n") if b"\n" in datagram else (datagram,)
    return [
        Frame(line)
        if len(line) <= max_message_bytes
        else Frame(line[:max_message_bytes], oversized=True)
        for line in lines
        if line
    ]


def _find_delimiter(buffer: bytearray) -> int:
    """Index of the first LF or NUL, or -1; scans for NUL only up to the LF."""
    lf = buffer.find(b"\n")
    nul = buffer.find(b"\x00", 0, lf if lf >= 0 else len(buffer))
    return nul if nul >= 0 else lf
