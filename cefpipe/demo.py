"""``cefpipe demo``: the whole pipeline once, on a sample, in a minute or two.

Starts a private stack (its own state directory and free ports, so it never
collides with a running ``cefpipe up``), replays a shipped sample of Contrast
events over TCP syslog, waits until the emulator stored every row the sample
should produce, prints the connector's two standard queries and what was
dead-lettered, and stops everything.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from cefpipe.dead_letters import newest_dead_letters
from cefpipe.logconfig import configure_logging
from cefpipe.send import read_messages, send_tcp
from cefpipe.settings import Settings, process_environment
from cefpipe.stack import Stack, StackError, describe, private_environment

logger = logging.getLogger(__name__)

_ROWS_TIMEOUT_SECS = 120.0


def demo_environment(base: Settings) -> dict[str, str]:
    """A private home and free ports; an external broker gets private topics."""
    home = Path(tempfile.mkdtemp(prefix="cefpipe-demo-"))
    env = private_environment(
        process_environment(),
        home,
        "cefpipe-demo",
        base.kafka.bootstrap_servers if base.kafka.external else None,
    )
    env["CEFPIPE_CACHE_DIR"] = str(base.cache_dir)
    env["SINK_FLUSH_INTERVAL_SECS"] = "1"
    return env


def expected_rows(messages: list[bytes]) -> int:
    """How many of ``messages`` the enrich stage turns into rows."""
    from enrich.pipeline import Enriched, Envelope, enrich

    envelope = Envelope(received_at_us=time.time_ns() // 1000)
    return sum(isinstance(enrich(m, envelope), Enriched) for m in messages)


def wait_for_rows(settings: Settings, count: int) -> int:
    from emulator.store import read_rows

    deadline = time.monotonic() + _ROWS_TIMEOUT_SECS
    stored = 0
    while time.monotonic() < deadline:
        stored = len(read_rows(settings.emulator_db_file))
        if stored >= count:
            return stored
        time.sleep(0.5)
    return stored


def run(base: Settings, file: Path | None) -> int:
    # The demo's own output is the report; its progress lines only matter when asked.
    quiet = "WARNING" if base.log_level == "INFO" else base.log_level
    configure_logging("demo", base.instance, quiet, base.log_format)
    sample = file or Path(str(resources.files("cefpipe.data") / "contrast-sample.log"))
    messages = list(read_messages(sample))
    env = demo_environment(base)
    settings = Settings.from_env(env)
    print(f"starting a private cefpipe stack in {settings.home} …", flush=True)
    stack = Stack(settings, env)
    try:
        stack.start()
    except StackError as exc:
        print(f"cefpipe demo: {exc}", file=sys.stderr)
        stack.stop()
        return 1
    try:
        return _replay_and_report(settings, sample, messages)
    finally:
        print("stopping the demo stack …", flush=True)
        stack.stop()


def _replay_and_report(settings: Settings, sample: Path, messages: list[bytes]) -> int:
    from emulator.query_command import run as run_query

    print(describe(settings), flush=True)
    wanted = expected_rows(messages)
    sent = send_tcp(
        iter(messages), "127.0.0.1", settings.ingest.port, octet_counted=False
    )
    print(
        f"\nsent {sent} syslog messages from {sample}; expecting {wanted} rows",
        flush=True,
    )
    stored = wait_for_rows(settings, wanted)
    print(f"the emulator stored {stored} rows in CommonSecurityLog\n", flush=True)
    for query in ("all-attacks", "effective-attacks"):
        print(f"== {query} ==", flush=True)
        run_query(settings, query, as_json=False)
        print(flush=True)
    _print_dead_letters(settings)
    print(
        f"state kept in {settings.home}; to query it again:\n"
        f"  CEFPIPE_HOME={settings.home} {sys.argv[0]} query all-attacks --json",
        flush=True,
    )
    return 0 if stored == wanted else 1


def _print_dead_letters(settings: Settings) -> None:
    letters = newest_dead_letters(settings, limit=20)
    print(f"== dead letters ({len(letters)}) ==")
    for dead, value, _ in letters:
        preview = value.decode("utf-8", "replace")[:100]
        print(f"[{dead.stage}] {dead.reason}: {dead.message}\n    {preview!r}")
    print(flush=True)
