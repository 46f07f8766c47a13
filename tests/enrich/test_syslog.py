"""Finding CEF in the syslog envelope and reading the origin host, app and time."""

from __future__ import annotations

import pytest

from enrich.syslog import find_marker, parse_syslog

CEF = "CEF:0|V|P|1|1|n|1|k=v"


def envelope(prefix: str) -> tuple[str | None, str | None, str | None]:
    parsed = parse_syslog(prefix + CEF)
    assert parsed is not None
    assert (prefix + CEF)[parsed.cef_offset :] == CEF
    return parsed.hostname, parsed.app_name, parsed.timestamp


def test_bare_cef_has_no_envelope() -> None:
    assert envelope("") == (None, None, None)


def test_pri_directly_before_cef() -> None:
    assert envelope("<6>") == (None, None, None)


@pytest.mark.parametrize(
    "prefix",
    [
        "<134>Jan 15 09:07:03 fw-01 ",
        "<134>Nov  6 07:08:09 fw-01 ",
        "<153>Mar 04 11:20:09 fw-01 ",
        "Oct 25 11:02:31 fw-01 ",
        "<134>Jan 15 09:07:03.123 fw-01 ",
        "<134>Jan 15 2025 09:07:03 fw-01 ",
        "<14>4 12 11:29:51 fw-01 ",
    ],
)
def test_rfc3164_and_agent_prefixes_without_zone_give_host_but_no_time(
    prefix: str,
) -> None:
    assert envelope(prefix) == ("fw-01", None, None)


@pytest.mark.parametrize(
    ("prefix", "time"),
    [
        ("<157>Mar 04 2025 11:22:47.318-0500 py-web-02 ", "2025-03-04T16:22:47.318Z"),
        ("<14>Dec 03 2023 16:31:28.861 UTC 192.0.2.40 ", "2023-12-03T16:31:28.861Z"),
        ("Jul 18 2024 13:14:35.717 +02:00 py-web-02 ", "2024-07-18T11:14:35.717Z"),
        ("Jun 05 2024 12:11:12 Europe/Berlin py-web-02 ", "2024-06-05T10:11:12Z"),
        ("2024-06-05T10:11:12Z py-web-02 ", "2024-06-05T10:11:12Z"),
        ("2024-06-05T12:11:12.5+02:00 py-web-02 ", "2024-06-05T10:11:12.5Z"),
    ],
)
def test_prefix_with_year_and_zone_gives_absolute_time(prefix: str, time: str) -> None:
    assert envelope(prefix) == (prefix.split()[-1], None, time)


def test_year_without_zone_is_not_trusted() -> None:
    assert envelope("2025-03-04 11:22:47,318 py-legacy ") == ("py-legacy", None, None)


def test_ambiguous_zone_name_is_read_as_zone_but_not_trusted() -> None:
    assert envelope("Dec 03 2017 16:31:28.861 IST 10.17.4.208 ") == (
        "10.17.4.208",
        None,
        None,
    )


def test_tag_after_host_gives_the_app_name() -> None:
    assert envelope("2024-06-05T10:11:12Z mail-gw tmes[1]: ") == (
        "mail-gw",
        "tmes",
        "2024-06-05T10:11:12Z",
    )


def test_tag_without_host_gives_only_the_app_name() -> None:
    assert envelope("<134>Aug 14 14:26:55 sshd[12]: ") == (None, "sshd", None)


def test_timestamp_without_host() -> None:
    assert envelope("<132>Aug 14 14:26:55 ") == (None, None, None)


def test_relay_header_in_front_of_the_agent_prefix_gives_the_inner_host() -> None:
    prefix = "<157>Mar 14 16:30:01 relay-01 Mar 14 16:30:00 app-host-07 "
    assert envelope(prefix) == ("app-host-07", None, None)


def test_inner_absolute_time_wins_over_outer() -> None:
    prefix = "<157>2025-03-14T16:30:01Z relay-01 Mar 14 2025 16:30:00 UTC app-host "
    assert envelope(prefix) == ("app-host", None, "2025-03-14T16:30:00Z")


