"""enrich(): one message in, one row or one rejection out."""

from __future__ import annotations

import orjson
import pytest

from cefpipe.schema import MAX_FIELD_BYTES, STREAM_COLUMNS
from enrich.pipeline import Enriched, Envelope, Rejection, encode_row, enrich

RECEIVED_AT_US = 1_741_968_000_000_000  # 2025-03-14T16:00:00Z
CONTRAST = (
    "<153>Mar 14 09:26:53 app-host-07 CEF:0|Contrast Security|Contrast Agent Java|"
    "6.16.0|SECURITY|attack|WARN|pri=sql-injection src=198.51.100.23 spt=8080 "
    "request=/owners requestMethod=GET app=PetStore outcome=INEFFECTIVE"
)


def enriched(raw: str | bytes, envelope: Envelope | None = None) -> Enriched:
    data = raw.encode() if isinstance(raw, str) else raw
    result = enrich(data, envelope or Envelope(RECEIVED_AT_US))
    assert isinstance(result, Enriched), result
    return result


def rejected(raw: bytes) -> Rejection:
    result = enrich(raw, Envelope(RECEIVED_AT_US))
    assert isinstance(result, Rejection), result
    return result


def test_contrast_event_row() -> None:
    row = enriched(CONTRAST).row
    assert row["Computer"] == "app-host-07"
    assert row["EventOutcome"] == "PROBED"
    assert row["AdditionalExtensions"] == "pri=sql-injection;outcome=INEFFECTIVE"
    assert (row["Rule"], row["Outcome"]) == ("sql-injection", "PROBED")
    assert row["SourcePort"] == 8080


def test_row_holds_only_stream_columns_and_no_none() -> None:
    row = enriched(
        CONTRAST, Envelope(RECEIVED_AT_US, "192.0.2.9:514", "ingest-1", "r1")
    ).row
    assert set(row) <= set(STREAM_COLUMNS)
    assert None not in row.values()


def test_other_vendors_get_no_contrast_treatment() -> None:
    row = enriched(CONTRAST.replace("Contrast Security", "Acme")).row
    assert row["EventOutcome"] == "INEFFECTIVE"
    assert row["AdditionalExtensions"] == "pri=sql-injection"
    assert "Rule" not in row
    assert "Outcome" not in row


def test_contrast_placeholders_are_null_and_not_kept() -> None:
    line = CONTRAST.replace("src=198.51.100.23", "src=-").replace(
        "app=PetStore", "app="
    )
    row = enriched(line).row
    assert "SourceIP" not in row
    assert "ApplicationProtocol" not in row
    assert row["AdditionalExtensions"] == "pri=sql-injection;outcome=INEFFECTIVE"


def test_time_generated_prefers_rt() -> None:
    line = "<134>1 2025-03-14T12:00:00Z h a - - - CEF:0|V|P|1|1|n|1|rt=1741968000123"
    assert enriched(line).row["TimeGenerated"] == "2025-03-14T16:00:00.123Z"


def test_time_generated_from_absolute_syslog_time_when_no_rt() -> None:
    line = "<134>1 2025-03-14T12:00:00.5Z h a - - - CEF:0|V|P|1|1|n|1|rt=garbage"
    assert enriched(line).row["TimeGenerated"] == "2025-03-14T12:00:00.5Z"


def test_time_generated_falls_back_to_receive_time() -> None:
    row = enriched(CONTRAST, Envelope(RECEIVED_AT_US + 7)).row
    assert row["TimeGenerated"] == "2025-03-14T16:00:00.000007Z"


def test_computer_from_peer_when_message_names_no_host() -> None:
    line = b"CEF:0|V|P|1|1|n|1|a=b"
    for peer, host in [
        ("192.0.2.7:514", "192.0.2.7"),
        ("[2001:db8::1]:514", "2001:db8::1"),
        ("2001:db8::2", "2001:db8::2"),
        ("192.0.2.8", "192.0.2.8"),
    ]:
        assert (
            enriched(line, Envelope(RECEIVED_AT_US, peer=peer)).row["Computer"] == host
        )
    assert "Computer" not in enriched(line).row


def test_collector_and_row_id_from_the_envelope() -> None:
    row = enriched(
        CONTRAST, Envelope(RECEIVED_AT_US, collector="ingest-1", row_id="r-9")
    ).row
    assert row["CollectorHostName"] == "ingest-1"
    assert str(row["AdditionalExtensions"]).endswith(";cefpipeRowId=r-9")


def test_row_id_alone_makes_additional_extensions() -> None:
    row = enriched("CEF:0|V|P|1|1|n|1|src=1", Envelope(RECEIVED_AT_US, row_id="x")).row
    assert row["AdditionalExtensions"] == "cefpipeRowId=x"


def test_empty_header_fields_are_left_out() -> None:
    row = enriched("CEF:0|||1.0|5005|n|4|src=1").row
    assert "DeviceVendor" not in row
    assert "DeviceProduct" not in row
    assert row["DeviceVersion"] == "1.0"


