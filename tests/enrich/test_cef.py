"""CEF header and extension rules, one behaviour per test."""

from __future__ import annotations

import pytest

from enrich.cef import CefSyntaxError, parse_cef, parse_extension, unescape_value


def header_of(line: str) -> tuple[str, ...]:
    event = parse_cef(line)
    return (
        event.version,
        event.device_vendor,
        event.device_product,
        event.device_version,
        event.signature_id,
        event.name,
        event.severity,
    )


def test_header_fields_split_on_unescaped_pipes() -> None:
    assert header_of("CEF:0|V|P|1.0|100|Name|5|") == (
        "0",
        "V",
        "P",
        "1.0",
        "100",
        "Name",
        "5",
    )


def test_header_escaped_pipe_backslash_and_equals_are_unescaped() -> None:
    event = parse_cef(r"CEF:0|A\\B|x\|y|a\=b|1|n|1|k=v")
    assert (event.device_vendor, event.device_product, event.device_version) == (
        "A\\B",
        "x|y",
        "a=b",
    )


def test_header_backslash_before_delimiter_ends_the_field() -> None:
    event = parse_cef("CEF:0|Vendor\\\\|Product|1|1|n|1|k=v")
    assert event.device_vendor == "Vendor\\"
    assert event.device_product == "Product"


def test_header_unknown_backslash_pair_is_kept_verbatim() -> None:
    event = parse_cef(r"CEF:0|V|C:\Temp\new|1|1|version\=\1.0|1|k=v")
    assert event.device_product == r"C:\Temp\new"
    assert event.name == r"version=\1.0"


def test_header_fields_are_not_trimmed() -> None:
    assert parse_cef("CEF:0| V | P |1|1| n |1|k=v").name == " n "


def test_header_empty_fields_are_empty_strings() -> None:
    assert header_of("CEF:0|||||||")[1:] == ("",) * 6


def test_header_any_integer_version_is_accepted() -> None:
    assert parse_cef("CEF:26|V|P|1|1|n|1|k=v").version == "26"


def test_header_version_may_follow_spaces() -> None:
    assert parse_cef("CEF: 0|V|P|1|1|n|1|k=v").version == "0"


@pytest.mark.parametrize("version", ["X", "0.1", "", "0 ", "-1"])
def test_header_non_integer_version_is_rejected(version: str) -> None:
    with pytest.raises(CefSyntaxError, match="CEF version is not an integer") as error:
        parse_cef(f"CEF:{version}|V|P|1|1|n|1|k=v")
    assert error.value.reason == "cef_version_invalid"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("CEF:0|V|P|1|1|n|5", "7th pipe (after Severity) missing"),
        ("CEF:0|V|P|1|1|name only", "only 6 of 7 header fields (no Severity)"),
        ("CEF:0|V|P|k=v a=b", "only 3 of 7 header fields (no Device Version)"),
        ("CEF:0", "only 1 of 7 header fields (no Device Vendor)"),
        ("CEF:0|V|P\\|1|1|n|5|", "only 6 of 7 header fields (no Severity)"),
    ],
)
def test_incomplete_header_is_rejected_with_the_count_found(
    line: str, message: str
) -> None:
    with pytest.raises(CefSyntaxError) as error:
        parse_cef(line)
    assert error.value.reason == "cef_header_incomplete"
    assert error.value.message == f"incomplete CEF header: {message}"


def test_pipes_after_the_seventh_belong_to_the_extension() -> None:
    event = parse_cef("CEF:0|V|P|1|1|n|1|request=/a?x=1|y=2 act=ok")
    assert event.extensions == {"request": "/a?x=1|y=2", "act": "ok"}


def test_parse_starts_at_the_given_offset() -> None:
    assert parse_cef("junk CEF:0|V|P|1|1|n|1|k=v", 5).device_vendor == "V"


def test_extension_value_runs_to_the_space_before_the_next_key() -> None:
    values, _ = parse_extension("msg=Login failed for alice duser=alice")
    assert values == {"msg": "Login failed for alice", "duser": "alice"}


def test_extension_spaces_before_the_next_key_are_trimmed() -> None:
    values, _ = parse_extension("a=x    b=y   ")
    assert values == {"a": "x", "b": "y"}


