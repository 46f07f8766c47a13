"""``cefpipe up`` and ``cefpipe status``: the whole pipeline on one machine.

``up`` starts the local Kafka broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` names a
running one), creates the topics, then runs the emulator, ingest, enrich and the
sink as child processes, each with its own log file under ``<home>/logs``. It
restarts a child that dies, and on Ctrl-C or SIGTERM stops them in data order
(intake first) so that nothing in flight is dropped.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cefpipe.kafka_broker import BrokerError, LocalBroker, is_reachable
from cefpipe.kafka_command import broker_config
from cefpipe.logconfig import configure_logging
from cefpipe.ports import free_port
from cefpipe.settings import Settings, process_environment
from cefpipe.topics import ensure_topics, pipeline_topics

logger = logging.getLogger(__name__)

_HEALTH_TIMEOUT_SECS = 90.0
_STOP_GRACE_SECS = 45.0
_MAX_RESTART_DELAY_SECS = 60.0
_PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """The stack could not start; the message says which part and why."""


@dataclass
class Component:
    """One child process of the stack and how to tell it is healthy."""

    name: str
    metrics_port: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float | None = None
    backoff: float = 1.0
    next_start: float | None = None

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/healthz"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"


def components(settings: Settings) -> list[Component]:
    """The stack's children in start order; they stop in the reverse order."""
    return [
        Component("emulator", settings.emulator.metrics_port),
        Component("sink", settings.sink.metrics_port),
        Component("enrich", settings.enrich.metrics_port),
        Component("ingest", settings.ingest.metrics_port),
    ]


class Stack:
    """Runs the pipeline's processes; ``start`` then ``stop``, once each."""

    def __init__(
        self, settings: Settings, env: Mapping[str, str] | None = None
    ) -> None:
        self.settings = settings
        self._env = process_environment() if env is None else dict(env)
        self._broker: LocalBroker | None = None
        self.children = components(settings)
        self._log_dir = settings.logs_dir

    def start(self) -> None:
        """Bring up Kafka, the topics and every child; raise StackError on failure."""
        self._start_kafka()
        kafka = self.settings.kafka
        ensure_topics(
            kafka.bootstrap_servers, pipeline_topics(kafka), kafka.topic_partitions
        )
        self._log_dir.mkdir(parents=True, exist_ok=True)
        for child in self.children:
            self._spawn(child)
            self._wait_healthy(child)

    def watch(self, stop: threading.Event) -> None:
        """Until ``stop`` is set, restart the broker and children that exit."""
        while not stop.wait(1.0):
            self._restart_broker_if_dead()
            for child in self.children:
                if child.process is not None and child.process.poll() is not None:
                    self._restart(child)

    def stop(self) -> None:
        """Stop children intake-first, then the broker if this stack started it."""
        for child in reversed(self.children):
            _terminate(child)
        if self._broker is not None:
            self._broker.stop()

    def _start_kafka(self) -> None:
        kafka = self.settings.kafka
        if kafka.external:
            if not is_reachable(kafka.bootstrap_servers):
                raise StackError(
                    f"KAFKA_BOOTSTRAP_SERVERS={kafka.bootstrap_servers} does not answer"
                )
            return
        broker = LocalBroker(broker_config(self.settings))
        already_running = broker.running_pid() is not None
        try:
            broker.start()
        except BrokerError as exc:
            raise StackError(f"Kafka: {exc}") from exc
        if not already_running:
            self._broker = broker

    def _spawn(self, child: Component) -> None:
        log_file = (self._log_dir / f"{child.name}.log").open("ab")
        env = {**self._env, "LOG_FORMAT": "json"}
        child.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "cefpipe", child.name],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child.started_at = time.monotonic()
        log_file.close()

    def _wait_healthy(self, child: Component) -> None:
        deadline = time.monotonic() + _HEALTH_TIMEOUT_SECS
        assert child.process is not None
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise StackError(
                    f"{child.name} exited with code {child.process.returncode}: "
                    f"{self._last_log_line(child)} (full log: "
                    f"{self._log_dir / (child.name + '.log')})"
                )
            healthy, _ = check_health(child.health_url)
            if healthy:
                return
            time.sleep(0.3)
        raise StackError(
            f"{child.name} did not become healthy in {_HEALTH_TIMEOUT_SECS:.0f}s"
        )

    def _restart(self, child: Component) -> None:
        """Start a dead child again, waiting longer each time it dies soon after.

        A child that keeps dying is retried for as long as the stack runs (a
        broker or a port may come back); the wait doubles up to a minute.
        """
        assert child.process is not None
        now = time.monotonic()
        if child.next_start is None:
            code = child.process.returncode
            quick = child.started_at is not None and now - child.started_at < 60
            child.backoff = (
                min(child.backoff * 2, _MAX_RESTART_DELAY_SECS) if quick else 1.0
            )
            child.next_start = now + child.backoff
            logger.warning(
                "%s exited with code %s; restarting it in %.0fs. Last log line: %s",
                child.name,
                code,
                child.backoff,
                self._last_log_line(child),
            )
        if now >= child.next_start:
            child.next_start = None
            self._spawn(child)

    def _restart_broker_if_dead(self) -> None:
        broker = self._broker
        if broker is None or broker.running_pid() is not None:
            return
        logger.error("the Kafka broker this stack started has died; starting it again")
        try:
            broker.start()
        except BrokerError as exc:
            logger.error("Kafka could not be restarted: %s", exc)

    def _last_log_line(self, child: Component) -> str:
        try:
            lines = (
                (self._log_dir / f"{child.name}.log")
                .read_text(errors="replace")
                .splitlines()
            )
        except OSError:
            return "(no log)"
        return lines[-1][:500] if lines else "(empty log)"


