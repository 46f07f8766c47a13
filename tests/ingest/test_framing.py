"""Framing: newline, NUL and RFC 6587 octet counting on one TCP stream; UDP lines."""

from __future__ import annotations

import pytest

from ingest.framing import Frame, FrameDecoder, split_datagram


def decode_all(chunks: list[bytes], limit: int = 1000) -> list[Frame]:
    decoder = FrameDecoder(limit)
    frames: list[Frame] = []
    for chunk in chunks:
        frames.extend(decoder.feed(chunk))
    frames.extend(decoder.close())
    return frames


def test_newline_framing_cuts_at_each_line_feed_and_keeps_carriage_returns() -> None:
    frames = decode_all([b"first\r\nsecond\nthird\n"])
    assert [f.data for f in frames] == [b"first\r", b"second", b"third"]


def test_nul_terminates_a_message_like_a_line_feed() -> None:
    assert [f.data for f in decode_all([b"one\x00two\x00"])] == [b"one", b"two"]


def test_a_message_split_across_reads_is_reassembled() -> None:
    frames = decode_all([b"<134>Jan 15 09:07:03 h", b"ost CEF:0|a", b"|b\nnext\n"])
    assert [f.data for f in frames] == [b"<134>Jan 15 09:07:03 host CEF:0|a|b", b"next"]


def test_octet_counted_frame_keeps_a_raw_line_feed_inside() -> None:
    message = b"<134>1 - host app - - - CEF:0|v|p|1|2|n|3|msg=a\nb"
    frames = decode_all([str(len(message)).encode() + b" " + message])
    assert frames == [Frame(message, octet_counted=True)]


def test_octet_counted_frames_back_to_back_and_split_inside_the_length() -> None:
    stream = b"8 <1>hello9 <1>world!"
    frames = decode_all([stream[:1], stream[1:9], stream[9:]])
    assert [f.data for f in frames] == [b"<1>hello", b"<1>world!"]
    assert all(f.octet_counted for f in frames)


def test_octet_counted_bare_cef_is_recognised_by_its_cef_prefix() -> None:
    message = b"CEF:0|Contrast|Protect|3|SQLI|SQL Injection|10|msg=a\nb"
    stream = str(len(message)).encode() + b" " + message
    frames = decode_all([stream[:4], stream[4:6], stream[6:]])
    assert frames == [Frame(message, octet_counted=True)]


def test_mixed_framings_are_told_apart_frame_by_frame() -> None:
    frames = decode_all([b"5 <1>hi<134>plain line\n7 CEF:0|x"])
    assert [(f.data, f.octet_counted) for f in frames] == [
        (b"<1>hi", True),
        (b"<134>plain line", False),
        (b"CEF:0|x", True),
    ]


@pytest.mark.parametrize(
    "line",
    [
        b"2024-06-05T10:11:12Z host tmes[1]: CEF:0|a|b|c|d|e|f|",
        b"1 apple is not a length: no syslog message follows it",
        b"0123 leading zero is not a length",
        b"4 12 11:29:51 192.168.12.70 CEF:0|Contrast Security|Contrast Agent|3|x",
        b"12 CEO report: not a length either",
    ],
)
def test_a_line_starting_with_digits_that_is_not_a_length_is_newline_framed(
    line: bytes,
) -> None:
    assert decode_all([line + b"\n"], limit=10_000) == [Frame(line)]


def test_numeric_month_line_split_after_its_first_digits_is_still_one_line() -> None:
    """The decoder waits for the byte after ``LEN SP`` before deciding."""
    line = b"4 12 11:29:51 192.168.12.70 CEF:0|Contrast Security|Contrast Agent|3|x"
    decoder = FrameDecoder(1000)

    assert decoder.feed(line[:2]) == []
    assert decoder.feed(line[2:] + b"\n") == [Frame(line)]


def test_length_followed_by_a_partial_cef_prefix_waits_for_more_bytes() -> None:
    decoder = FrameDecoder(1000)

    assert decoder.feed(b"9 CE") == []
    assert decoder.feed(b"F:0|a|b") == [Frame(b"CEF:0|a|b", octet_counted=True)]


def test_zero_length_frames_are_counted_not_returned() -> None:
    decoder = FrameDecoder(100)
    frames = decoder.feed(b"a\n\n\nb\n")
    assert [f.data for f in frames] == [b"a", b"b"]
    assert decoder.empty_frames == 2


def test_oversized_newline_message_keeps_its_head_and_skips_its_tail() -> None:
    frames = decode_all([b"x" * 30, b"y" * 30, b"z" * 5 + b"\nok\n"], limit=20)
    assert frames == [Frame(b"x" * 20, oversized=True), Frame(b"ok")]


def test_oversized_octet_frame_keeps_its_head_and_skips_exactly_its_length() -> None:
    frames = decode_all([b"50 <" + b"y" * 24, b"y" * 25 + b"after\n"], limit=20)
    assert frames == [
        Frame(b"<" + b"y" * 19, oversized=True, octet_counted=True),
        Frame(b"after"),
    ]


def test_trailing_message_without_delimiter_counts_at_end_of_stream() -> None:
    assert [f.data for f in decode_all([b"a\nno newline at the end"])] == [
        b"a",
        b"no newline at the end",
    ]


def test_memory_stays_bounded_while_skipping_a_huge_message() -> None:
    decoder = FrameDecoder(100)
    decoder.feed(b"x" * 150)
    for _ in range(100):
        decoder.feed(b"x" * 10_000)
        assert decoder.buffered_bytes == 0
    assert decoder.feed(b"\nnext\n") == [Frame(b"next")]


def test_a_datagram_without_line_breaks_is_one_message() -> None:
    assert split_datagram(b"<134>CEF:0|a|b", 100) == [Frame(b"<134>CEF:0|a|b")]


def test_lines_packed_into_one_datagram_are_separate_messages() -> None:
    datagram = b"<134>ev12\r\n<134>ev13\n\n<134>ev14\x00<134>ev15\n"
    assert split_datagram(datagram, 100) == [
        Frame(b"<134>ev12\r"),
        Frame(b"<134>ev13"),
        Frame(b"<134>ev14"),
        Frame(b"<134>ev15"),
    ]


def test_a_datagram_of_only_delimiters_holds_no_message() -> None:
    assert split_datagram(b"\n\x00\n", 100) == []
    assert split_datagram(b"", 100) == []


def test_an_oversized_line_in_a_datagram_keeps_its_head() -> None:
    assert split_datagram(b"x" * 30 + b"\nok", 20) == [
        Frame(b"x" * 20, oversized=True),
        Frame(b"ok"),
    ]
