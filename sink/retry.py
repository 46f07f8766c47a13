"""What to do after an upload attempt: one classifier, backoff and Retry-After.

Every answer the service (or the network) can give ends in one of a few
actions, chosen here and nowhere else; the delivery loop only carries them out.
The functions are pure so the whole policy can be read, and tested, as a table.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import Enum


class Failure(Enum):
    """How an attempt ended, before any judgement."""

    NONE = "none"  # an HTTP answer came back
    TIMEOUT = "timeout"  # connect or read timed out
    CONNECTION = "connection"  # refused, reset, TLS failure, incomplete body
    CREDENTIAL = "credential"  # no token could be had
    UNEXPECTED = "unexpected"  # anything else: a bug or an unknown library error


@dataclass(frozen=True)
class Attempt:
    """The facts of one upload attempt, as the uploader saw them.

    Args:
        status: HTTP status, or None when no answer came back.
        failure: why there was no usable answer, if there was none.
        error_code: the service's error code (body or ``x-ms-error-code``).
        request_id: the service's ``x-ms-request-id``, for support tickets.
        retry_after_secs: the server's requested wait, already parsed.
        message: a short human description, never the payload.
        elapsed_secs: time the attempt took.
    """

    status: int | None
    failure: Failure = Failure.NONE
    error_code: str = ""
    request_id: str = ""
    retry_after_secs: float | None = None
    message: str = ""
    elapsed_secs: float = 0.0


class Action(Enum):
    """What the delivery loop does next with the batch."""

    DONE = "done"  # accepted (204)
    RETRY = "retry"  # send the same body again after a delay
    REFRESH_TOKEN = "refresh_token"  # noqa: S105 - an action name, not a secret
    SPLIT = "split"  # too large: send each half separately
    BISECT = "bisect"  # bad rows: halve until the bad rows stand alone
    CONFIG_FAULT = "config_fault"  # stop, alert, keep offsets; not the data's fault


@dataclass(frozen=True)
class Verdict:
    """The classifier's answer: an action and a short stable reason code."""

    action: Action
    reason: str
    server_delay_secs: float | None = None


# Error codes that mean "this body is too big", whatever status carries them:
# the per-call limit on the wire, and the decompressed limit checked downstream.
_TOO_LARGE_CODES = frozenset({"ContentLengthLimitExceeded", "PayloadSizeLimitExceeded"})


def classify(attempt: Attempt, *, token_refreshed: bool = False) -> Verdict:
    """Decide what to do after ``attempt``.

    Args:
        attempt: what the upload attempt observed.
        token_refreshed: True when this attempt already used a token fetched
            because of a 401; a second 401 then means the identity is wrong.
    """
    if attempt.failure is Failure.TIMEOUT:
        return Verdict(Action.RETRY, "timeout")
    if attempt.failure is Failure.CONNECTION:
        return Verdict(Action.RETRY, "connection")
    if attempt.failure is Failure.CREDENTIAL:
        return Verdict(Action.CONFIG_FAULT, "credential")
    if attempt.failure is Failure.UNEXPECTED or attempt.status is None:
        return Verdict(Action.CONFIG_FAULT, "client_error")
    return _classify_status(attempt, token_refreshed)


def _classify_status(attempt: Attempt, token_refreshed: bool) -> Verdict:
    status = attempt.status
    assert status is not None
    delay = attempt.retry_after_secs
    if status == 204:
        return Verdict(Action.DONE, "accepted")
    if attempt.error_code in _TOO_LARGE_CODES or status == 413:
        return Verdict(Action.SPLIT, "payload_too_large")
    if status == 429:
        return Verdict(Action.RETRY, "throttled", delay)
    if status == 408:
        return Verdict(Action.RETRY, "request_timeout", delay)
    if status >= 500:
        return Verdict(Action.RETRY, "server_error", delay)
    if status == 401:
        if token_refreshed:
            return Verdict(Action.CONFIG_FAULT, "unauthorized")
        return Verdict(Action.REFRESH_TOKEN, "unauthorized")
    if status == 400:
        return Verdict(Action.BISECT, "bad_request")
    if status == 403:
        return Verdict(Action.CONFIG_FAULT, "forbidden")
    if status == 404:
        return Verdict(Action.CONFIG_FAULT, "not_found")
    # Anything else (other 4xx, a 2xx that is not 204, an unfollowed redirect)
    # is a client or proxy problem, not the rows': hold them and alert.
    return Verdict(Action.CONFIG_FAULT, f"unexpected_status_{status}")


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter.

    Args:
        initial_secs: the first delay before jitter.
        max_secs: the cap on any computed delay.
    """

    initial_secs: float
    max_secs: float

    def delay(
        self,
        retry_number: int,
        server_delay_secs: float | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry).

        A server-requested delay is honoured in full, plus up to 10% jitter so
        that many senders told the same thing do not all return at once; it is
        not capped, because returning earlier than asked only earns another 429.
        Without one, the delay doubles from ``initial_secs`` up to ``max_secs``
        and is drawn from its upper half.
        """
        draw = (rng or random).random()
        if server_delay_secs is not None:
            return server_delay_secs * (1.0 + 0.1 * draw)
        ceiling = min(
            self.max_secs, self.initial_secs * 2.0 ** max(0, retry_number - 1)
        )
        return ceiling * (0.5 + 0.5 * draw)


def parse_retry_after(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """The server's requested wait in seconds, or None when it asked for none.

    Reads ``retry-after-ms`` and ``x-ms-retry-after-ms`` (milliseconds) first,
    then ``Retry-After`` as delta-seconds or an HTTP date. Header names are
    matched without regard to case; unparseable values count as absent.

    Args:
        headers: response headers.
        now_epoch: the current wall-clock time, to turn a date into a delay.
    """
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        millis = _non_negative_number(lowered.get(name))
        if millis is not None:
            return millis / 1000.0
    value = lowered.get("retry-after")
    if not value:
        return None
    seconds = _non_negative_number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": HTTP dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_epoch)


def _non_negative_number(value: str | None) -> float | None:
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if number != number or number < 0 or number == float("inf"):  # NaN or nonsense
        return None
    return number
