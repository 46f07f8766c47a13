"""Every setting cefpipe reads, parsed once from the environment at start-up.

This is the only module that reads ``os.environ``. Each component receives the
frozen :class:`Settings` (or its own section of it) and never looks further.
Names carry their unit (``_SECS``, ``_BYTES``, ``_MS``) so a reader of a compose
file knows what a number means without opening the code.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCAL_TENANT_ID = "cefpipe-local-tenant"
LOCAL_CLIENT_ID = "cefpipe-local-client"
LOCAL_CLIENT_SECRET = "cefpipe-local-secret"  # noqa: S105 - the emulator's own
LOCAL_DCR_IMMUTABLE_ID = "dcr-cefpipe-local"
DEFAULT_STREAM_NAME = "Custom-CefpipeCommonSecurityLog"
DEFAULT_KAFKA_VERSION = "4.0.2"
# A Kafka broker takes records up to about 1 MiB by default (message.max.bytes);
# syslog payloads, alone or packed, stay under this so their record fits.
MAX_KAFKA_RECORD_PAYLOAD_BYTES = 960 * 1024


# The emulator's certificate authority, which a local sink trusts.
CA_FILE_NAME = "ca.pem"


def certs_dir(home: Path) -> Path:
    """Where the emulator keeps its certificates under ``home``."""
    return home / "certs"


def process_environment() -> dict[str, str]:
    """A copy of this process's environment, handed to the children it starts."""
    return dict(os.environ)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Secret:
    """A string that never shows up in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    # True when KAFKA_BOOTSTRAP_SERVERS was given: an external broker is expected.
    external: bool
    version: str
    broker_port: int
    controller_port: int
    heap_mb: int
    topic_raw: str
    topic_enriched: str
    topic_dead_letter: str
    topic_partitions: int


@dataclass(frozen=True)
class IngestSettings:
    bind_host: str
    port: int
    tls_port: int
    tls_cert_file: Path | None
    tls_key_file: Path | None
    max_message_bytes: int
    max_connections: int
    max_connections_per_sender: int
    idle_timeout_secs: float
    shutdown_grace_secs: float
    udp_receive_buffer_bytes: int
    linger_ms: int
    compression: str
    queue_max_messages: int
    queue_max_kbytes: int
    partitioning: str
    record_max_bytes: int
    metrics_port: int


@dataclass(frozen=True)
class EnrichSettings:
    consumer_group: str
    batch_max_events: int
    batch_wait_secs: float
    max_in_flight_events: int
    metrics_port: int


@dataclass(frozen=True)
class SinkSettings:
    endpoint: str
    dcr_immutable_id: str
    stream_name: str
    token_scope: str
    ca_file: Path | None
    tenant_id: str
    client_id: str
    client_secret: Secret
    authority_host: str | None
    uses_local_emulator: bool
    consumer_group: str
    flush_interval_secs: float
    max_batch_bytes: int
    max_batch_raw_bytes: int
    max_batch_rows: int
    max_in_flight: int
    max_buffered_bytes: int
    max_requests_per_minute: int
    max_bytes_per_minute: int
    retry_max_secs: float
    retry_initial_backoff_secs: float
    retry_max_backoff_secs: float
    connect_timeout_secs: float
    read_timeout_secs: float
    shutdown_grace_secs: float
    metrics_port: int


@dataclass(frozen=True)
class EmulatorSettings:
    bind_host: str
    port: int
    tenant_id: str
    client_id: str
    client_secret: Secret
    dcr_immutable_id: str
    stream_name: str
    faults: str
    token_lifetime_secs: int
    cert_hostnames: tuple[str, ...]
    metrics_port: int
    # Where clients reach the emulator (differs from the bind address in compose).
    url: str


@dataclass(frozen=True)
class Settings:
    home: Path
    cache_dir: Path
    instance: str
    log_level: str
    log_format: str
    metrics_bind_host: str
    kafka: KafkaSettings
    ingest: IngestSettings
    enrich: EnrichSettings
    sink: SinkSettings
    emulator: EmulatorSettings

    @property
    def certs_dir(self) -> Path:
        return certs_dir(self.home)

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def emulator_db_file(self) -> Path:
        return self.home / "emulator" / "sentinel.db"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Parse every setting; raise SettingsError naming the first bad one."""
        return _load(_Env(os.environ if env is None else env))

    @staticmethod
    def variable_names() -> frozenset[str]:
        """Every environment variable cefpipe reads (for docs and config checks)."""
        env = _Env({})
        _load(env)
        return env.names


