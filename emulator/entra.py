"""The slice of Entra ID that ``ClientSecretCredential`` needs, served locally.

The sync credential (MSAL) first reads the tenant's OpenID configuration, then
posts a client-credentials grant to the token endpoint; the async credential
only posts the grant. Tokens are opaque random strings kept in memory with
their audience and expiry, so the ingestion endpoint can refuse an unknown,
expired or misdirected token the way the real service would.

Refusals follow the real service's shape: an OAuth error name plus an
``AADSTS`` code and sentence in ``error_description``, which azure-identity
turns into ``ClientAuthenticationError``.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from aiohttp import web
from prometheus_client import Counter

from cefpipe.settings import EmulatorSettings

logger = logging.getLogger(__name__)

# The resource a Logs Ingestion token must be issued for (public cloud).
MONITOR_AUDIENCE: Final = "https://monitor.azure.com"

_DEFAULT_SCOPE_SUFFIX: Final = "/.default"
# OpenID scopes MSAL may add; they name no resource.
_RESERVED_SCOPES: Final = frozenset({"openid", "profile", "offline_access"})
_TENANT_ALIASES: Final = frozenset({"common", "organizations"})
_REMEMBER_EXPIRED_SECS: Final = 24 * 3600

TOKEN_REQUESTS = Counter(
    "cefpipe_emulator_token_requests_total",
    "Token requests answered by the emulator's Entra ID, by outcome.",
    ["reason"],
)


class TokenVerdict(Enum):
    """What the ingestion endpoint should make of a presented bearer token."""

    VALID = "valid"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    WRONG_AUDIENCE = "wrong_audience"


@dataclass(frozen=True)
class _Grant:
    audience: str
    expires_at: float


class TokenIssuer:
    """Issues opaque bearer tokens and remembers what each one is good for.

    A token is remembered for a day after it expires, so a late client hears
    "expired" rather than "unknown"; older ones are forgotten when new tokens
    are issued. Safe to call from any thread.
    """

    def __init__(
        self, lifetime_secs: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.lifetime_secs = lifetime_secs
        self._clock = clock
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    def issue(self, audience: str) -> str:
        """A new token for ``audience``, valid for ``lifetime_secs``."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            self._forget_long_expired(now)
            self._grants[token] = _Grant(_normalise(audience), now + self.lifetime_secs)
        return token

    def verdict(self, token: str, audience: str) -> TokenVerdict:
        """Whether ``token`` may be used against a service of ``audience``."""
        with self._lock:
            grant = self._grants.get(token)
            now = self._clock()
        if grant is None:
            return TokenVerdict.UNKNOWN
        if now >= grant.expires_at:
            return TokenVerdict.EXPIRED
        if grant.audience != _normalise(audience):
            return TokenVerdict.WRONG_AUDIENCE
        return TokenVerdict.VALID

    def expire_all(self) -> None:
        """Make every token issued so far expired, to test a client's refresh."""
        with self._lock:
            now = self._clock()
            for token, grant in self._grants.items():
                self._grants[token] = _Grant(grant.audience, min(grant.expires_at, now))

    def _forget_long_expired(self, now: float) -> None:
        horizon = now - _REMEMBER_EXPIRED_SECS
        for token in [t for t, g in self._grants.items() if g.expires_at <= horizon]:
            del self._grants[token]


def audience_of_scope(scope: str) -> str | None:
    """The resource named by a client-credentials scope, or None if it names none.

    ``https://monitor.azure.com/.default`` and the double-slash form some
    plugins send (``https://monitor.azure.com//.default``) both name the
    Azure Monitor resource.
    """
    named = [part for part in scope.split() if part not in _RESERVED_SCOPES]
    if len(named) != 1 or not named[0].endswith(_DEFAULT_SCOPE_SUFFIX):
        return None
    return _normalise(named[0].removesuffix(_DEFAULT_SCOPE_SUFFIX)) or None


def _normalise(audience: str) -> str:
    return audience.rstrip("/")


class _TokenRequestError(Exception):
    """A token request the real service would refuse, with its OAuth answer."""

    def __init__(self, status: int, error: str, aadsts: int, description: str):
        super().__init__(description)
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description


