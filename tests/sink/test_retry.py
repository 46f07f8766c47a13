"""The retry policy as a table: every answer maps to one action and reason."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from sink.retry import Action, Attempt, Backoff, Failure, classify, parse_retry_after

A = Action


@pytest.mark.parametrize(
    ("attempt", "refreshed", "action", "reason"),
    [
        (Attempt(204), False, A.DONE, "accepted"),
        (Attempt(429, retry_after_secs=7.0), False, A.RETRY, "throttled"),
        (Attempt(429), False, A.RETRY, "throttled"),
        (Attempt(408), False, A.RETRY, "request_timeout"),
        (Attempt(500), False, A.RETRY, "server_error"),
        (Attempt(502), False, A.RETRY, "server_error"),
        (Attempt(503, retry_after_secs=2.0), False, A.RETRY, "server_error"),
        (Attempt(504), False, A.RETRY, "server_error"),
        (Attempt(None, Failure.TIMEOUT), False, A.RETRY, "timeout"),
        (Attempt(None, Failure.CONNECTION), False, A.RETRY, "connection"),
        (
            Attempt(401, error_code="TokenExpired"),
            False,
            A.REFRESH_TOKEN,
            "unauthorized",
        ),
        (Attempt(401), True, A.CONFIG_FAULT, "unauthorized"),
        (
            Attempt(413, error_code="ContentLengthLimitExceeded"),
            False,
            A.SPLIT,
            "payload_too_large",
        ),
        (Attempt(413), False, A.SPLIT, "payload_too_large"),
        (
            Attempt(400, error_code="PayloadSizeLimitExceeded"),
            False,
            A.SPLIT,
            "payload_too_large",
        ),
        (
            Attempt(500, error_code="PayloadSizeLimitExceeded"),
            False,
            A.SPLIT,
            "payload_too_large",
        ),
        (Attempt(400, error_code="InvalidPayload"), False, A.BISECT, "bad_request"),
        (
            Attempt(403, error_code="OperationFailed"),
            False,
            A.CONFIG_FAULT,
            "forbidden",
        ),
        (Attempt(404), False, A.CONFIG_FAULT, "not_found"),
        (Attempt(409), False, A.CONFIG_FAULT, "unexpected_status_409"),
        (Attempt(200), False, A.CONFIG_FAULT, "unexpected_status_200"),
        (Attempt(None, Failure.CREDENTIAL), False, A.CONFIG_FAULT, "credential"),
        (Attempt(None, Failure.UNEXPECTED), False, A.CONFIG_FAULT, "client_error"),
    ],
)
def test_classify(
    attempt: Attempt, refreshed: bool, action: Action, reason: str
) -> None:
    verdict = classify(attempt, token_refreshed=refreshed)

    assert (verdict.action, verdict.reason) == (action, reason)


def test_server_delay_is_passed_on_for_retries() -> None:
    assert classify(Attempt(429, retry_after_secs=7.5)).server_delay_secs == 7.5
    assert classify(Attempt(503)).server_delay_secs is None


@pytest.mark.parametrize(
    ("retry_number", "low", "high"),
    [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (5, 5.0, 10.0), (40, 5.0, 10.0)],
)
def test_backoff_doubles_up_to_the_cap_with_jitter(
    retry_number: int, low: float, high: float
) -> None:
    backoff = Backoff(initial_secs=1.0, max_secs=10.0)
    rng = random.Random(retry_number)

    delays = [backoff.delay(retry_number, rng=rng) for _ in range(200)]

    assert all(low <= delay <= high for delay in delays)
    assert len({round(delay, 6) for delay in delays}) > 100  # jittered, not fixed


def test_backoff_honours_the_server_delay_even_above_the_cap() -> None:
    backoff = Backoff(initial_secs=1.0, max_secs=10.0)
    rng = random.Random(1)

    delays = [backoff.delay(1, server_delay_secs=30.0, rng=rng) for _ in range(100)]

    assert all(30.0 <= delay <= 33.0 for delay in delays)


NOW = 1_800_000_000.0


def http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, UTC), usegmt=True)


def zoneless_http_date(epoch: float) -> str:
    """A date written with "-0000", which HTTP defines as GMT all the same."""
    return format_datetime(datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "5"}, 5.0),
        ({"retry-after": "0"}, 0.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": http_date(NOW + 30)}, 30.0),
        ({"Retry-After": http_date(NOW - 30)}, 0.0),
        ({"Retry-After": zoneless_http_date(NOW + 60)}, 60.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"x-ms-retry-after-ms": "1500"}, 1.5),
        ({"Retry-After-Ms": "100", "Retry-After": "9"}, 0.1),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-3"}, None),
        ({"Retry-After": "nan"}, None),
        ({"retry-after-ms": "x", "Retry-After": "2"}, 2.0),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    parsed = parse_retry_after(headers, NOW)

    if expected is None:
        assert parsed is None
    else:
        assert parsed == pytest.approx(expected)
