"""Injected faults: their spec language, their selection, and what the real SDK
sees when each one fires."""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ServiceResponseError
from azure.monitor.ingestion import LogsIngestionClient

from cefpipe.settings import Settings
from emulator.faults import (
    Fault,
    FaultBoard,
    FaultKind,
    FaultSpecError,
    RetryAfterFormat,
    parse_fault_specs,
)
from emulator.server import EmulatorThread
from tests.emulator.helpers import RawUploader, error_code, make_settings

ROW = {"DeviceVendor": "Contrast Security", "SourceIP": "192.0.2.7"}


def _upload(settings: Settings) -> Callable[..., None]:
    def send(client: LogsIngestionClient, rows: list[dict[str, object]], **kw: object):
        client.upload(
            rule_id=settings.emulator.dcr_immutable_id,
            stream_name=settings.emulator.stream_name,
            logs=rows,
            **kw,
        )

    return send


# --- the spec language -------------------------------------------------------


def test_string_specs_parse_into_faults() -> None:
    faults = parse_fault_specs(
        "kind=status,status=503,duration_secs=20; kind=delay,secs=2,share=0.1;"
        "kind=status,status=429,retry_after=2,retry_after_ms=1500,count=3;"
        "kind=bad_rows,marker=EVIL;kind=drop,count=null"
    )

    assert faults == [
        Fault(FaultKind.STATUS, status=503, duration_secs=20.0),
        Fault(FaultKind.DELAY, secs=2.0, share=0.1),
        Fault(
            FaultKind.STATUS, status=429, retry_after="2", retry_after_ms=1500, count=3
        ),
        Fault(FaultKind.BAD_ROWS, marker="EVIL"),
        Fault(FaultKind.DROP),
    ]


def test_empty_spec_means_no_faults() -> None:
    assert parse_fault_specs("  ") == []


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("kind=teleport", "kind must be one of"),
        ("status=503", "kind must be one of"),
        ("kind=status", "needs status"),
        ("kind=status,status=200", "status must be 400-599"),
        ("kind=status,status=abc", "status must be an integer"),
        ("kind=delay", "needs secs"),
        ("kind=delay,secs=-1", "secs must be a finite number >= 0"),
        ("kind=drop,share=1.5", "share must be between 0 and 1"),
        ("kind=drop,marker=X", "'marker' does not apply to kind 'drop'"),
        ("kind=drop,count=-2", "count must be >= 0"),
        ("kind=drop,count=1,count=2", "given twice"),
        ("kind=drop,oops", "expected key=value"),
        ("kind=status,status=429,retry_after=soon", "seconds or an HTTP date"),
        (
            "kind=status,status=429,retry_after_format=http-date",
            "needs retry_after in seconds",
        ),
    ],
)
def test_bad_specs_are_clear_errors(spec: str, complaint: str) -> None:
    with pytest.raises(FaultSpecError, match=complaint) as raised:
        parse_fault_specs(f"kind=drop;{spec}")

    assert str(raised.value).startswith("fault 2 ")


def test_http_date_retry_after_is_computed_when_answering() -> None:
    fault = Fault.from_mapping(
        {
            "kind": "status",
            "status": 503,
            "retry_after": 30,
            "retry_after_format": "http-date",
        }
    )
    now = email.utils.parsedate_to_datetime("Tue, 05 Mar 2024 10:00:00 GMT")

    assert fault.retry_after_format is RetryAfterFormat.HTTP_DATE
    assert fault.retry_after_header(now) == "Tue, 05 Mar 2024 10:00:30 GMT"


# --- selection ---------------------------------------------------------------


def test_count_limits_how_often_a_fault_fires() -> None:
    board = FaultBoard()
    board.replace([Fault(FaultKind.DROP, count=2)])

    fired = [board.choose([ROW]) for _ in range(4)]

    assert [fault is not None for fault in fired] == [True, True, False, False]
    assert board.snapshot() == [
        {"kind": "drop", "count": 2, "applied": 2, "active": False}
    ]


