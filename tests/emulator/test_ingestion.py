"""The upload endpoint driven by the real azure-monitor-ingestion client over TLS,
and by hand-built requests for what the SDK never sends."""

from __future__ import annotations

import gzip
import io
import json
import os
import sqlite3

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.identity import ClientSecretCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
from azure.monitor.ingestion import LogsIngestionClient
from azure.monitor.ingestion.aio import LogsIngestionClient as AsyncLogsIngestionClient

from cefpipe.settings import Settings
from emulator.server import EmulatorThread
from tests.emulator.helpers import RawUploader, error_code

ATTACK = {
    "TimeGenerated": "2024-03-14T09:26:53.123Z",
    "DeviceVendor": "Contrast Security",
    "DeviceProduct": "Contrast Agent Java",
    "Activity": "The parameter lastName had a value that exploited sql-injection",
    "SourceIP": "198.51.100.23",
    "SourcePort": 8080,
    "SentBytes": 2**40,
    "DeviceCustomFloatingPoint1": 1.5,
    "EventOutcome": "EXPLOITED",
    "AdditionalExtensions": "pri=sql-injection;outcome=EXPLOITED",
    "Rule": "sql-injection",
    "Outcome": "EXPLOITED",
}


def test_sdk_upload_lands_in_sqlite_with_record_fields_projected_away(
    client: LogsIngestionClient, emu: EmulatorThread, settings: Settings
) -> None:
    """A list upload (gzip'd by the SDK) is stored; Rule and Outcome are not."""
    client.upload(
        rule_id=settings.emulator.dcr_immutable_id,
        stream_name=settings.emulator.stream_name,
        logs=[ATTACK, {**ATTACK, "SourceIP": "203.0.113.9"}],
    )

    with sqlite3.connect(settings.emulator_db_file) as db:
        stored = db.execute(
            "SELECT SourceIP, SourcePort, SentBytes FROM CommonSecurityLog "
            "ORDER BY _Seq"
        ).fetchall()
        columns = {row[1] for row in db.execute("PRAGMA table_info(CommonSecurityLog)")}
    assert stored == [("198.51.100.23", 8080, 2**40), ("203.0.113.9", 8080, 2**40)]
    assert "Rule" not in columns
    assert "Outcome" not in columns

    [logged] = emu.requests()
    assert logged["status"] == 204
    assert logged["content_encoding"] == "gzip"
    assert logged["rows"] == 2
    assert logged["wire_bytes"] < logged["decompressed_bytes"]
    assert logged["client_request_id"]


def test_row_without_time_generated_gets_the_ingestion_time(
    raw: RawUploader, emu: EmulatorThread
) -> None:
    response = raw.post_rows([{"DeviceVendor": "Contrast Security"}])

    assert response.status_code == 204
    [row] = emu.rows()
    assert row["TimeGenerated"] == row["_IngestionTime"]
    assert row["_RequestId"] == response.headers["x-ms-request-id"]


async def test_async_sdk_upload_is_stored(
    emu: EmulatorThread, settings: Settings
) -> None:
    credential = AsyncClientSecretCredential(
        settings.emulator.tenant_id,
        settings.emulator.client_id,
        settings.emulator.client_secret.reveal(),
        authority=emu.url,
        connection_verify=str(emu.ca_file),
    )
    async with (
        credential,
        AsyncLogsIngestionClient(
            endpoint=emu.url, credential=credential, connection_verify=str(emu.ca_file)
        ) as client,
    ):
        await client.upload(
            rule_id=settings.emulator.dcr_immutable_id,
            stream_name=settings.emulator.stream_name,
            logs=[ATTACK],
        )

    assert [row["SourceIP"] for row in emu.rows()] == ["198.51.100.23"]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_sdk_stream_body_plain_or_gzip_is_stored(
    client: LogsIngestionClient,
    emu: EmulatorThread,
    settings: Settings,
    compress: bool,
) -> None:
    """An IO body goes out as given; gzip is declared only when it is gzip."""
    body = json.dumps([ATTACK]).encode()
    if compress:
        body = gzip.compress(body)

    client.upload(
        rule_id=settings.emulator.dcr_immutable_id,
        stream_name=settings.emulator.stream_name,
        logs=io.BytesIO(body),
    )

    [logged] = emu.requests()
    assert logged["content_encoding"] == ("gzip" if compress else None)
    assert logged["wire_bytes"] == len(body)
    assert len(emu.rows()) == 1


