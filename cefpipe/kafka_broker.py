"""A real single-node Apache Kafka broker run from Maven jars, without Docker.

On first use the broker's jars are fetched from Maven Central with ``mvn`` into a
cache shared by every ``CEFPIPE_HOME``; storage is formatted for KRaft; one JVM
runs as broker and controller on 127.0.0.1 with settings fit for one machine
(replication 1, no initial rebalance delay). Everything the broker writes lives
under ``<home>/kafka``, so a fresh home is a fresh broker.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from confluent_kafka.admin import AdminClient

logger = logging.getLogger(__name__)

_START_TIMEOUT_SECS = 90.0
_STOP_TIMEOUT_SECS = 30.0


class BrokerError(RuntimeError):
    """The broker could not be fetched, started or stopped; the message says why."""


@dataclass(frozen=True)
class BrokerConfig:
    """Where one local broker keeps its files and which ports it binds."""

    home: Path
    cache_dir: Path
    version: str
    broker_port: int
    controller_port: int
    heap_mb: int = 512
    partitions: int = 8

    @property
    def root(self) -> Path:
        return self.home / "kafka"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def pid_file(self) -> Path:
        return self.root / "broker.pid"

    @property
    def lib_dir(self) -> Path:
        return self.cache_dir / f"kafka-{self.version}" / "lib"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.broker_port}"


def is_reachable(bootstrap_servers: str, timeout_secs: float = 3.0) -> bool:
    """True when a broker answers a metadata request at ``bootstrap_servers``."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0})
    try:
        admin.list_topics(timeout=timeout_secs)
    except Exception:
        return False
    return True