def test_duplicate_keys_are_reported() -> None:
    assert enriched("CEF:0|V|P|1|1|n|1|a=1 a=2").duplicate_keys == ("a",)


def test_trailing_crlf_and_bom_are_ignored() -> None:
    row = enriched(b"\xef\xbb\xbfCEF:0|V|P|1|1|n|1|outcome=ok\r\n").row
    assert row["EventOutcome"] == "ok"


def test_invalid_utf8_becomes_replacement_characters() -> None:
    row = enriched(b"CEF:0|V|P|1|1|n|1|msg=caf\xe9 ok").row
    assert row["Message"] == "caf\ufffd ok"


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"\t", b"\xef\xbb\xbf \n"])
def test_blank_message_is_rejected_as_empty(raw: bytes) -> None:
    assert rejected(raw) == Rejection("empty_message", "empty message")


def test_message_without_marker_is_rejected_as_not_cef() -> None:
    rejection = rejected(b"<38>Mar 14 16:20:00 h sshd[1]: Accepted publickey")
    assert rejection.reason == "not_cef"
    assert rejection.message.startswith("not CEF")


def test_parse_errors_become_rejections() -> None:
    assert rejected(b"CEF:0|V|P|1|1|n").reason == "cef_header_incomplete"
    assert rejected(b"CEF:x|V|P|1|1|n|1|").reason == "cef_version_invalid"
    assert rejected(b"CEF:0|V|P|1|1|n|1|text").reason == "cef_extension_malformed"


def test_values_over_the_field_limit_are_cut_on_a_character_boundary() -> None:
    long_name = "é" * MAX_FIELD_BYTES  # two bytes each
    result = enriched(f"CEF:0|V|P|1|1|{long_name}|1|msg=short")
    activity = result.row["Activity"]
    assert isinstance(activity, str)
    assert len(activity.encode()) == MAX_FIELD_BYTES
    assert result.truncated_columns == ("Activity",)
    assert result.row["Message"] == "short"


def test_values_at_the_limit_are_not_cut() -> None:
    result = enriched("CEF:0|V|P|1|1|n|1|msg=" + "a" * MAX_FIELD_BYTES)
    assert result.row["Message"] == "a" * MAX_FIELD_BYTES
    assert result.truncated_columns == ()


def test_encode_row_is_compact_json() -> None:
    assert orjson.loads(encode_row({"A": 1, "B": "x"})) == {"A": 1, "B": "x"}


def test_long_unmapped_values_are_shortened_before_pri_outcome_and_row_id() -> None:
    raw = (
        b"CEF:0|Contrast Security|Contrast Agent Python|10.0|SECURITY|x|WARN|"
        b"pri=sql-injection contrastAgentServer=" + b"s" * 70_000 + b" outcome=BLOCKED"
    )
    outcome = enrich(raw, Envelope(received_at_us=RECEIVED_AT_US, row_id="1-2-3-4"))
    assert isinstance(outcome, Enriched)
    extensions = str(outcome.row["AdditionalExtensions"])
    assert len(extensions.encode()) <= MAX_FIELD_BYTES
    assert extensions.startswith("pri=sql-injection;contrastAgentServer=sss")
    assert extensions.endswith(";outcome=BLOCKED;cefpipeRowId=1-2-3-4")
    assert outcome.row["Rule"] == "sql-injection"
    assert "AdditionalExtensions" in outcome.truncated_columns


@pytest.mark.parametrize(
    ("rt", "out_of_window"),
    [
        ("1717582272", True),  # ten digits read as milliseconds: January 1970
        ("99999999999999", True),  # the year 5138
        (str(RECEIVED_AT_US // 1000 - 3_600_000), False),  # an hour before receipt
        (str(RECEIVED_AT_US // 1000 + 3_600_000), False),  # clocks an hour apart
    ],
)
def test_event_times_far_from_receipt_are_kept_and_flagged(
    rt: str, out_of_window: bool
) -> None:
    raw = b"CEF:0|Acme|Wall|1.0|1|n|3|rt=" + rt.encode()
    outcome = enrich(raw, Envelope(received_at_us=RECEIVED_AT_US))
    assert isinstance(outcome, Enriched)
    assert outcome.time_out_of_window is out_of_window
    assert outcome.row["ReceiptTime"] == rt


def test_receive_time_is_never_out_of_window() -> None:
    outcome = enrich(b"CEF:0|Acme|Wall|1.0|1|n|3|act=allow", Envelope(RECEIVED_AT_US))
    assert isinstance(outcome, Enriched)
    assert outcome.time_out_of_window is False


@pytest.mark.parametrize(("version", "expected"), [("0", "0"), ("1", "1"), ("2", "2")])
def test_the_cef_version_is_reported(version: str, expected: str) -> None:
    raw = f"CEF:{version}|Acme|Wall|1.0|1|n|3|act=allow".encode()
    outcome = enrich(raw, Envelope(RECEIVED_AT_US))
    assert isinstance(outcome, Enriched)
    assert outcome.cef_version == expected
