"""Gzip request bodies filled to just under the service's per-call limit.

The Logs Ingestion API refuses a call whose body is over 1 MiB on the wire, and
counts a second, much larger limit on the decompressed body. The SDK's own
chunking stops at 1 MiB of *uncompressed* JSON, which leaves most of each
request empty; this builder streams rows through one gzip compressor instead
and keeps a provable upper bound on the final compressed size, so a batch ends
only when the next row could overflow the limit.

How the bound works: the bytes the compressor has emitted up to its last sync
flush are exact; rows fed since then are counted at their worst-case deflate
size (slightly more than their raw size). When that worst case no longer fits,
a sync flush turns the estimate into an exact count. Near the end a row is tried
on a copy of the compressor and kept only if the exact result fits.
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from cefpipe.settings import SinkSettings
from sink.row import Row

# Level 6 is zlib's default: about three times slower than level 1, but a fifth
# smaller on CEF rows, which means a fifth fewer requests against the rate limit.
GZIP_LEVEL = 6
_GZIP_WBITS = 31  # 16 + 15: a gzip header and trailer around a 32 KiB window

# Room kept for what only the final flush writes: the gzip header if nothing
# was flushed yet (10 bytes), the closing bracket, the last deflate block and
# the gzip trailer (8 bytes).
_FINISH_RESERVE_BYTES = 64


def _worst_case_deflated(raw_bytes: int) -> int:
    """An upper bound on what ``raw_bytes`` of input can add to the output.

    Deflate never does worse than stored blocks (5 bytes of header per block of
    at most 64 KiB); this is looser than zlib's own compressBound on purpose.
    """
    return raw_bytes + (raw_bytes >> 10) + 32


@dataclass(frozen=True)
class BatchLimits:
    """What one request body may hold.

    Args:
        max_wire_bytes: compressed body size, as the service measures a call.
        max_raw_bytes: decompressed JSON array size, brackets and commas included.
        max_rows: rows per request.
    """

    max_wire_bytes: int
    max_raw_bytes: int
    max_rows: int

    @classmethod
    def from_settings(cls, sink: SinkSettings) -> BatchLimits:
        return cls(
            max_wire_bytes=sink.max_batch_bytes,
            max_raw_bytes=sink.max_batch_raw_bytes,
            max_rows=sink.max_batch_rows,
        )


class Offer(Enum):
    """What happened to a row offered to a :class:`BatchBuilder`."""

    ADDED = "added"
    FULL = "full"  # the batch has no room; seal it and offer the row to a new one
    TOO_LARGE = "too_large"  # the row cannot fit even in an empty batch


@dataclass(frozen=True)
class Batch:
    """One sealed request body and the rows in it, in order.

    ``batch_id`` is sent as the client request id on every attempt of this body,
    so the service's logs and ours name the same request.
    """

    rows: tuple[Row, ...]
    body: bytes
    raw_bytes: int
    batch_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def wire_bytes(self) -> int:
        return len(self.body)

    def halves(self) -> tuple[tuple[Row, ...], tuple[Row, ...]]:
        """The rows split in two, for a 413 split or a 400 bisection."""
        middle = len(self.rows) // 2
        return self.rows[:middle], self.rows[middle:]


class BatchBuilder:
    """Accumulates rows into one gzip JSON array; used once, then sealed.

    Called only from the thread that consumes Kafka (or from the thread that
    rebuilds a split batch); not thread-safe.
    """

    def __init__(
        self,
        limits: BatchLimits,
        clock: Callable[[], float] = time.monotonic,
        level: int = GZIP_LEVEL,
    ) -> None:
        self._limits = limits
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)
        self._chunks: list[bytes] = []
        self._emitted = 0
        self._exact_bytes = 0  # output size at the last sync flush
        self._pending_raw = 0  # raw bytes fed since the last sync flush
        self._rows: list[Row] = []
        self._raw_bytes = 0  # fed so far, opening bracket and commas included
        self._sealed = False
        self.created_at = clock()

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def raw_bytes(self) -> int:
        """Decompressed size so far, counting the closing bracket."""
        return self._raw_bytes + 1

    @property
    def rows(self) -> tuple[Row, ...]:
        return tuple(self._rows)

    @property
    def is_empty(self) -> bool:
        return not self._rows

    def offer(self, row: Row) -> Offer:
        """Add ``row`` if the batch stays within every limit.

        Returns FULL when it does not fit here but might fit an empty batch, and
        TOO_LARGE when even an empty batch cannot take it.
        """
        if self._sealed:
            raise RuntimeError("batch already sealed")
        refusal = Offer.TOO_LARGE if self.is_empty else Offer.FULL
        piece = (b"[" if self.is_empty else b",") + row.value
        if self.row_count >= self._limits.max_rows:
            return refusal
        if self.raw_bytes + len(piece) > self._limits.max_raw_bytes:
            return refusal

        if not self._fits_by_bound(len(piece)) and self._pending_raw:
            self._sync_flush()
        if self._fits_by_bound(len(piece)):
            self._feed(piece)
        elif not self._feed_if_exact_fit(piece):
            return refusal

        self._rows.append(row)
        self._raw_bytes += len(piece)
        return Offer.ADDED

    def seal(self) -> Batch:
        """Finish the gzip stream and hand over the body; the builder is spent."""
        if self._sealed:
            raise RuntimeError("batch already sealed")
        if self.is_empty:
            raise ValueError("an empty batch has nothing to send")
        self._sealed = True
        self._emit(self._compressor.compress(b"]"))
        self._emit(self._compressor.flush(zlib.Z_FINISH))
        body = b"".join(self._chunks)
        if len(body) > self._limits.max_wire_bytes:  # the bound is broken: a bug
            raise AssertionError(
                f"gzip body {len(body)} bytes over limit {self._limits.max_wire_bytes}"
            )
        return Batch(rows=tuple(self._rows), body=body, raw_bytes=self.raw_bytes)

    def _fits_by_bound(self, piece_bytes: int) -> bool:
        worst = (
            self._exact_bytes
            + _worst_case_deflated(self._pending_raw + piece_bytes)
            + _FINISH_RESERVE_BYTES
        )
        return worst <= self._limits.max_wire_bytes

    def _feed_if_exact_fit(self, piece: bytes) -> bool:
        """Compress ``piece`` on trial; keep it only if the exact size fits."""
        saved_compressor = self._compressor.copy()
        saved = (len(self._chunks), self._emitted, self._exact_bytes, self._pending_raw)
        self._feed(piece)
        self._sync_flush()
        if self._exact_bytes + _FINISH_RESERVE_BYTES <= self._limits.max_wire_bytes:
            return True
        self._compressor = saved_compressor
        chunk_count, self._emitted, self._exact_bytes, self._pending_raw = saved
        del self._chunks[chunk_count:]
        return False

    def _feed(self, piece: bytes) -> None:
        self._emit(self._compressor.compress(piece))
        self._pending_raw += len(piece)

    def _sync_flush(self) -> None:
        self._emit(self._compressor.flush(zlib.Z_SYNC_FLUSH))
        self._exact_bytes = self._emitted
        self._pending_raw = 0

    def _emit(self, output: bytes) -> None:
        if output:
            self._chunks.append(output)
            self._emitted += len(output)


def build_batches(
    rows: Iterable[Row],
    limits: BatchLimits,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[Batch], list[Row]]:
    """Pack ``rows`` in order into as few batches as the limits allow.

    Used to rebuild the halves of a split batch. Returns the batches and the
    rows that cannot fit even alone.
    """
    batches: list[Batch] = []
    too_large: list[Row] = []
    builder = BatchBuilder(limits, clock)
    for row in rows:
        offer = builder.offer(row)
        if offer is Offer.FULL:
            batches.append(builder.seal())
            builder = BatchBuilder(limits, clock)
            offer = builder.offer(row)
        if offer is Offer.TOO_LARGE:
            too_large.append(row)
    if not builder.is_empty:
        batches.append(builder.seal())
    return batches, too_large