def private_environment(
    base: Mapping[str, str], home: Path, name: str, bootstrap: str | None = None
) -> dict[str, str]:
    """Settings for a stack of its own beside any other: a home and free ports.

    With ``bootstrap`` the stack uses that broker, with topics and consumer
    groups named after ``name`` and a random suffix so it touches nobody else's
    data; without it the stack starts its own broker on free ports.
    """
    emulator_port = free_port()
    env = {
        **base,
        "CEFPIPE_HOME": str(home),
        "SYSLOG_PORT": str(free_port()),
        "SYSLOG_TLS_PORT": str(free_port()),
        "EMULATOR_PORT": str(emulator_port),
        "EMULATOR_URL": f"https://127.0.0.1:{emulator_port}",
        "INGEST_METRICS_PORT": str(free_port()),
        "ENRICH_METRICS_PORT": str(free_port()),
        "SINK_METRICS_PORT": str(free_port()),
        "EMULATOR_METRICS_PORT": str(free_port()),
    }
    if bootstrap is None:
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        env["KAFKA_BROKER_PORT"] = str(free_port())
        env["KAFKA_CONTROLLER_PORT"] = str(free_port())
        return env
    suffix = f"{name}-{uuid.uuid4().hex[:8]}"
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "TOPIC_RAW": f"{suffix}-raw",
            "TOPIC_ENRICHED": f"{suffix}-enriched",
            "TOPIC_DEAD_LETTER": f"{suffix}-dead-letter",
            "ENRICH_CONSUMER_GROUP": f"{suffix}-enrich",
            "SINK_CONSUMER_GROUP": f"{suffix}-sink",
        }
    )
    return env


def check_health(url: str, timeout_secs: float = 2.0) -> tuple[bool, dict[str, object]]:
    """GET a ``/healthz`` page; (healthy, body) — unreachable counts as unhealthy."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_secs) as response:  # noqa: S310
            return True, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        return False, body
    except (OSError, ValueError) as exc:
        return False, {"status": "unreachable", "error": str(exc)}


def _terminate(child: Component) -> None:
    process = child.process
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(_STOP_GRACE_SECS)
    except subprocess.TimeoutExpired:
        logger.warning(
            "%s did not stop within %.0fs; killing it", child.name, _STOP_GRACE_SECS
        )
        process.kill()
        process.wait()


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM to the child if ``cefpipe up`` itself dies."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(
            _PR_SET_PDEATHSIG, signal.SIGTERM
        )


def describe(settings: Settings) -> str:
    """Where everything listens, for the user who just ran ``cefpipe up``."""
    ingest = settings.ingest
    lines = [
        f"syslog:    {ingest.bind_host}:{ingest.port} (TCP and UDP)",
        f"kafka:     {settings.kafka.bootstrap_servers}",
        f"sentinel:  {settings.sink.endpoint}"
        + (" (the local emulator)" if settings.sink.uses_local_emulator else ""),
    ]
    for child in components(settings):
        lines.append(f"{child.name + ':':10} {child.metrics_url}  (health: /healthz)")
    lines.append(f"state:     {settings.home}   logs: {settings.logs_dir}")
    return "\n".join(lines)


def run_up(settings: Settings) -> int:
    configure_logging("up", settings.instance, settings.log_level, settings.log_format)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stack = Stack(settings)
    try:
        stack.start()
    except StackError as exc:
        logger.error("cefpipe up failed: %s", exc)
        stack.stop()
        return 1
    print("cefpipe is running\n" + describe(settings), flush=True)
    print(
        "send events: cefpipe send FILE   |   query: cefpipe query all-attacks",
        flush=True,
    )
    print("stop: Ctrl-C", flush=True)
    stack.watch(stop)
    print("stopping…", flush=True)
    stack.stop()
    return 0


def run_status(settings: Settings, *, as_json: bool) -> int:
    kafka_ok = is_reachable(settings.kafka.bootstrap_servers)
    report: dict[str, object] = {
        "kafka": {"ok": kafka_ok, "at": settings.kafka.bootstrap_servers}
    }
    healthy = kafka_ok
    for child in components(settings):
        ok, body = check_health(child.health_url)
        healthy = healthy and ok
        report[child.name] = {"ok": ok, "health": body}
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        for name, entry in report.items():
            assert isinstance(entry, dict)
            print(f"{name:10} {'healthy' if entry['ok'] else 'NOT healthy'}")
    return 0 if healthy else 1
