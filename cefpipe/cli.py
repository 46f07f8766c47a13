"""The ``cefpipe`` command: one entry point for every component and tool.

Each subcommand imports its implementation lazily, so ``cefpipe parse`` does not
pay for Faust and ``cefpipe ingest`` does not import the Azure SDK.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from cefpipe.settings import Settings, SettingsError

Handler = Callable[[Settings, argparse.Namespace], int]


def _run_parse(settings: Settings, args: argparse.Namespace) -> int:
    from enrich.parse_command import run

    return run(args.file, octet_counted=args.octet_counted)


def _run_query(settings: Settings, args: argparse.Namespace) -> int:
    from emulator.query_command import run

    return run(settings, args.query, as_json=args.json)


def _run_emulator(settings: Settings, args: argparse.Namespace) -> int:
    from emulator.main import run

    return run(settings)


def _run_ingest(settings: Settings, args: argparse.Namespace) -> int:
    from ingest.main import run

    return run(settings)


def _run_enrich(settings: Settings, args: argparse.Namespace) -> int:
    from enrich.main import run

    return run(settings)


def _run_sink(settings: Settings, args: argparse.Namespace) -> int:
    from sink.main import run

    return run(settings)


def _run_kafka(settings: Settings, args: argparse.Namespace) -> int:
    from cefpipe.kafka_command import run

    return run(settings, args.action)


def _run_topics(settings: Settings, args: argparse.Namespace) -> int:
    from cefpipe.topics import run

    return run(settings)


def _run_up(settings: Settings, args: argparse.Namespace) -> int:
    from cefpipe.stack import run_up

    return run_up(settings)


def _run_status(settings: Settings, args: argparse.Namespace) -> int:
    from cefpipe.stack import run_status

    return run_status(settings, as_json=args.json)


def _run_demo(settings: Settings, args: argparse.Namespace) -> int:
    from cefpipe.demo import run

    return run(settings, args.file)


def _run_send(settings: Settings, args: argparse.Namespace) -> int:
    from cefpipe.send import run

    return run(
        args.file,
        host=args.host or "127.0.0.1",
        port=args.port or settings.ingest.port,
        udp=args.udp,
        octet_counted=args.octet_counted,
    )


def _run_dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    from cefpipe.dead_letters import run

    return run(settings, limit=args.limit, as_json=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cefpipe",
        description="Carry Contrast Protect CEF events from syslog through Kafka "
        "into Microsoft Sentinel's CommonSecurityLog.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    add("up", _run_up, "start Kafka, the emulator, ingest, enrich and sink locally")
    status = add("status", _run_status, "exit 0 when every local component is healthy")
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    demo = add(
        "demo", _run_demo, "start the stack, replay a sample, print both queries"
    )
    demo.add_argument("file", nargs="?", type=Path, help="syslog lines to replay")

    for name, handler, text in (
        ("ingest", _run_ingest, "run the syslog listener (TCP, UDP, TLS) into Kafka"),
        ("enrich", _run_enrich, "run the Faust worker that parses and maps CEF"),
        ("sink", _run_sink, "run the worker that uploads rows to Sentinel"),
        ("emulator", _run_emulator, "run the local Sentinel stand-in (TLS)"),
        ("topics", _run_topics, "create the raw, enriched and dead-letter topics"),
    ):
        add(name, handler, text)

    kafka = add("kafka", _run_kafka, "manage the local Kafka broker (no Docker)")
    kafka.add_argument("action", choices=("start", "stop", "status"))

    send = add("send", _run_send, "replay syslog lines from a file to a listener")
    send.add_argument(
        "file", type=Path, help="one syslog message per line ('-' = stdin)"
    )
    send.add_argument("--host", help="listener address (default 127.0.0.1)")
    send.add_argument("--port", type=int, help="listener port (default SYSLOG_PORT)")
    send.add_argument("--udp", action="store_true", help="one datagram per message")
    send.add_argument(
        "--octet-counted", action="store_true", help="frame TCP as RFC 6587 LEN SP MSG"
    )

    parse = add(
        "parse", _run_parse, "parse syslog CEF lines into CommonSecurityLog rows"
    )
    parse.add_argument("file", nargs="?", type=Path, help="input file (default stdin)")
    parse.add_argument(
        "--octet-counted",
        action="store_true",
        help="input is a stream of RFC 6587 octet-counted frames",
    )

    query = add("query", _run_query, "run a standard connector query over stored rows")
    query.add_argument("query", choices=("all-attacks", "effective-attacks"))
    query.add_argument("--json", action="store_true", help="one JSON object per row")

    dead = add("dead-letters", _run_dead_letters, "show what was dead-lettered and why")
    dead.add_argument("--limit", type=int, default=50, help="newest N (default 50)")
    dead.add_argument("--json", action="store_true", help="one JSON object per record")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"cefpipe: configuration error: {exc}", file=sys.stderr)
        return 2
    handler: Handler = args.handler
    try:
        return handler(settings, args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