def test_body_over_one_mebibyte_is_413(
    client: LogsIngestionClient, emu: EmulatorThread, settings: Settings
) -> None:
    body = json.dumps([{"Message": "x" * 1_100_000}]).encode()

    with pytest.raises(HttpResponseError) as raised:
        client.upload(
            rule_id=settings.emulator.dcr_immutable_id,
            stream_name=settings.emulator.stream_name,
            logs=io.BytesIO(body),
        )

    assert raised.value.status_code == 413
    assert raised.value.error is not None
    assert raised.value.error.code == "ContentLengthLimitExceeded"
    assert raised.value.error.message == (
        "Maximum allowed content length: 1048576 bytes."
    )
    assert emu.rows() == []


def test_gzip_body_over_one_mebibyte_on_the_wire_is_413(raw: RawUploader) -> None:
    """The limit applies to the bytes sent, compressed or not."""
    body = gzip.compress(os.urandom(1_100_000))
    response = raw.post(body, headers={"Content-Encoding": "gzip"})

    assert response.status_code == 413
    assert error_code(response) == "ContentLengthLimitExceeded"


def test_gzip_that_inflates_past_fifty_mebibytes_is_413(raw: RawUploader) -> None:
    huge = b'[{"Message":"' + b"a" * (50 * 1024 * 1024) + b'"}]'
    body = gzip.compress(huge, compresslevel=1)
    response = raw.post(body, headers={"Content-Encoding": "gzip"})

    assert response.status_code == 413
    assert error_code(response) == "PayloadSizeLimitExceeded"


def test_multi_member_gzip_is_accepted(raw: RawUploader, emu: EmulatorThread) -> None:
    body = gzip.compress(b'[{"SourceIP":') + gzip.compress(b' "192.0.2.1"}]')
    response = raw.post(body, headers={"Content-Encoding": "gzip"})

    assert response.status_code == 204
    assert emu.rows()[0]["SourceIP"] == "192.0.2.1"


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (b"not gzip at all", {"Content-Encoding": "gzip"}, "InvalidContentEncoding"),
        (
            gzip.compress(b"[{}]")[:-6],
            {"Content-Encoding": "gzip"},
            "InvalidContentEncoding",
        ),
        (b"[{}]", {"Content-Encoding": "br"}, "UnsupportedContentEncoding"),
        (b"[{", {}, "InvalidJson"),
        (b'{"SourceIP": "192.0.2.1"}', {}, "InvalidPayload"),
        (b'[{"SourceIP": "192.0.2.1"}, 7]', {}, "InvalidPayload"),
    ],
    ids=["bad-gzip", "truncated-gzip", "brotli", "bad-json", "object", "non-object"],
)
def test_malformed_bodies_are_400(
    raw: RawUploader,
    emu: EmulatorThread,
    body: bytes,
    headers: dict[str, str],
    code: str,
) -> None:
    response = raw.post(body, headers=headers)

    assert response.status_code == 400
    assert error_code(response) == code
    assert emu.rows() == []


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{}, {"SourcePort": "8080"}], "Record 1: the value of column 'SourcePort'"),
        ([{"SourcePort": 2**31}], "column 'SourcePort' is not a valid int"),
        ([{"SentBytes": 2**63}], "column 'SentBytes' is not a valid long"),
        ([{"SourcePort": True}], "column 'SourcePort' is not a valid int"),
        ([{"SourcePort": 80.0}], "column 'SourcePort' is not a valid int"),
        ([{"SourceIP": 198}], "column 'SourceIP' is not a valid string"),
        ([{"DeviceCustomFloatingPoint1": "1.5"}], "is not a valid real"),
        ([{"TimeGenerated": "yesterday"}], "column 'TimeGenerated' is not a valid"),
        ([{"TimeGenerated": 1710408413}], "column 'TimeGenerated' is not a valid"),
        ([{"SourceIP": "x", "Colour": "red"}], "Record 0: column 'Colour' is not"),
    ],
    ids=[
        "string-for-int",
        "int32-overflow",
        "int64-overflow",
        "bool-for-int",
        "float-for-int",
        "int-for-string",
        "string-for-real",
        "bad-datetime",
        "epoch-for-datetime",
        "unknown-column",
    ],
)
def test_ill_typed_or_undeclared_values_are_400_naming_record_and_column(
    client: LogsIngestionClient,
    emu: EmulatorThread,
    settings: Settings,
    rows: list[dict[str, object]],
    message: str,
) -> None:
    with pytest.raises(HttpResponseError) as raised:
        client.upload(
            rule_id=settings.emulator.dcr_immutable_id,
            stream_name=settings.emulator.stream_name,
            logs=rows,
        )

    assert raised.value.status_code == 400
    assert raised.value.error is not None
    assert raised.value.error.code == "InvalidPayload"
    assert message in raised.value.error.message
    assert emu.rows() == []