def test_duration_ends_a_fault_after_its_window() -> None:
    now = [100.0]
    board = FaultBoard(clock=lambda: now[0])
    board.replace([Fault(FaultKind.DROP, duration_secs=10)])

    inside = board.choose([ROW])
    now[0] = 110.0
    after = board.choose([ROW])

    assert inside is not None
    assert after is None


def test_share_fires_a_fault_for_that_share_of_uploads() -> None:
    board = FaultBoard(rng=random.Random(7))
    board.replace([Fault(FaultKind.DROP, share=0.25)])

    fired = sum(board.choose([ROW]) is not None for _ in range(4000))

    assert 800 < fired < 1200


def test_first_fault_that_fires_wins_and_bad_rows_needs_its_marker() -> None:
    board = FaultBoard()
    board.replace(
        [
            Fault(FaultKind.BAD_ROWS),
            Fault(FaultKind.DROP, share=0.0),
            Fault(FaultKind.DELAY, secs=1),
        ]
    )

    assert board.choose([ROW]) == Fault(FaultKind.DELAY, secs=1)
    poisoned = [ROW, {"Message": "a POISON pill"}]
    assert board.choose(poisoned) == Fault(FaultKind.BAD_ROWS)


# --- what the SDK sees -------------------------------------------------------


def test_429_with_retry_after_seconds_and_ms(
    client: LogsIngestionClient, emu: EmulatorThread, settings: Settings
) -> None:
    emu.set_faults(
        [{"kind": "status", "status": 429, "retry_after": "2", "retry_after_ms": 2500}]
    )

    with pytest.raises(HttpResponseError) as raised:
        _upload(settings)(client, [ROW], retry_total=0)

    response = raised.value.response
    assert response is not None
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.headers["retry-after-ms"] == "2500"
    assert raised.value.error is not None
    assert raised.value.error.code == "TooManyRequests"
    assert emu.rows() == []
    assert emu.requests()[-1]["fault"] == "status 429"


def test_retry_after_as_http_date(raw: RawUploader, emu: EmulatorThread) -> None:
    emu.set_faults(
        [
            {
                "kind": "status",
                "status": 503,
                "retry_after": 1,
                "retry_after_format": "http-date",
            }
        ]
    )

    response = raw.post_rows([ROW])

    assert response.status_code == 503
    assert error_code(response) == "ServiceUnavailable"
    sent = email.utils.parsedate_to_datetime(response.headers["Retry-After"])
    assert sent.tzinfo is not None


def test_literal_http_date_is_sent_verbatim(
    raw: RawUploader, emu: EmulatorThread
) -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    emu.set_faults([{"kind": "status", "status": 429, "retry_after": date}])

    assert raw.post_rows([ROW]).headers["Retry-After"] == date


def test_sdk_retries_through_a_one_off_503(
    client: LogsIngestionClient, emu: EmulatorThread, settings: Settings
) -> None:
    emu.set_faults([{"kind": "status", "status": 503, "count": 1}])

    _upload(settings)(client, [ROW])

    assert [entry["status"] for entry in emu.requests()] == [503, 204]
    assert len(emu.rows()) == 1


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (500, "InternalServerError"),
        (408, "RequestTimeout"),
        (413, "ContentLengthLimitExceeded"),
        (418, "InjectedFault"),
    ],
)
def test_status_faults_answer_with_service_shaped_errors(
    raw: RawUploader, emu: EmulatorThread, status: int, code: str
) -> None:
    emu.set_faults([{"kind": "status", "status": status}])

    response = raw.post_rows([ROW])

    assert response.status_code == status
    assert error_code(response) == code


def test_status_fault_with_its_own_code_and_message(
    raw: RawUploader, emu: EmulatorThread
) -> None:
    emu.set_faults(
        [
            {
                "kind": "status",
                "status": 403,
                "code": "OperationFailed",
                "message": "The token has no access to this rule.",
            }
        ]
    )

    response = raw.post_rows([ROW])

    assert response.status_code == 403
    assert (
        response.json()["error"]["message"] == "The token has no access to this rule."
    )