def test_host_only_prefix() -> None:
    assert envelope("<134>fw-01 ") == ("fw-01", None, None)


def test_relay_writing_cef_as_tag_with_space_before_version() -> None:
    parsed = parse_syslog("<134>Jan 15 09:07:03 host CEF: 0|V|P|1|1|n|1|k=v")
    assert parsed is not None
    assert parsed.hostname == "host"
    assert parsed.cef_offset == 26


def test_rfc5424_header_fields() -> None:
    line = "<134>1 2024-06-05T10:11:12.345Z ids-01 sensord 4242 ALERT - " + CEF
    parsed = parse_syslog(line)
    assert parsed is not None
    assert line[parsed.cef_offset :] == CEF
    assert (parsed.hostname, parsed.app_name, parsed.timestamp) == (
        "ids-01",
        "sensord",
        "2024-06-05T10:11:12.345Z",
    )


def test_rfc5424_offset_time_is_converted_to_utc() -> None:
    parsed = parse_syslog("<134>1 2024-06-05T12:11:12+02:00 h a - - - " + CEF)
    assert parsed is not None
    assert parsed.timestamp == "2024-06-05T10:11:12Z"


def test_rfc5424_nilvalues_give_none() -> None:
    parsed = parse_syslog("<134>1 - - - - - - " + CEF)
    assert parsed is not None
    assert (parsed.hostname, parsed.app_name, parsed.timestamp) == (None, None, None)


def test_rfc5424_bom_before_msg() -> None:
    line = "<156>1 2025-03-14T17:00:00Z web-03 contrast - - - \ufeff" + CEF
    parsed = parse_syslog(line)
    assert parsed is not None
    assert line[parsed.cef_offset :] == CEF


def test_rfc5424_cef_inside_structured_data_is_not_the_payload() -> None:
    sd = '[meta note="see CEF:0|Fake|P|1|1|n|1|a=b \\"q\\" \\]"][x@1 k="v"]'
    line = f"<134>1 2024-06-05T10:11:12Z h app - - {sd} {CEF}"
    parsed = parse_syslog(line)
    assert parsed is not None
    assert line[parsed.cef_offset :] == CEF


def test_rfc5424_with_cef_only_in_structured_data_is_not_cef() -> None:
    line = '<134>1 2024-06-05T10:11:12Z h app - - [m n="x CEF:0|a|b|c|d|e|f|"] text'
    assert parse_syslog(line) is None


def test_rfc5424_msg_with_agent_prefix_gives_the_inner_host() -> None:
    line = "<134>1 2025-01-01T00:00:00Z relay a - - - Jan 01 00:00:00 origin " + CEF
    parsed = parse_syslog(line)
    assert parsed is not None
    assert (parsed.hostname, parsed.timestamp) == ("origin", "2025-01-01T00:00:00Z")


def test_cef_inside_a_hostname_is_not_a_marker() -> None:
    line = "<134>Sep  3 16:35:24 gw-CEF:1-lab " + CEF
    parsed = parse_syslog(line)
    assert parsed is not None
    assert parsed.hostname == "gw-CEF:1-lab"
    assert line[parsed.cef_offset :] == CEF


def test_line_without_cef_marker_is_not_cef() -> None:
    assert parse_syslog("<166>Jun  5 10:11:12 asa-01 %ASA-6-302013: Built") is None


def test_cef_marker_eaten_by_relay_is_not_cef() -> None:
    assert parse_syslog("<134>Jan 15 09:07:03 host 0|Vendor|P|1|1|n|1|a=b") is None


def test_find_marker_accepts_bom_and_whitespace_boundaries() -> None:
    assert find_marker("x\ufeffCEF:0", 0) == 2
    assert find_marker("a\tCEF:0", 0) == 2
    assert find_marker("aCEF:0 b=CEF:0", 0) == -1
