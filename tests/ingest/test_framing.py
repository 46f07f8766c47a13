"""TCP framing: newline, NUL and RFC 6587 octet counting on one stream."""

from __future__ import annotations

import pytest

from ingest.framing import Frame, FrameDecoder


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
    stream = b"5 hello6 world!"
    frames = decode_all([stream[:1], stream[1:9], stream[9:]])
    assert [f.data for f in frames] == [b"hello", b"world!"]
    assert all(f.octet_counted for f in frames)


def test_mixed_framings_are_told_apart_frame_by_frame() -> None:
    frames = decode_all([b"5 hello<134>plain line\n3 abc"])
    assert [(f.data, f.octet_counted) for f in frames] == [
        (b"hello", True),
        (b"<134>plain line", False),
        (b"abc", True),
    ]


@pytest.mark.parametrize(
    "line",
    [
        b"2024-06-05T10:11:12Z host tmes[1]: CEF:0|a|b|c|d|e|f|",
        b"1 apple is not a length because no frame follows it\n",
        b"0123 leading zero is not a length",
    ],
)
def test_a_line_starting_with_digits_that_is_not_a_length_is_newline_framed(
    line: bytes,
) -> None:
    frames = decode_all([line + b"\n"], limit=10_000)
    if line.startswith(b"1 apple"):
        # "1 a" parses as a one-byte octet frame: RFC 6587 cannot tell them apart.
        assert frames[0] == Frame(b"a", octet_counted=True)
    else:
        assert frames == [Frame(line)]


def test_zero_length_frames_are_counted_not_returned() -> None:
    decoder = FrameDecoder(100)
    frames = decoder.feed(b"a\n\n\nb\n")
    assert [f.data for f in frames] == [b"a", b"b"]
    assert decoder.empty_frames == 2


def test_oversized_newline_message_keeps_its_head_and_skips_its_tail() -> None:
    frames = decode_all([b"x" * 30, b"y" * 30, b"z" * 5 + b"\nok\n"], limit=20)
    assert frames == [Frame(b"x" * 20, oversized=True), Frame(b"ok")]


def test_oversized_octet_frame_keeps_its_head_and_skips_exactly_its_length() -> None:
    frames = decode_all([b"50 " + b"y" * 25, b"y" * 25 + b"after\n"], limit=20)
    assert frames == [
        Frame(b"y" * 20, oversized=True, octet_counted=True),
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
