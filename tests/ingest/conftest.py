"""Listeners on free loopback ports, publishing to the test's own topics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from cefpipe.settings import Settings
from ingest.listener import SyslogListener
from ingest.main import _tls_context
from ingest.publisher import RawPublisher
from tests.conftest import PipelineTopics
from tests.ingest.helpers import self_signed

StartListener = Callable[..., Awaitable[SyslogListener]]


@pytest.fixture
async def start_listener(
    kafka_bootstrap: str, pipeline_topics: PipelineTopics, tmp_path: Path
) -> AsyncIterator[StartListener]:
    """Start a listener (TCP, UDP and TLS) with settings overridden by ``env``.

    Each is stopped at the end of the test, and must then deliver everything.
    """
    cert, key = self_signed(tmp_path)
    started: list[tuple[SyslogListener, RawPublisher, asyncio.Task[None]]] = []

    async def start(**env: str) -> SyslogListener:
        settings = Settings.from_env(
            {
                "CEFPIPE_HOME": str(tmp_path),
                "CEFPIPE_INSTANCE": "ingest-under-test",
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "SYSLOG_PORT": "0",
                "SYSLOG_TLS_PORT": "0",
                "SYSLOG_TLS_CERT_FILE": str(cert),
                "SYSLOG_TLS_KEY_FILE": str(key),
                "SYSLOG_MAX_MESSAGE_BYTES": "2048",
                "INGEST_RECORD_MAX_BYTES": "4096",
                **pipeline_topics.env(),
                **env,
            }
        )
        publisher = RawPublisher(settings)
        listener = SyslogListener(
            settings.ingest, publisher, settings.instance, _tls_context(settings.ingest)
        )
        await listener.start()
        reports = asyncio.create_task(publisher.run_delivery_reports())
        started.append((listener, publisher, reports))
        return listener

    yield start
    for listener, publisher, reports in started:
        await listener.stop()
        reports.cancel()
        assert publisher.close(30) == 0


@pytest.fixture
async def listener(start_listener: StartListener) -> SyslogListener:
    """A listener with the test settings, for tests that need only one."""
    return await start_listener()
