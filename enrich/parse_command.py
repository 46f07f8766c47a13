"""``cefpipe parse``: run the enrich stage over a file, without Kafka.

Rows go to stdout as JSON lines in input order; each rejected message goes to
stderr as a JSON line naming its 1-based message number, reason and message.
The exit status is 1 when any message was rejected, so the command can gate a
sample file in CI.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import orjson

from enrich.pipeline import Envelope, Rejection, encode_row, enrich
from ingest.framing import FrameDecoder

# Generous: a file is trusted input, and RFC 6587 frames may be large.
MAX_FRAME_BYTES: Final = 16 * 1024 * 1024

_OVERSIZED: Final = Rejection(
    "message_too_large", f"message longer than {MAX_FRAME_BYTES} bytes"
)


def run(file: Path | None, *, octet_counted: bool) -> int:
    """Parse every message of ``file`` (stdin when None); 1 if any was rejected.

    Returns 2, with one line on stderr, when ``file`` cannot be read.
    """
    try:
        data = file.read_bytes() if file is not None else sys.stdin.buffer.read()
    except OSError as exc:
        print(f"cefpipe parse: cannot read {file}: {exc.strerror}", file=sys.stderr)
        return 2
    messages = _octet_counted_messages(data) if octet_counted else _lines(data)
    out, err = sys.stdout.buffer, sys.stderr.buffer

    rejected = False
    try:
        for number, message in enumerate(messages, start=1):
            now_us = time.time_ns() // 1000
            result = (
                message
                if isinstance(message, Rejection)
                else enrich(message, Envelope(now_us))
            )
            if isinstance(result, Rejection):
                rejected = True
                err.write(_rejection_line(number, result))
            else:
                out.write(encode_row(result.row) + b"\n")
        out.flush()
    except BrokenPipeError:
        _silence_stdout()
    return 1 if rejected else 0


def _lines(data: bytes) -> Iterator[bytes | Rejection]:
    """One message per LF-terminated line; zero-length lines are no message."""
    return (line for line in data.split(b"\n") if line)


def _octet_counted_messages(data: bytes) -> Iterator[bytes | Rejection]:
    """RFC 6587 frames; an oversized frame is already a rejection."""
    decoder = FrameDecoder(MAX_FRAME_BYTES)
    for frame in [*decoder.feed(data), *decoder.close()]:
        yield _OVERSIZED if frame.oversized else frame.data


def _rejection_line(number: int, rejection: Rejection) -> bytes:
    return (
        orjson.dumps(
            {"number": number, "reason": rejection.reason, "message": rejection.message}
        )
        + b"\n"
    )


def _silence_stdout() -> None:
    """The reader went away: point stdout at /dev/null so exit stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
