"""Binding a configured port, with an error that names the setting to change."""

from __future__ import annotations

import os
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class BindError(Exception):
    """A socket could not be bound; the message names the variable and address."""

    def __init__(
        self, variable: str, purpose: str, host: str, port: int, cause: OSError
    ) -> None:
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        # asyncio wraps the system's words in its own; keep only those.
        reason = os.strerror(cause.errno) if cause.errno else str(cause)
        super().__init__(
            f"cannot listen for {purpose} on {address} ({variable}={port}): {reason}"
        )
        self.variable = variable


async def bind(
    opening: Awaitable[T], variable: str, purpose: str, host: str, port: int
) -> T:
    """Await ``opening`` (a server or endpoint being created) naming its setting.

    Raises:
        BindError: the address is taken, not local, or not permitted.
    """
    try:
        return await opening
    except OSError as exc:
        raise BindError(variable, purpose, host, port, exc) from exc