class _Recording(Mapping[str, str]):
    """A read-only view of the environment that remembers which names were read."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.seen: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.seen.add(name)
        return self._env[name]

    def get(self, name: str, default: Any = None) -> Any:
        self.seen.add(name)
        return self._env.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)


class _Env:
    """Typed accessors over one environment mapping, with clear errors."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = _Recording(env)

    @property
    def names(self) -> frozenset[str]:
        """Every variable name this loader has looked up so far."""
        return frozenset(self._env.seen)

    def has(self, name: str) -> bool:
        return bool(self._env.get(name, "").strip())

    def text(self, name: str, default: str) -> str:
        value = self._env.get(name, "").strip()
        return value or default

    def optional(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def path(self, name: str, default: Path) -> Path:
        return Path(self.text(name, str(default))).expanduser()

    def optional_path(self, name: str) -> Path | None:
        value = self.optional(name)
        return Path(value).expanduser() if value else None

    def integer(
        self, name: str, default: int, minimum: int = 0, maximum: int | None = None
    ) -> int:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise SettingsError(f"{name} must be at most {maximum}, got {value}")
        return value

    def number(self, name: str, default: float, minimum: float = 0.0) -> float:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise SettingsError(f"{name} must be a finite number, got {raw!r}")
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, got {value}")
        return value

    def port(self, name: str, default: int) -> int:
        value = self.integer(name, default)
        if value > 65535:
            raise SettingsError(f"{name} must be a TCP/UDP port (0-65535), got {value}")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in allowed:
            raise SettingsError(
                f"{name} must be one of {', '.join(allowed)}, got {value!r}"
            )
        return value


def _load(env: _Env) -> Settings:
    home = env.path("CEFPIPE_HOME", Path.home() / ".cefpipe")
    emulator = _load_emulator(env)
    return Settings(
        home=home,
        cache_dir=env.path("CEFPIPE_CACHE_DIR", Path.home() / ".cache" / "cefpipe"),
        instance=env.text("CEFPIPE_INSTANCE", socket.gethostname()),
        log_level=env.choice(
            "LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")
        ).upper(),
        log_format=env.choice("LOG_FORMAT", "auto", ("auto", "json", "text")),
        metrics_bind_host=env.text("METRICS_BIND_HOST", "127.0.0.1"),
        kafka=_load_kafka(env),
        ingest=_load_ingest(env),
        enrich=EnrichSettings(
            consumer_group=env.text("ENRICH_CONSUMER_GROUP", "cefpipe-enrich"),
            batch_max_events=env.integer("ENRICH_BATCH_MAX_EVENTS", 2000, minimum=1),
            batch_wait_secs=env.number("ENRICH_BATCH_WAIT_SECS", 0.05),
            max_in_flight_events=env.integer(
                "ENRICH_MAX_IN_FLIGHT_EVENTS", 20_000, minimum=1
            ),
            metrics_port=env.port("ENRICH_METRICS_PORT", 9102),
        ),
        sink=_load_sink(env, home, emulator),
        emulator=emulator,
    )


def _load_kafka(env: _Env) -> KafkaSettings:
    broker_port = env.port("KAFKA_BROKER_PORT", 9092)
    return KafkaSettings(
        bootstrap_servers=env.text(
            "KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{broker_port}"
        ),
        external=env.has("KAFKA_BOOTSTRAP_SERVERS"),
        version=env.text("CEFPIPE_KAFKA_VERSION", DEFAULT_KAFKA_VERSION),
        broker_port=broker_port,
        controller_port=env.port("KAFKA_CONTROLLER_PORT", 9093),
        heap_mb=env.integer("KAFKA_HEAP_MB", 512, minimum=128),
        topic_raw=env.text("TOPIC_RAW", "cefpipe-raw"),
        topic_enriched=env.text("TOPIC_ENRICHED", "cefpipe-enriched"),
        topic_dead_letter=env.text("TOPIC_DEAD_LETTER", "cefpipe-dead-letter"),
        topic_partitions=env.integer("TOPIC_PARTITIONS", 8, minimum=1),
    )


