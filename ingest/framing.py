"""Cut a TCP byte stream into syslog messages (RFC 6587), without doing any I/O.

Two framings share one stream and are told apart frame by frame, as rsyslog and
Vector do: a frame that starts with ``[1-9][0-9]* SP`` is octet-counted (``LEN SP
MSG``, where MSG may hold raw line breaks); anything else runs to the next LF or
NUL (non-transparent framing). A message longer than the limit is never held in
memory whole: its first bytes are kept for the dead-letter topic and the rest is
skipped, so one bad sender cannot exhaust the listener.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_OCTET_PREFIX: Final = re.compile(rb"[1-9][0-9]{0,9} ")
_MAX_PREFIX_BYTES: Final = 11  # ten digits and the space


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
        # When skipping the tail of an oversized frame: bytes still to drop for
        # an octet-counted frame, or -1 to drop up to the next delimiter.
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
        length = int(match.group()[:-1])
        if length > self._max:
            return self._oversized_octet_frame(match.end(), length)
        end = match.end() + length
        if len(self._buffer) < end:
            return None
        data = bytes(self._buffer[match.end() : end])
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


def _find_delimiter(buffer: bytearray) -> int:
    """Index of the first LF or NUL, or -1; scans for NUL only up to the LF."""
    lf = buffer.find(b"\n")
    nul = buffer.find(b"\x00", 0, lf if lf >= 0 else len(buffer))
    return nul if nul >= 0 else lf
