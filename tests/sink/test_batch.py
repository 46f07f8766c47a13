"""The gzip batch builder: full requests, never over a limit, rows unchanged."""

from __future__ import annotations

import gzip
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sink.batch import Batch, BatchBuilder, BatchLimits, Offer, build_batches
from sink.row import Row
from tests.sink.rows import enriched_rows, random_row

SERVICE_LIMIT = BatchLimits(
    max_wire_bytes=1_000_000, max_raw_bytes=48 << 20, max_rows=100_000
)


def body_rows(batch: Batch) -> bytes:
    return gzip.decompress(batch.body)


def expected_body(rows: tuple[Row, ...]) -> bytes:
    return b"[" + b",".join(row.value for row in rows) + b"]"


def fill(rows: list[Row], limits: BatchLimits) -> tuple[list[Batch], list[Row]]:
    return build_batches(rows, limits)


def test_body_is_the_rows_bytes_in_a_json_array_unchanged() -> None:
    rows = enriched_rows(500)

    batches, too_large = fill(rows, SERVICE_LIMIT)

    assert too_large == []
    assert len(batches) == 1
    assert body_rows(batches[0]) == expected_body(tuple(rows))
    assert len(json.loads(body_rows(batches[0]))) == 500
    assert batches[0].raw_bytes == len(expected_body(tuple(rows)))


def test_enriched_rows_fill_requests_to_over_99_percent_of_the_limit() -> None:
    rows = enriched_rows(120_000)

    batches, _ = fill(rows, SERVICE_LIMIT)

    full = batches[:-1]  # the last one holds whatever was left
    assert len(full) >= 2
    for batch in full:
        assert 0.99 * SERVICE_LIMIT.max_wire_bytes <= batch.wire_bytes
        assert batch.wire_bytes <= SERVICE_LIMIT.max_wire_bytes
        assert body_rows(batch) == expected_body(batch.rows)


def test_incompressible_rows_fill_requests_too() -> None:
    rng = random.Random(3)
    rows = [random_row(offset, 700, rng) for offset in range(3000)]

    batches, _ = fill(rows, SERVICE_LIMIT)

    assert len(batches) >= 2
    assert batches[0].wire_bytes >= 0.99 * SERVICE_LIMIT.max_wire_bytes
    assert all(batch.wire_bytes <= SERVICE_LIMIT.max_wire_bytes for batch in batches)


def test_row_count_limit_ends_a_batch() -> None:
    limits = BatchLimits(max_wire_bytes=1_000_000, max_raw_bytes=48 << 20, max_rows=7)

    batches, _ = fill(enriched_rows(20), limits)

    assert [len(batch.rows) for batch in batches] == [7, 7, 6]


def test_decompressed_limit_ends_a_batch_even_when_gzip_has_room() -> None:
    rows = enriched_rows(2000)
    limits = BatchLimits(
        max_wire_bytes=1_000_000, max_raw_bytes=100_000, max_rows=10**6
    )

    batches, _ = fill(rows, limits)

    assert len(batches) > 1
    for batch in batches:
        assert batch.raw_bytes == len(body_rows(batch)) <= 100_000
    assert batches[0].raw_bytes > 100_000 - max(len(row.value) for row in rows) - 2


def test_a_row_that_cannot_fit_alone_is_too_large() -> None:
    rng = random.Random(5)
    huge = random_row(0, 40_000, rng)
    limits = BatchLimits(max_wire_bytes=20_000, max_raw_bytes=10**6, max_rows=100)

    assert BatchBuilder(limits).offer(huge) is Offer.TOO_LARGE


def test_a_large_row_that_compresses_well_still_fits() -> None:
    big = Row(0, 0, json.dumps({"Message": "A" * 200_000}).encode())
    limits = BatchLimits(max_wire_bytes=20_000, max_raw_bytes=10**6, max_rows=100)
    builder = BatchBuilder(limits)

    assert builder.offer(big) is Offer.ADDED
    assert builder.seal().wire_bytes <= 20_000


def test_a_row_over_the_decompressed_limit_is_too_large() -> None:
    big = Row(0, 0, json.dumps({"Message": "A" * 5000}).encode())
    limits = BatchLimits(max_wire_bytes=1_000_000, max_raw_bytes=4096, max_rows=100)

    assert BatchBuilder(limits).offer(big) is Offer.TOO_LARGE


def test_a_full_batch_refuses_with_full_not_too_large() -> None:
    limits = BatchLimits(max_wire_bytes=1_000_000, max_raw_bytes=10**6, max_rows=1)
    builder = BatchBuilder(limits)
    first, second = enriched_rows(2)

    assert builder.offer(first) is Offer.ADDED
    assert builder.offer(second) is Offer.FULL


def test_build_batches_reports_rows_too_large_and_keeps_the_rest_in_order() -> None:
    rng = random.Random(9)
    rows = enriched_rows(30)
    rows.insert(10, random_row(999, 60_000, rng))
    limits = BatchLimits(max_wire_bytes=20_000, max_raw_bytes=10**6, max_rows=1000)

    batches, too_large = build_batches(rows, limits)

    assert [row.offset for row in too_large] == [999]
    sent = [row for batch in batches for row in batch.rows]
    assert sent == [row for row in rows if row.offset != 999]


def test_halves_split_rows_in_order() -> None:
    batches, _ = fill(enriched_rows(5), SERVICE_LIMIT)

    left, right = batches[0].halves()

    assert (len(left), len(right)) == (2, 3)
    assert left + right == batches[0].rows


def test_an_empty_batch_cannot_be_sealed() -> None:
    with pytest.raises(ValueError, match="empty"):
        BatchBuilder(SERVICE_LIMIT).seal()


def test_a_sealed_batch_takes_no_more_rows() -> None:
    builder = BatchBuilder(SERVICE_LIMIT)
    first, second = enriched_rows(2)
    builder.offer(first)
    builder.seal()

    with pytest.raises(RuntimeError, match="sealed"):
        builder.offer(second)
    with pytest.raises(RuntimeError, match="sealed"):
        builder.seal()


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=6000), min_size=1, max_size=120),
    noisy=st.lists(st.booleans(), min_size=1, max_size=120),
    limit=st.integers(min_value=2048, max_value=40_000),
)
def test_no_body_ever_exceeds_the_wire_limit(
    sizes: list[int], noisy: list[bool], limit: int
) -> None:
    rng = random.Random(len(sizes))
    rows = [
        random_row(offset, size, rng)
        if noisy[offset % len(noisy)]
        else Row(0, offset, json.dumps({"Message": "x" * size}).encode())
        for offset, size in enumerate(sizes)
    ]
    limits = BatchLimits(max_wire_bytes=limit, max_raw_bytes=10**7, max_rows=10**6)

    batches, too_large = build_batches(rows, limits)

    for batch in batches:
        assert batch.wire_bytes <= limit
        assert body_rows(batch) == expected_body(batch.rows)
    delivered = {row.offset for batch in batches for row in batch.rows}
    assert delivered | {row.offset for row in too_large} == set(range(len(rows)))