def _load_ingest(env: _Env) -> IngestSettings:
    cert = env.optional_path("SYSLOG_TLS_CERT_FILE")
    key = env.optional_path("SYSLOG_TLS_KEY_FILE")
    if (cert is None) != (key is None):
        raise SettingsError("SYSLOG_TLS_CERT_FILE and SYSLOG_TLS_KEY_FILE go together")
    return IngestSettings(
        bind_host=env.text("SYSLOG_BIND_HOST", "127.0.0.1"),
        port=env.port("SYSLOG_PORT", 5514),
        tls_port=env.port("SYSLOG_TLS_PORT", 6514),
        tls_cert_file=cert,
        tls_key_file=key,
        max_message_bytes=env.integer(
            "SYSLOG_MAX_MESSAGE_BYTES",
            256 * 1024,
            minimum=64,
            maximum=MAX_KAFKA_RECORD_PAYLOAD_BYTES,
        ),
        max_connections=env.integer("SYSLOG_MAX_CONNECTIONS", 4000, minimum=1),
        max_connections_per_sender=env.integer(
            "SYSLOG_MAX_CONNECTIONS_PER_SENDER", 256, minimum=1
        ),
        idle_timeout_secs=env.number("SYSLOG_IDLE_TIMEOUT_SECS", 600.0, minimum=1.0),
        shutdown_grace_secs=env.number("SYSLOG_SHUTDOWN_GRACE_SECS", 5.0),
        udp_receive_buffer_bytes=env.integer(
            "SYSLOG_UDP_RECEIVE_BUFFER_BYTES", 16 * 1024 * 1024, minimum=65536
        ),
        linger_ms=env.integer("INGEST_LINGER_MS", 20),
        compression=env.choice("INGEST_COMPRESSION", "lz4", ("lz4", "none")),
        queue_max_messages=env.integer("INGEST_QUEUE_MAX_MESSAGES", 200_000, minimum=1),
        queue_max_kbytes=env.integer(
            "INGEST_QUEUE_MAX_KBYTES", 256 * 1024, minimum=1024
        ),
        partitioning=env.choice("INGEST_PARTITIONING", "sender", ("sender", "spread")),
        record_max_bytes=env.integer(
            "INGEST_RECORD_MAX_BYTES",
            256 * 1024,
            maximum=MAX_KAFKA_RECORD_PAYLOAD_BYTES,
        ),
        metrics_port=env.port("INGEST_METRICS_PORT", 9101),
    )


