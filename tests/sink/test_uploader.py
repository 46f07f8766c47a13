"""One attempt against the emulator, through the real SDK: what the sink observes.

No broker needed. Each test installs an emulator fault and checks the facts the
uploader reports, and that azure-core made exactly the one request asked of it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cefpipe.settings import Settings
from emulator.server import EmulatorThread
from sink.batch import Batch, BatchLimits, build_batches
from sink.credential import RenewableCredential, build_credential
from sink.retry import Failure
from sink.row import Row
from sink.uploader import Uploader
from tests.sink.rows import enriched_rows, enriched_value


def make_uploader(env: dict[str, str], **overrides: str) -> Uploader:
    settings = Settings.from_env({**env, **overrides})
    credential = RenewableCredential(lambda: build_credential(settings.sink))
    return Uploader(settings.sink, credential)


@pytest.fixture
def uploader(sink_env: dict[str, str]) -> Iterator[Uploader]:
    sender = make_uploader(sink_env)
    yield sender
    sender.close()


def one_batch(rows: list[Row]) -> Batch:
    limits = BatchLimits(
        max_wire_bytes=1_000_000, max_raw_bytes=48 << 20, max_rows=10**6
    )
    batches, _ = build_batches(rows, limits)
    return batches[0]


def test_an_accepted_batch_is_one_gzip_request_with_our_request_id(
    uploader: Uploader, emu: EmulatorThread
) -> None:
    batch = one_batch(enriched_rows(200))

    attempt = uploader.upload(batch)

    assert attempt.status == 204
    assert attempt.request_id
    [request] = emu.requests()
    assert request["content_encoding"] == "gzip"
    assert request["client_request_id"] == batch.batch_id
    assert request["wire_bytes"] == batch.wire_bytes
    assert request["decompressed_bytes"] == batch.raw_bytes
    assert request["rows"] == 200
    assert len(emu.rows()) == 200


@pytest.mark.parametrize(
    ("fault", "retry_after"),
    [
        ({"kind": "status", "status": 503, "retry_after": "7"}, 7.0),
        ({"kind": "status", "status": 429, "retry_after_ms": 1500}, 1.5),
        ({"kind": "status", "status": 429}, None),
        ({"kind": "status", "status": 408}, None),
        ({"kind": "status", "status": 502}, None),
    ],
)
def test_retryable_answers_reach_the_sink_after_one_request(
    uploader: Uploader,
    emu: EmulatorThread,
    fault: dict[str, object],
    retry_after: float | None,
) -> None:
    emu.set_faults([fault])

    attempt = uploader.upload(one_batch(enriched_rows(3)))

    assert attempt.status == fault["status"]
    assert attempt.request_id
    assert attempt.retry_after_secs == retry_after
    assert len(emu.requests()) == 1  # azure-core's own retries are off


def test_an_http_date_retry_after_becomes_a_delay(
    uploader: Uploader, emu: EmulatorThread
) -> None:
    emu.set_faults(
        [
            {
                "kind": "status",
                "status": 429,
                "retry_after": "30",
                "retry_after_format": "http-date",
            }
        ]
    )

    attempt = uploader.upload(one_batch(enriched_rows(3)))

    assert attempt.retry_after_secs is not None
    assert 0.0 < attempt.retry_after_secs <= 31.0


def test_a_poison_row_gets_400_with_the_service_code(
    uploader: Uploader, emu: EmulatorThread
) -> None:
    emu.set_faults([{"kind": "bad_rows"}])
    rows = [Row(0, 0, enriched_value(0, 0, activity="POISON here"))]

    attempt = uploader.upload(one_batch(rows))

    assert attempt.status == 400
    assert attempt.error_code
    assert attempt.request_id


def test_a_dropped_connection_is_a_connection_failure(
    uploader: Uploader, emu: EmulatorThread
) -> None:
    emu.set_faults([{"kind": "drop"}])

    attempt = uploader.upload(one_batch(enriched_rows(3)))

    assert (attempt.status, attempt.failure) == (None, Failure.CONNECTION)


def test_a_slow_answer_is_a_timeout(
    sink_env: dict[str, str], emu: EmulatorThread
) -> None:
    emu.set_faults([{"kind": "delay", "secs": 3}])
    sender = make_uploader(sink_env, SINK_READ_TIMEOUT_SECS="0.5")

    attempt = sender.upload(one_batch(enriched_rows(3)))

    assert (attempt.status, attempt.failure) == (None, Failure.TIMEOUT)


def test_an_unknown_rule_is_404(sink_env: dict[str, str], emu: EmulatorThread) -> None:
    sender = make_uploader(sink_env, SENTINEL_DCR_IMMUTABLE_ID="dcr-not-there")

    attempt = sender.upload(one_batch(enriched_rows(3)))

    assert attempt.status == 404
    assert attempt.request_id


def test_a_wrong_secret_is_a_credential_failure_not_an_http_status(
    sink_env: dict[str, str], emu: EmulatorThread
) -> None:
    sender = make_uploader(sink_env, AZURE_CLIENT_SECRET="not-the-secret")

    attempt = sender.upload(one_batch(enriched_rows(3)))

    assert (attempt.status, attempt.failure) == (None, Failure.CREDENTIAL)
    assert (
        "secret" not in attempt.message.lower()
        or "not-the-secret" not in attempt.message
    )
    assert emu.requests() == []  # no upload was sent without a token


def test_an_expired_token_is_401_and_renewal_fixes_it(
    sink_env: dict[str, str], emu: EmulatorThread
) -> None:
    settings = Settings.from_env(sink_env)
    credential = RenewableCredential(lambda: build_credential(settings.sink))
    sender = Uploader(settings.sink, credential)
    batch = one_batch(enriched_rows(3))
    assert sender.upload(batch).status == 204
    emu.expire_tokens()

    refused = sender.upload(batch)
    credential.renew()
    retried = sender.upload(batch)

    assert refused.status == 401
    assert retried.status == 204
