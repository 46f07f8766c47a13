"""Route librdkafka's own log lines into the process's logging.

Without this, confluent-kafka clients print raw ``%3|…|FAIL|…`` lines to
stderr, outside the JSON log stream and without component or instance.
"""

from __future__ import annotations

import logging
from typing import Any

LIBRDKAFKA_LOGGER = logging.getLogger("librdkafka")


def with_logger(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` plus the setting that sends librdkafka's logs to Python logging.

    The lines are then served on the client's poll/consume calls, as records of
    the ``librdkafka`` logger.
    """
    return {**config, "logger": LIBRDKAFKA_LOGGER}