def cluster_id_at(bootstrap_servers: str, timeout_secs: float = 5.0) -> str | None:
    """The id of the Kafka cluster answering at ``bootstrap_servers``, if any."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0})
    try:
        description = admin.describe_cluster(request_timeout=timeout_secs).result(
            timeout=timeout_secs
        )
    except Exception:
        return None
    cluster_id = description.cluster_id
    return str(cluster_id) if cluster_id else None


class LocalBroker:
    """Start, stop and inspect one local broker described by a BrokerConfig.

    ``start`` is safe to call when the broker already runs (it returns at once);
    ``stop`` is safe to call when it does not.
    """

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        # Held so that a broker started by this process is reaped when it stops.
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Fetch jars if needed, format storage once, launch, wait until it answers."""
        if self.running_pid() is not None and is_reachable(
            self.config.bootstrap_servers
        ):
            logger.info(
                "Kafka broker already running at %s", self.config.bootstrap_servers
            )
            return
        _check_java()
        self._check_ports_free()
        self.ensure_jars()
        self._write_config()
        self._format_storage()
        process = self._launch()
        self._process = process
        self._wait_until_ready(process)
        logger.info(
            "Kafka %s broker ready at %s (pid %s, data in %s)",
            self.config.version,
            self.config.bootstrap_servers,
            process.pid,
            self.config.data_dir,
        )

    def stop(self) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after a grace period).

        Returns:
            True if a running broker was stopped, False if none was running.
        """
        pid = self.running_pid()
        if pid is None:
            self.config.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        if not _wait_for_exit(pid, _STOP_TIMEOUT_SECS):
            logger.warning("Kafka broker pid %s ignored SIGTERM; killing it", pid)
            os.kill(pid, signal.SIGKILL)
            _wait_for_exit(pid, 5.0)
        self.config.pid_file.unlink(missing_ok=True)
        if self._process is not None and self._process.pid == pid:
            self._process.wait(timeout=5.0)
            self._process = None
        logger.info("Kafka broker pid %s stopped", pid)
        return True

    def running_pid(self) -> int | None:
        """The broker's pid if its pid file names a live broker process."""
        if self._process is not None:
            self._process.poll()  # reap a broker this process started and lost
        try:
            pid = int(self.config.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _is_broker_process(pid) else None

    def ensure_jars(self) -> Path:
        """Fetch the broker's jars into the cache once; return the lib directory."""
        lib = self.config.lib_dir
        marker = lib / ".complete"
        if marker.exists():
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                "Maven ('mvn') is needed once to fetch Apache Kafka's jars; install "
                "it (Debian: apt-get install maven) or set KAFKA_BOOTSTRAP_SERVERS "
                "to a running broker"
            )
        logger.info("fetching Apache Kafka %s jars with Maven", self.config.version)
        lib.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=lib.parent) as scratch:
            pom = Path(scratch) / "pom.xml"
            template = resources.files("cefpipe.data").joinpath("kafka-broker-pom.xml")
            pom.write_text(
                template.read_text().replace("KAFKA_VERSION", self.config.version)
            )
            staged = Path(scratch) / "lib"
            result = subprocess.run(  # noqa: S603 - fixed argument list
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(pom),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={staged}",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise BrokerError(
                    f"mvn could not fetch kafka_2.13:{self.config.version}: "
                    + (result.stdout + result.stderr).strip()[-2000:]
                )
            (staged / ".complete").write_text(self.config.version)
            if lib.exists():
                shutil.rmtree(lib)
            staged.rename(lib)
        return lib

    def _check_ports_free(self) -> None:
        """Refuse to start where another process already listens.

        Otherwise this broker would fail to bind while the other one answers
        on the port, and the stack would silently use someone else's broker.
        """
        for name, port in (
            ("KAFKA_BROKER_PORT", self.config.broker_port),
            ("KAFKA_CONTROLLER_PORT", self.config.controller_port),
        ):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                # As a listener binds: a port whose old connections linger in
                # TIME_WAIT is free; one something listens on is not.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    raise BrokerError(
                        f"port {port} ({name}) is already in use on 127.0.0.1; "
                        "stop what listens there, choose another port, or set "
                        "KAFKA_BOOTSTRAP_SERVERS to use a running broker"
                    ) from None

    def _write_config(self) -> None:
        cfg = self.config
        cfg.root.mkdir(parents=True, exist_ok=True)
        cfg.log_dir.mkdir(parents=True, exist_ok=True)
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{cfg.controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{cfg.broker_port},"
                f"CONTROLLER://127.0.0.1:{cfg.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{cfg.broker_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": (
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
            ),
            "log.dirs": str(cfg.data_dir),
            "num.partitions": str(cfg.partitions),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        (cfg.root / "server.properties").write_text(
            "".join(f"{key}={value}\n" for key, value in properties.items())
        )
        (cfg.root / "log4j2.properties").write_text(
            "status = warn\n"
            "appender.file.type = RollingFile\n"
            "appender.file.name = file\n"
            f"appender.file.fileName = {cfg.log_dir / 'server.log'}\n"
            f"appender.file.filePattern = {cfg.log_dir / 'server.log.%i'}\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "appender.file.policies.type = Policies\n"
            "appender.file.policies.size.type = SizeBasedTriggeringPolicy\n"
            "appender.file.policies.size.size = 20MB\n"
            "appender.file.strategy.type = DefaultRolloverStrategy\n"
            "appender.file.strategy.max = 3\n"
            "rootLogger.level = info\n"
            "rootLogger.appenderRef.file.ref = file\n"
        )

    def _format_storage(self) -> None:
        if (self.config.data_dir / "meta.properties").exists():
            return
        cluster_id = _cluster_id()
        result = subprocess.run(  # noqa: S603 - fixed argument list
            [
                *self._java_command(),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.config.root / "server.properties"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerError(
                f"formatting Kafka storage failed: {result.stderr.strip()}"
            )

    def _launch(self) -> subprocess.Popen[bytes]:
        stdout = (self.config.log_dir / "stdout.log").open("ab")
        process = subprocess.Popen(  # noqa: S603 - fixed argument list
            [
                *self._java_command(),
                "kafka.Kafka",
                str(self.config.root / "server.properties"),
            ],
            stdout=stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        stdout.close()
        self.config.pid_file.write_text(f"{process.pid}\n")
        return process

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_SECS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.config.pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"Kafka broker exited with code {process.returncode}; "
                    f"last log lines:\n{self._log_tail()}"
                )
            if is_reachable(self.config.bootstrap_servers, timeout_secs=1.0):
                self._check_answering_broker_is_ours(process)
                return
            time.sleep(0.3)
        process.kill()
        self.config.pid_file.unlink(missing_ok=True)
        raise BrokerError(
            f"Kafka broker did not answer within {_START_TIMEOUT_SECS:.0f}s; "
            f"last log lines:\n{self._log_tail()}"
        )

    def _check_answering_broker_is_ours(self, process: subprocess.Popen[bytes]) -> None:
        """The broker that answers must be the one formatted in this home."""
        expected = self._formatted_cluster_id()
        answering = cluster_id_at(self.config.bootstrap_servers)
        if expected is not None and answering is not None and answering != expected:
            process.kill()
            self.config.pid_file.unlink(missing_ok=True)
            raise BrokerError(
                f"another Kafka cluster ({answering}) answers at "
                f"{self.config.bootstrap_servers}, not the one formatted in "
                f"{self.config.data_dir}"
            )

    def _formatted_cluster_id(self) -> str | None:
        try:
            text = (self.config.data_dir / "meta.properties").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id":
                return value.strip()
        return None

    def _java_command(self) -> list[str]:
        java = shutil.which("java") or "java"
        return [
            java,
            f"-Xmx{self.config.heap_mb}m",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.config.root / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.config.log_dir}",
            "-cp",
            str(self.config.lib_dir / "*"),
        ]

    def _log_tail(self, lines: int = 25) -> str:
        chunks = []
        for name in ("stdout.log", "server.log"):
            path = self.config.log_dir / name
            if path.exists():
                chunks.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(chunks[-lines:])


def _check_java() -> None:
    java = shutil.which("java")
    if java is None:
        raise BrokerError(
            "Java 17 or newer is needed to run the local Kafka broker; install a JDK "
            "or set KAFKA_BOOTSTRAP_SERVERS to a running broker"
        )
    result = subprocess.run(  # noqa: S603 - fixed argument list
        [java, "-version"], capture_output=True, text=True, check=False
    )
    first = (result.stderr or result.stdout).splitlines()[:1]
    version = first[0].split('"')[1] if first and '"' in first[0] else ""
    major = version.split(".")[0]
    if major.isdigit() and int(major) < 17:
        raise BrokerError(f"Kafka 4 needs Java 17 or newer; found {version}")


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding.

    Like Kafka's own, never one that starts with ``-``, which the storage tool
    would read as an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _is_broker_process(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline


def _wait_for_exit(pid: int, timeout_secs: float) -> bool:
    deadline = time.monotonic() + timeout_secs
    while time.monotonic() < deadline:
        if not _is_broker_process(pid):
            return True
        time.sleep(0.2)
    return False
