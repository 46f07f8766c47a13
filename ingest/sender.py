"""Who sent a message, as the listener saw it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Sender:
    """A sender's address and the transport it used (tcp, udp or tls)."""

    host: str
    port: int
    transport: str

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @classmethod
    def from_peername(cls, peername: Any, transport: str) -> Sender:
        if isinstance(peername, tuple) and len(peername) >= 2:
            return cls(str(peername[0]), int(peername[1]), transport)
        return cls(str(peername), 0, transport)