def test_extension_leading_spaces_of_a_value_are_kept() -> None:
    values, _ = parse_extension("a=  x b=y")
    assert values == {"a": "  x", "b": "y"}


def test_extension_whitespace_before_the_first_key_is_ignored() -> None:
    assert parse_extension(" \t a=1")[0] == {"a": "1"}


def test_extension_tab_is_not_a_separator() -> None:
    assert parse_extension("a=x\tb=y")[0] == {"a": "x\tb=y"}


def test_a_value_loses_only_the_space_run_before_the_next_key() -> None:
    values, _ = parse_extension("a=x\t\r   b=done \t\r\n")
    assert values == {"a": "x\t\r", "b": "done"}


def test_the_last_value_is_right_trimmed_of_space_tab_and_line_ends() -> None:
    assert parse_extension("a=1 msg=done \t\r")[0] == {"a": "1", "msg": "done"}


def test_extension_trim_happens_before_unescaping() -> None:
    assert parse_extension(r"a=line\n b=x\r")[0] == {"a": "line\n", "b": "x\r"}


def test_extension_empty_values_do_not_swallow_the_next_key() -> None:
    assert parse_extension("a= b=1 c=")[0] == {"a": "", "b": "1", "c": ""}


def test_extension_escapes_are_decoded_in_one_scan() -> None:
    values, _ = parse_extension(r"path=C:\\new\\rules x=k\\m\=n")
    assert values == {"path": "C:\\new\\rules", "x": "k\\m=n"}


def test_extension_escaped_newline_and_cr_become_control_characters() -> None:
    assert parse_extension(r"msg=one\ntwo\rthree")[0] == {"msg": "one\ntwo\rthree"}


def test_extension_other_backslash_pairs_and_dangling_backslash_stay() -> None:
    values, _ = parse_extension("a=x\\|y\\/z\\t b=end\\")
    assert values == {"a": "x\\|y\\/z\\t", "b": "end\\"}


def test_extension_escaped_equals_never_starts_a_key() -> None:
    values, _ = parse_extension(r"q=a\=b aa.bc&key3\=v k\=x y=1")
    assert values == {"q": "a=b aa.bc&key3=v k=x", "y": "1"}


def test_extension_unescaped_equals_inside_a_value_is_text() -> None:
    values, _ = parse_extension("request=https://h/p?next=/home&a=b dst=192.0.2.1")
    assert values == {"request": "https://h/p?next=/home&a=b", "dst": "192.0.2.1"}


def test_extension_keys_may_hold_dots_brackets_commas_hyphens() -> None:
    values, _ = parse_extension("ad.x[0]=1 X-Trace-Id=abc a_,b=2 _cefVer=0.1")
    assert values == {
        "ad.x[0]": "1",
        "X-Trace-Id": "abc",
        "a_,b": "2",
        "_cefVer": "0.1",
    }


def test_extension_quotes_are_kept() -> None:
    values, _ = parse_extension("msg=\"quoted value\" suser='alice'")
    assert values == {"msg": '"quoted value"', "suser": "'alice'"}


def test_extension_duplicate_key_last_value_wins_and_is_reported() -> None:
    values, duplicates = parse_extension("cs2=a cs2Label=L cs2=b cs1=c")
    assert values == {"cs2": "b", "cs2Label": "L", "cs1": "c"}
    assert duplicates == ("cs2",)


def test_extension_legacy_single_quoted_pairs_lose_their_quotes() -> None:
    values, _ = parse_extension("'pri=sql-injection' 'request=/a b' 'q=x' OR '1'")
    assert values == {"pri": "sql-injection", "request": "/a b", "q": "x' OR '1"}


def test_extension_empty_or_blank_is_no_pairs() -> None:
    assert parse_extension("   ") == ({}, ())


def test_extension_not_starting_with_a_key_is_rejected() -> None:
    with pytest.raises(CefSyntaxError, match="extension does not start with key=") as e:
        parse_extension("free text k=v")
    assert e.value.reason == "cef_extension_malformed"


def test_unescape_value_leaves_plain_text_alone() -> None:
    assert unescape_value("plain") == "plain"
