"""``cefpipe emulator``: serve the local Sentinel stand-in until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal

from cefpipe.binding import BindError
from cefpipe.logconfig import configure_logging
from cefpipe.metrics import Health, MetricsServer
from cefpipe.settings import Settings
from emulator.faults import FaultSpecError
from emulator.server import Emulator

logger = logging.getLogger(__name__)


def run(settings: Settings) -> int:
    """Serve HTTPS and metrics until SIGINT or SIGTERM.

    Returns:
        0 after a clean stop, 1 if the server could not start (port taken,
        home not writable), 2 if ``EMULATOR_FAULTS`` is malformed.
    """
    configure_logging(
        "emulator", settings.instance, settings.log_level, settings.log_format
    )
    try:
        emulator = Emulator(settings)
    except FaultSpecError as exc:
        logger.error("EMULATOR_FAULTS is invalid: %s", exc)
        return 2
    try:
        asyncio.run(_serve(settings, emulator))
    except (BindError, OSError) as exc:
        logger.error("emulator could not start: %s", exc)
        return 1
    return 0


async def _serve(settings: Settings, emulator: Emulator) -> None:
    """1. listen, 2. publish health and metrics, 3. wait for a signal, 4. stop."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)

    async with emulator:
        faults = ", ".join(fault["kind"] for fault in emulator.faults())
        logger.info("faults installed at start: %s", faults or "none")
        health = Health()
        health.register("https", lambda: (True, emulator.url))
        metrics = MetricsServer(
            settings.metrics_bind_host,
            settings.emulator.metrics_port,
            health,
            port_setting="EMULATOR_METRICS_PORT",
        ).start()
        try:
            await stopping.wait()
            logger.info("emulator stopping")
        finally:
            metrics.stop()
    logger.info("emulator stopped")
