"""The emulator as one HTTPS server: Entra ID, Logs Ingestion and an admin API.

``cefpipe emulator`` runs it (see :mod:`emulator.main`); tests run it in-process
on an ephemeral port with :class:`EmulatorThread`, which needs no event loop of
its own from the caller and suits sync and async tests alike::

    settings = Settings.from_env({"CEFPIPE_HOME": str(tmp_path), "EMULATOR_PORT": "0"})
    with EmulatorThread(settings) as emu:
        emu.url          # "https://127.0.0.1:<port>": endpoint and authority
        emu.ca_file      # the CA to pass as connection_verify
        emu.set_faults([{"kind": "status", "status": 429, "retry_after": "1"}])
        emu.requests()   # the request log, oldest first
        emu.rows()       # stored rows, newest first, non-null columns only
        emu.reset()      # clear rows, request log and faults
        emu.expire_tokens()  # tokens issued so far now get 401 TokenExpired;
                             # azure-identity's cache still holds them, so a
                             # client needs a new credential to recover

A sink under test reaches it with ``dataclasses.replace(settings.sink,
endpoint=emu.url, authority_host=emu.url, ca_file=emu.ca_file)``.

Inside a running event loop, ``async with Emulator(settings) as emu:`` offers
the same attributes and methods.

The admin API, on the same port and without authentication (loopback only):
``GET/POST/DELETE /emulator/faults`` (POST ``{"faults": [...]}`` replaces the
list), ``GET /emulator/requests``, ``GET /emulator/rows?limit=N`` (default
1000, newest first), ``POST /emulator/reset`` and ``POST /emulator/tokens/expire``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import orjson
from aiohttp import web

from cefpipe.settings import Settings
from emulator.certs import TlsFiles, ensure_tls_files
from emulator.entra import EntraEndpoints, TokenIssuer
from emulator.faults import (
    Fault,
    FaultBoard,
    FaultSpecError,
    faults_from_json,
    parse_fault_specs,
)
from emulator.ingestion import IngestionEndpoint, RequestLog
from emulator.store import Store

logger = logging.getLogger(__name__)

DEFAULT_ROWS_LIMIT: Final = 1000
_START_TIMEOUT_SECS: Final = 30.0
# How long a clean stop waits for uploads in flight (a delay fault among them).
_SHUTDOWN_TIMEOUT_SECS: Final = 5.0

FaultInput = Fault | Mapping[str, object]


@dataclass
class _Parts:
    """What the handlers share."""

    tokens: TokenIssuer
    faults: FaultBoard
    log: RequestLog
    store: Store


class Emulator:
    """The running server, bound to the current event loop.

    ``start`` creates the certificates (if needed) and the store, then listens;
    ``stop`` is safe to call twice. Accessors may be called from any thread.
    """

    def __init__(
        self, settings: Settings, faults: Sequence[Fault] | None = None
    ) -> None:
        """Args:
            settings: where to listen and keep files, and whom to trust.
            faults: faults to start with; by default those of the
                ``EMULATOR_FAULTS`` setting.

        Raises:
            FaultSpecError: the setting's fault list is malformed.
        """
        self._settings = settings
        self._initial_faults = (
            parse_fault_specs(settings.emulator.faults) if faults is None else faults
        )
        self._parts: _Parts | None = None
        self._runner: web.AppRunner | None = None
        self.tls: TlsFiles = TlsFiles.in_dir(settings.certs_dir)
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://{_url_host(self._settings.emulator.bind_host)}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.tls.ca_cert

    async def start(self) -> None:
        settings = self._settings
        self.tls = ensure_tls_files(
            settings.certs_dir, settings.emulator.cert_hostnames
        )
        parts = _Parts(
            tokens=TokenIssuer(settings.emulator.token_lifetime_secs),
            faults=FaultBoard(),
            log=RequestLog(),
            store=Store(settings.emulator_db_file),
        )
        parts.faults.replace(self._initial_faults)
        self._parts = parts

        runner = web.AppRunner(
            build_app(settings, parts),
            access_log=None,
            shutdown_timeout=_SHUTDOWN_TIMEOUT_SECS,
        )
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(
            runner,
            settings.emulator.bind_host,
            settings.emulator.port,
            ssl_context=server_tls_context(self.tls),
        )
        await site.start()
        self.port = int(runner.addresses[0][1])
        logger.info("emulator listening on %s (trust %s)", self.url, self.ca_file)

    async def stop(self) -> None:
        if self._runner is not None:
            await _stop_runner(self._runner)
            self._runner = None
        if self._parts is not None:
            self._parts.store.close()
            self._parts = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def set_faults(self, faults: Sequence[FaultInput]) -> None:
        """Replace the installed faults (Fault objects or admin-API dicts)."""
        self._running().faults.replace(_as_faults(faults))

    def faults(self) -> list[dict[str, Any]]:
        return self._running().faults.snapshot()

    def requests(self) -> list[dict[str, Any]]:
        return self._running().log.entries()

    def rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self._running().store.rows(limit)

    def reset(self) -> None:
        _reset(self._running())

    def expire_tokens(self) -> None:
        """Expire every token issued so far; the next upload with one gets 401."""
        self._running().tokens.expire_all()

    def _running(self) -> _Parts:
        if self._parts is None:
            raise RuntimeError("the emulator is not running")
        return self._parts


class EmulatorThread:
    """An :class:`Emulator` on its own event loop in a daemon thread.

    Use as a context manager; the server is listening when ``__enter__``
    returns and fully stopped when ``__exit__`` returns.
    """

    def __init__(
        self, settings: Settings, faults: Sequence[FaultInput] | None = None
    ) -> None:
        initial = None if faults is None else _as_faults(faults)
        self.emulator = Emulator(settings, initial)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="emulator", daemon=True
        )

    @property
    def url(self) -> str:
        return self.emulator.url

    @property
    def ca_file(self) -> Path:
        return self.emulator.ca_file

    def start(self) -> EmulatorThread:
        self._thread.start()
        try:
            self._call(self.emulator.start())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._call(self.emulator.stop())
        finally:
            self._close_loop()

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def set_faults(self, faults: Sequence[FaultInput]) -> None:
        self.emulator.set_faults(faults)

    def faults(self) -> list[dict[str, Any]]:
        return self.emulator.faults()

    def requests(self) -> list[dict[str, Any]]:
        return self.emulator.requests()

    def rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self.emulator.rows(limit)

    def reset(self) -> None:
        self.emulator.reset()

    def expire_tokens(self) -> None:
        self.emulator.expire_tokens()

    def _call(self, coroutine: Any) -> None:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        future.result(timeout=_START_TIMEOUT_SECS)

    def _close_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


async def _stop_runner(runner: web.AppRunner) -> None:
    """Stop serving, then abort connections still closing.

    A TLS connection closes with a goodbye exchange that may outlive the event
    loop; aborting the leftovers releases their sockets before the loop ends.
    """
    connections = runner.server.connections if runner.server is not None else []
    transports = [conn.transport for conn in connections if conn.transport]
    await runner.cleanup()
    for transport in transports:
        transport.abort()
    await asyncio.sleep(0)  # lets each aborted transport close its socket


def build_app(settings: Settings, parts: _Parts) -> web.Application:
    """The aiohttp app with every route; bodies are read raw, never inflated."""
    app = web.Application(handler_args={"auto_decompress": False})
    app.add_routes(EntraEndpoints(settings.emulator, parts.tokens).routes())
    app.add_routes(
        IngestionEndpoint(
            settings.emulator, parts.tokens, parts.faults, parts.store, parts.log
        ).routes()
    )
    app.add_routes(_AdminEndpoints(parts).routes())
    return app


def server_tls_context(files: TlsFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.server_cert, files.server_key)
    return context


class _AdminEndpoints:
    """Test controls: faults, the request log, stored rows and a reset."""

    def __init__(self, parts: _Parts) -> None:
        self._parts = parts

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/emulator/faults", self.get_faults),
            web.post("/emulator/faults", self.replace_faults),
            web.delete("/emulator/faults", self.clear_faults),
            web.get("/emulator/requests", self.get_requests),
            web.get("/emulator/rows", self.get_rows),
            web.post("/emulator/reset", self.reset),
            web.post("/emulator/tokens/expire", self.expire_tokens),
        ]

    async def get_faults(self, request: web.Request) -> web.Response:
        return _json({"faults": self._parts.faults.snapshot()})

    async def replace_faults(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            if not isinstance(body, dict) or "faults" not in body:
                raise FaultSpecError('the body must be {"faults": [...]}')
            faults = faults_from_json(body["faults"])
        except (orjson.JSONDecodeError, FaultSpecError) as exc:
            return _admin_error("InvalidFaultSpec", str(exc))
        self._parts.faults.replace(faults)
        logger.info("faults installed: %s", _describe(faults))
        return _json({"faults": self._parts.faults.snapshot()})

    async def clear_faults(self, request: web.Request) -> web.Response:
        self._parts.faults.clear()
        logger.info("faults cleared")
        return _json({"faults": []})

    async def get_requests(self, request: web.Request) -> web.Response:
        return _json({"requests": self._parts.log.entries()})

    async def get_rows(self, request: web.Request) -> web.Response:
        raw = request.query.get("limit", str(DEFAULT_ROWS_LIMIT))
        if not raw.isdigit():
            return _admin_error(
                "InvalidLimit", f"limit must be an integer >= 0: {raw!r}"
            )
        rows = await asyncio.to_thread(self._parts.store.rows, int(raw))
        return _json({"rows": rows})

    async def reset(self, request: web.Request) -> web.Response:
        await asyncio.to_thread(_reset, self._parts)
        return web.Response(status=204)

    async def expire_tokens(self, request: web.Request) -> web.Response:
        self._parts.tokens.expire_all()
        logger.info("all issued tokens expired")
        return web.Response(status=204)


def _reset(parts: _Parts) -> None:
    parts.store.clear()
    parts.log.clear()
    parts.faults.clear()
    logger.info("emulator reset: rows, request log and faults cleared")


def _as_faults(faults: Sequence[FaultInput]) -> list[Fault]:
    return [
        fault if isinstance(fault, Fault) else Fault.from_mapping(fault)
        for fault in faults
    ]


def _describe(faults: Sequence[Fault]) -> str:
    return ", ".join(fault.describe() for fault in faults) or "none"


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json"
    )


def _admin_error(code: str, message: str) -> web.Response:
    return _json({"error": {"code": code, "message": message}}, status=400)


def _url_host(bind_host: str) -> str:
    """The host part of our URL: wildcard binds are reached over loopback."""
    if bind_host in ("", "0.0.0.0"):  # noqa: S104 - comparing, not binding
        return "127.0.0.1"
    if bind_host == "::":
        return "[::1]"
    try:
        address = ipaddress.ip_address(bind_host)
    except ValueError:
        return bind_host
    return f"[{address}]" if address.version == 6 else str(address)