class EntraEndpoints:
    """HTTP handlers for tenant discovery, the token endpoint and MSAL's
    instance discovery, answering only for the configured tenant and client."""

    def __init__(self, settings: EmulatorSettings, issuer: TokenIssuer) -> None:
        self._settings = settings
        self._issuer = issuer

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                self.openid_configuration,
            ),
            web.post("/{tenant}/oauth2/v2.0/token", self.token),
            web.get("/common/discovery/instance", self.instance_discovery),
        ]

    async def openid_configuration(self, request: web.Request) -> web.Response:
        """The tenant's OpenID document, with every URL pointing back at us."""
        tenant = request.match_info["tenant"]
        if tenant != self._settings.tenant_id and tenant not in _TENANT_ALIASES:
            return _oauth_error(request, _unknown_tenant(tenant, "invalid_tenant"))
        return web.json_response(_openid_document(_base_url(request), tenant))

    async def token(self, request: web.Request) -> web.Response:
        """Grant a client-credentials token, or refuse like Entra ID would."""
        # TODO: only a secret in the form body is accepted; HTTP Basic client
        # authentication and certificate assertions are not served.
        form = await request.post()
        fields = {key: str(value) for key, value in form.items()}
        try:
            audience = self._check_grant(request.match_info["tenant"], fields)
        except _TokenRequestError as refusal:
            TOKEN_REQUESTS.labels(reason=refusal.error).inc()
            logger.warning("token refused: %s AADSTS%s", refusal.error, refusal.aadsts)
            return _oauth_error(request, refusal)

        token = self._issuer.issue(audience)
        TOKEN_REQUESTS.labels(reason="issued").inc()
        logger.info(
            "token issued client_id=%s audience=%s expires_in=%d",
            fields.get("client_id"),
            audience,
            self._issuer.lifetime_secs,
        )
        return _no_store(
            web.json_response(
                {
                    "token_type": "Bearer",
                    "expires_in": self._issuer.lifetime_secs,
                    "ext_expires_in": self._issuer.lifetime_secs,
                    "access_token": token,
                }
            )
        )

    async def instance_discovery(self, request: web.Request) -> web.Response:
        """Vouch for ourselves, should a client forget to disable discovery."""
        base = _base_url(request)
        tenant = self._settings.tenant_id
        host = request.host
        return web.json_response(
            {
                "tenant_discovery_endpoint": (
                    f"{base}/{tenant}/v2.0/.well-known/openid-configuration"
                ),
                "api-version": "1.1",
                "metadata": [
                    {
                        "preferred_network": host,
                        "preferred_cache": host,
                        "aliases": [host],
                    }
                ],
            }
        )

    def _check_grant(self, tenant: str, fields: dict[str, str]) -> str:
        """The audience to issue a token for; raises _TokenRequestError otherwise."""
        if tenant != self._settings.tenant_id:
            raise _unknown_tenant(tenant)
        if fields.get("grant_type") != "client_credentials":
            raise _TokenRequestError(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type; only "
                "client_credentials is served here.",
            )
        client_id = fields.get("client_id", "")
        if client_id != self._settings.client_id:
            raise _TokenRequestError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the "
                f"directory '{tenant}'.",
            )
        self._check_secret(fields.get("client_secret"))
        audience = audience_of_scope(fields.get("scope", ""))
        if audience is None:
            raise _TokenRequestError(
                400,
                "invalid_scope",
                1002012,
                "The provided value for scope is not valid. Client credential "
                "flows must have a scope value with /.default suffixed to the "
                "resource identifier (application ID URI).",
            )
        return audience

    def _check_secret(self, presented: str | None) -> None:
        if presented is None:
            raise _TokenRequestError(
                401,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for "
                "the 'client_credentials' grant type.",
            )
        expected = self._settings.client_secret.reveal()
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            raise _TokenRequestError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Check that the value sent is the "
                "secret's value and not its identifier.",
            )


def _unknown_tenant(tenant: str, error: str = "invalid_request") -> _TokenRequestError:
    return _TokenRequestError(
        400,
        error,
        90002,
        f"Tenant '{tenant}' not found. Check the tenant identifier.",
    )


def _openid_document(base: str, tenant: str) -> dict[str, object]:
    return {
        "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
        "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{base}/{tenant}/oauth2/v2.0/logout",
        "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
        "issuer": f"{base}/{tenant}/v2.0",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "response_types_supported": ["code", "id_token", "code id_token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "request_uri_parameter_supported": False,
        "tenant_region_scope": None,
    }


def _base_url(request: web.Request) -> str:
    """Our own URL as the client addressed it, so redirects stay on loopback."""
    return f"{request.scheme}://{request.host}"


def _oauth_error(request: web.Request, refusal: _TokenRequestError) -> web.Response:
    trace_id = str(uuid.uuid4())
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    timestamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    description = (
        f"AADSTS{refusal.aadsts}: {refusal.description}\r\n"
        f"Trace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\n"
        f"Timestamp: {timestamp}"
    )
    response = web.json_response(
        {
            "error": refusal.error,
            "error_description": description,
            "error_codes": [refusal.aadsts],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
        },
        status=refusal.status,
        headers={"x-ms-request-id": trace_id},
    )
    return _no_store(response)


def _no_store(response: web.Response) -> web.Response:
    response.headers["Cache-Control"] = "no-store, no-cache"
    response.headers["Pragma"] = "no-cache"
    return response