def _load_sink(env: _Env, home: Path, emulator: EmulatorSettings) -> SinkSettings:
    endpoint = env.optional("SENTINEL_ENDPOINT")
    local = endpoint is None
    if local:
        endpoint = emulator.url
    assert endpoint is not None
    if not endpoint.startswith("https://"):
        raise SettingsError(
            f"SENTINEL_ENDPOINT must be an https:// URL, got {endpoint!r}"
        )

    ca_file = env.optional_path("SENTINEL_CA_FILE")
    if ca_file is None and local:
        ca_file = certs_dir(home) / CA_FILE_NAME
    authority = env.optional("AZURE_AUTHORITY_HOST")
    if authority is None and local:
        authority = emulator.url

    secret = env.optional("AZURE_CLIENT_SECRET")
    return SinkSettings(
        endpoint=endpoint.rstrip("/"),
        dcr_immutable_id=env.text(
            "SENTINEL_DCR_IMMUTABLE_ID", LOCAL_DCR_IMMUTABLE_ID if local else ""
        )
        or _missing("SENTINEL_DCR_IMMUTABLE_ID"),
        stream_name=env.text("SENTINEL_STREAM_NAME", DEFAULT_STREAM_NAME),
        token_scope=env.text(
            "SENTINEL_TOKEN_SCOPE", "https://monitor.azure.com/.default"
        ),
        ca_file=ca_file,
        tenant_id=env.text("AZURE_TENANT_ID", LOCAL_TENANT_ID if local else ""),
        client_id=env.text("AZURE_CLIENT_ID", LOCAL_CLIENT_ID if local else ""),
        client_secret=Secret(secret or (LOCAL_CLIENT_SECRET if local else "")),
        authority_host=authority,
        uses_local_emulator=local,
        consumer_group=env.text("SINK_CONSUMER_GROUP", "cefpipe-sink"),
        flush_interval_secs=env.number("SINK_FLUSH_INTERVAL_SECS", 5.0, minimum=0.01),
        max_batch_bytes=env.integer("SINK_MAX_BATCH_BYTES", 1_000_000, minimum=1024),
        max_batch_raw_bytes=env.integer(
            "SINK_MAX_BATCH_RAW_BYTES", 48 * 1024 * 1024, minimum=1024
        ),
        max_batch_rows=env.integer("SINK_MAX_BATCH_ROWS", 100_000, minimum=1),
        max_in_flight=env.integer("SINK_MAX_IN_FLIGHT", 4, minimum=1),
        max_buffered_bytes=env.integer(
            "SINK_MAX_BUFFERED_BYTES", 128 * 1024 * 1024, minimum=1024
        ),
        max_requests_per_minute=env.integer(
            "SINK_MAX_REQUESTS_PER_MINUTE", 12_000, minimum=1
        ),
        max_bytes_per_minute=env.integer(
            "SINK_MAX_BYTES_PER_MINUTE", 2_000_000_000, minimum=1024
        ),
        retry_max_secs=env.number("SINK_RETRY_MAX_SECS", 900.0),
        retry_initial_backoff_secs=env.number("SINK_RETRY_INITIAL_BACKOFF_SECS", 1.0),
        retry_max_backoff_secs=env.number("SINK_RETRY_MAX_BACKOFF_SECS", 60.0),
        connect_timeout_secs=env.number("SINK_CONNECT_TIMEOUT_SECS", 10.0, minimum=0.1),
        read_timeout_secs=env.number("SINK_READ_TIMEOUT_SECS", 60.0, minimum=0.1),
        shutdown_grace_secs=env.number("SINK_SHUTDOWN_GRACE_SECS", 30.0),
        metrics_port=env.port("SINK_METRICS_PORT", 9103),
    )


def _load_emulator(env: _Env) -> EmulatorSettings:
    port = env.port("EMULATOR_PORT", 8443)
    return EmulatorSettings(
        bind_host=env.text("EMULATOR_BIND_HOST", "127.0.0.1"),
        port=port,
        tenant_id=env.text("EMULATOR_TENANT_ID", LOCAL_TENANT_ID),
        client_id=env.text("EMULATOR_CLIENT_ID", LOCAL_CLIENT_ID),
        client_secret=Secret(env.text("EMULATOR_CLIENT_SECRET", LOCAL_CLIENT_SECRET)),
        dcr_immutable_id=env.text("EMULATOR_DCR_IMMUTABLE_ID", LOCAL_DCR_IMMUTABLE_ID),
        stream_name=env.text("EMULATOR_STREAM_NAME", DEFAULT_STREAM_NAME),
        faults=env.text("EMULATOR_FAULTS", ""),
        token_lifetime_secs=env.integer(
            "EMULATOR_TOKEN_LIFETIME_SECS", 3600, minimum=1
        ),
        cert_hostnames=tuple(
            name.strip()
            for name in env.text(
                "EMULATOR_CERT_HOSTNAMES", "localhost,127.0.0.1,::1,emulator"
            ).split(",")
            if name.strip()
        ),
        metrics_port=env.port("EMULATOR_METRICS_PORT", 9104),
        url=env.text("EMULATOR_URL", f"https://127.0.0.1:{port}").rstrip("/"),
    )


def _missing(name: str) -> str:
    raise SettingsError(f"{name} is required when SENTINEL_ENDPOINT is set")
