"""Parser throughput and correctness: cefpipe against pycef, on the same lines.

The corpus comes from :mod:`bench.corpus`. Each implementation parses every
line in interleaved rounds (the best round counts), and every result is checked
against the answer the generator wrote down.

Prints one summary line. Usage::

    .venv/bin/python -m bench.bench_parser [--lines 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if not __package__:  # run as a file: make the bench package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pycef

from bench.corpus import SEED, Sample, make_corpus
from enrich.cef import CefSyntaxError, parse_cef
from enrich.pipeline import Envelope, enrich
from enrich.syslog import parse_syslog

CASES_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "cases"

PYCEF_HEADER_KEYS = (
    "DeviceVendor",
    "DeviceProduct",
    "DeviceVersion",
    "DeviceEventClassID",
    "Name",
    "Severity",
)
PYCEF_EXTRA_KEYS = frozenset({"CEFVersion", "DeviceName", "DeviceSeverity"})
CASE_HEADER_FIELDS = (
    "device_vendor",
    "device_product",
    "device_version",
    "signature_id",
    "name",
    "severity",
)
HEADER_COLUMNS = (
    "DeviceVendor",
    "DeviceProduct",
    "DeviceVersion",
    "DeviceEventClassID",
    "Activity",
    "LogSeverity",
)


@dataclass(frozen=True)
class ParserResult:
    """Lines per second of each implementation and how many lines each got right."""

    lines: int
    rate: dict[str, float]
    cefpipe_right: int
    pycef_right: int
    case_right: int
    case_total: int

    @property
    def ratio(self) -> float:
        return self.rate["cefpipe"] / self.rate["pycef"]


def cefpipe_parse(line: str) -> tuple[tuple[str, ...], dict[str, str]] | None:
    """The syslog and CEF layers alone: header fields and extension pairs."""
    envelope = parse_syslog(line)
    if envelope is None:
        return None
    try:
        event = parse_cef(line, envelope.cef_offset)
    except CefSyntaxError:
        return None
    return event[1:7], event.extensions


def cefpipe_right(sample: Sample) -> bool:
    return cefpipe_parse(sample.line) == (sample.header, sample.extensions)


def pycef_parse(line: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] | None = pycef.parse(line)
    except Exception:  # pycef raises on some inputs; that is a wrong answer
        return None
    return result


def pycef_agrees(
    result: dict[str, Any] | None, header: Iterable[str], extensions: dict[str, str]
) -> bool:
    if result is None:
        return False
    if tuple(result.get(key) for key in PYCEF_HEADER_KEYS) != tuple(header):
        return False
    pairs = {k: v for k, v in result.items() if k not in PYCEF_EXTRA_KEYS}
    for key in PYCEF_HEADER_KEYS:
        pairs.pop(key, None)
    return pairs == extensions


def pycef_on_shared_cases() -> tuple[int, int]:
    """pycef's score on the shared cases, judged by the cases' own answers."""
    right = total = 0
    for path in sorted(CASES_DIR.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            case = json.loads(line)
            total += 1
            right += _pycef_right_on_case(case)
    return right, total


def _pycef_right_on_case(case: dict[str, Any]) -> bool:
    raw = case["raw"]
    if case.get("transport") == "tcp-octet-counted":
        raw = raw.split(" ", 1)[1]
    result = pycef_parse(raw.rstrip("\r\n"))
    expect = case["expect"]
    if "error" in expect or expect.get("_disposition") == "reject":
        return result is None
    if "header" in expect:
        header = expect["header"]
        fields = (header[field] for field in CASE_HEADER_FIELDS)
        return pycef_agrees(result, fields, expect["extensions"])
    # Contrast samples state columns; their pairs are what cefpipe (which
    # passes every case) decodes.
    ours = cefpipe_parse(raw.rstrip("\r\n"))
    extensions = ours[1] if ours is not None else {}
    return pycef_agrees(result, (expect[c] for c in HEADER_COLUMNS), extensions)


def _timed(parse: Callable[[Any], object], lines: Sequence[Any]) -> float:
    started = time.perf_counter()
    for line in lines:
        parse(line)
    return time.perf_counter() - started


def measure(corpus: Sequence[Sample], rounds: int) -> ParserResult:
    """Time both parsers (and the full enrich step) round by round, then score them."""
    lines = [sample.line for sample in corpus]
    raw_lines = [line.encode() for line in lines]
    envelope = Envelope(received_at_us=time.time_ns() // 1000)

    def run_enrich(raw: bytes) -> object:
        return enrich(raw, envelope)

    best = {"cefpipe": float("inf"), "enrich": float("inf"), "pycef": float("inf")}
    for _ in range(rounds):
        best["cefpipe"] = min(best["cefpipe"], _timed(cefpipe_parse, lines))
        best["pycef"] = min(best["pycef"], _timed(pycef_parse, lines))
        best["enrich"] = min(best["enrich"], _timed(run_enrich, raw_lines))

    case_right, case_total = pycef_on_shared_cases()
    return ParserResult(
        lines=len(lines),
        rate={name: len(lines) / max(secs, 1e-9) for name, secs in best.items()},
        cefpipe_right=sum(cefpipe_right(sample) for sample in corpus),
        pycef_right=sum(
            pycef_agrees(pycef_parse(s.line), s.header, s.extensions) for s in corpus
        ),
        case_right=case_right,
        case_total=case_total,
    )


def summary(result: ParserResult) -> str:
    rate, lines = result.rate, result.lines
    return (
        f"lines={lines} seed={SEED} | "
        f"cefpipe parse {rate['cefpipe']:,.0f}/s, enrich {rate['enrich']:,.0f}/s, "
        f"pycef {rate['pycef']:,.0f}/s | parse/pycef {result.ratio:.2f}x | right by "
        f"our rules: cefpipe {result.cefpipe_right}/{lines}, pycef "
        f"{result.pycef_right}/{lines} | pycef on shared cases "
        f"{result.case_right}/{result.case_total}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--lines", type=int, default=20_000)
    options.add_argument("--rounds", type=int, default=5)
    options.add_argument("--quick", action="store_true", help="2,000 lines, 2 rounds")
    args = options.parse_args(argv)
    if args.quick:
        args.lines, args.rounds = 2_000, 2
    print(summary(measure(make_corpus(args.lines), args.rounds)), flush=True)


if __name__ == "__main__":
    main()