def test_bad_rows_refuses_only_uploads_holding_the_marker(
    client: LogsIngestionClient, emu: EmulatorThread, settings: Settings
) -> None:
    emu.set_faults([{"kind": "bad_rows"}])
    send = _upload(settings)

    send(client, [ROW])
    with pytest.raises(HttpResponseError) as raised:
        send(client, [ROW, {**ROW, "Activity": "xPOISONx"}])

    assert raised.value.status_code == 400
    assert raised.value.error is not None
    assert raised.value.error.code == "InvalidPayload"
    assert "Record 1" in raised.value.error.message
    assert "'Activity'" in raised.value.error.message
    assert len(emu.rows()) == 1


def test_delay_answers_normally_afterwards(
    client: LogsIngestionClient, emu: EmulatorThread, settings: Settings
) -> None:
    emu.set_faults([{"kind": "delay", "secs": 0.2}])

    _upload(settings)(client, [ROW])

    [logged] = emu.requests()
    assert logged["status"] == 204
    assert logged["fault"] == "delay 0.2s"
    assert len(emu.rows()) == 1


def test_drop_closes_the_connection_without_an_answer(
    client: LogsIngestionClient, emu: EmulatorThread, settings: Settings
) -> None:
    emu.set_faults([{"kind": "drop", "count": 1}])
    send = _upload(settings)

    with pytest.raises(ServiceResponseError):
        send(client, [ROW], retry_total=0)
    send(client, [ROW])

    first, second = emu.requests()
    assert (first["status"], first["fault"]) == (None, "drop")
    assert second["status"] == 204
    assert len(emu.rows()) == 1


def test_faults_from_settings_are_active_from_the_start(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, EMULATOR_FAULTS="kind=status,status=503,count=1")
    with EmulatorThread(settings) as emu:
        assert emu.faults() == [
            {"kind": "status", "count": 1, "status": 503, "applied": 0, "active": True}
        ]


# --- the admin API -----------------------------------------------------------


def _admin(
    emu: EmulatorThread, method: str, path: str, **kw: object
) -> requests.Response:
    return requests.request(
        method, f"{emu.url}/emulator/{path}", verify=str(emu.ca_file), timeout=30, **kw
    )


def test_admin_api_replaces_lists_and_clears_faults(emu: EmulatorThread) -> None:
    faults = [{"kind": "status", "status": 429, "retry_after": "2", "share": 0.5}]

    posted = _admin(emu, "POST", "faults", json={"faults": faults})
    listed = _admin(emu, "GET", "faults")
    deleted = _admin(emu, "DELETE", "faults")

    expected = [{**faults[0], "applied": 0, "active": True}]
    assert posted.json() == listed.json() == {"faults": expected}
    assert deleted.json() == {"faults": []}
    assert emu.faults() == []


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"faults": {}}', b'{"faults": [{"kind": "status"}]}'],
)
def test_admin_api_refuses_bad_fault_lists(emu: EmulatorThread, body: bytes) -> None:
    emu.set_faults([{"kind": "drop"}])

    response = _admin(emu, "POST", "faults", data=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidFaultSpec"
    assert emu.faults()[0]["kind"] == "drop"


def test_admin_api_shows_requests_and_rows_and_resets(
    raw: RawUploader, emu: EmulatorThread
) -> None:
    raw.post_rows([ROW, {**ROW, "SourceIP": "192.0.2.8"}])
    raw.post_rows([{"Nope": 1}])
    emu.set_faults([{"kind": "drop"}])

    logged = _admin(emu, "GET", "requests").json()["requests"]
    rows = _admin(emu, "GET", "rows", params={"limit": 1}).json()["rows"]
    bad_limit = _admin(emu, "GET", "rows", params={"limit": "lots"})
    reset = _admin(emu, "POST", "reset")

    assert [(e["status"], e["error_code"]) for e in logged] == [
        (204, None),
        (400, "InvalidPayload"),
    ]
    assert [row["SourceIP"] for row in rows] == ["192.0.2.8"]
    assert bad_limit.status_code == 400
    assert reset.status_code == 204
    assert (emu.requests(), emu.rows(), emu.faults()) == ([], [], [])