def test_nulls_and_every_type_that_fits_are_accepted(
    raw: RawUploader, emu: EmulatorThread
) -> None:
    row = {
        "TimeGenerated": "2024-03-14T09:26:53.1234567+00:00",
        "SourceIP": None,
        "SourcePort": -(2**31),
        "SentBytes": 2**63 - 1,
        "DeviceCustomFloatingPoint1": 3,
        "StartTime": "2024-03-14T09:26:53",
    }
    response = raw.post_rows([row])

    assert response.status_code == 204
    [stored] = emu.rows()
    assert stored["SentBytes"] == 2**63 - 1
    assert "SourceIP" not in stored


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "AuthenticationFailed"),
        ("Basic dXNlcjpwYXNz", "AuthenticationFailed"),
        ("Bearer not-a-token-we-issued", "InvalidAuthenticationToken"),
    ],
    ids=["missing", "not-bearer", "unknown"],
)
def test_bad_bearer_tokens_are_401(
    raw: RawUploader, authorization: str | None, code: str
) -> None:
    headers = {"Authorization": authorization or ""}
    response = raw.post_rows([ATTACK], headers=headers)

    assert response.status_code == 401
    assert error_code(response) == code


def test_token_for_another_audience_is_401(
    raw: RawUploader, credential: ClientSecretCredential
) -> None:
    raw.token = credential.get_token("https://management.azure.com/.default").token

    response = raw.post_rows([ATTACK])

    assert response.status_code == 401
    assert error_code(response) == "InvalidAuthenticationTokenAudience"


def test_expired_token_is_401_token_expired(
    client: LogsIngestionClient, emu: EmulatorThread, settings: Settings
) -> None:
    """The client's token cache does not know the emulator expired its token,
    so the SDK keeps sending it; a new credential gets a fresh one."""
    target = {
        "rule_id": settings.emulator.dcr_immutable_id,
        "stream_name": settings.emulator.stream_name,
    }
    client.upload(logs=[ATTACK], **target)
    emu.expire_tokens()

    with pytest.raises(ClientAuthenticationError) as raised:
        client.upload(logs=[ATTACK], **target)

    assert raised.value.error is not None
    assert raised.value.error.code == "TokenExpired"
    assert [entry["status"] for entry in emu.requests()] == [204, 401]


@pytest.mark.parametrize(
    ("api_version", "code"),
    [(None, "MissingApiVersionParameter"), ("2020-01-01", "UnsupportedApiVersion")],
)
def test_unsupported_api_version_is_400(
    raw: RawUploader, api_version: str | None, code: str
) -> None:
    response = raw.post_rows([ATTACK], api_version=api_version)

    assert response.status_code == 400
    assert error_code(response) == code


def test_older_preview_api_version_is_accepted(raw: RawUploader) -> None:
    assert raw.post_rows([ATTACK], api_version="2021-11-01-preview").status_code == 204


def test_unknown_rule_or_stream_is_404(
    client: LogsIngestionClient, raw: RawUploader, settings: Settings
) -> None:
    with pytest.raises(ResourceNotFoundError) as raised:
        client.upload(
            rule_id="dcr-00000000000000000000000000000000",
            stream_name=settings.emulator.stream_name,
            logs=[ATTACK],
        )
    response = raw.post_rows([ATTACK], stream="Custom-SomethingElse")

    assert raised.value.error is not None
    assert raised.value.error.code == "DataCollectionRuleNotFound"
    assert response.status_code == 404
    assert error_code(response) == "StreamNotFound"


def test_auth_is_checked_before_size(raw: RawUploader) -> None:
    """The checks run in the documented order: 401 beats 413."""
    response = raw.post_rows(
        [{"Message": "x" * 1_100_000}], headers={"Authorization": ""}
    )

    assert response.status_code == 401


def test_success_answers_carry_request_ids(raw: RawUploader) -> None:
    response = raw.post_rows([ATTACK], headers={"x-ms-client-request-id": "abc-123"})

    assert response.status_code == 204
    assert response.headers["x-ms-request-id"]
    assert response.headers["x-ms-client-request-id"] == "abc-123"
