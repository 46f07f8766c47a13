"""The Entra ID identity the sink uploads with, and a way to force a new token.

azure-core's bearer policy drops its cached token on a 401, but the credential
underneath (MSAL's cache, for a client secret) would hand the same token back.
:class:`RenewableCredential` answers a 401 by building a fresh credential, whose
first request is always a new token from the authority.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
from azure.identity import ClientSecretCredential, DefaultAzureCredential

from cefpipe.settings import SinkSettings

logger = logging.getLogger(__name__)


class ClosableCredential(Protocol):
    """What the sink needs of an azure-identity credential."""

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken: ...

    def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo: ...

    def close(self) -> None: ...


def build_credential(sink: SinkSettings) -> ClosableCredential:
    """The configured identity: a client secret when one is set, else the default chain.

    With an authority host set (a sovereign cloud, or the local emulator), MSAL's
    instance discovery is turned off: it would otherwise ask Microsoft's public
    cloud whether that host is a known authority before using it.
    """
    verify: str | bool = str(sink.ca_file) if sink.ca_file else True
    options: dict[str, Any] = {"connection_verify": verify}
    if sink.authority_host:
        options["authority"] = sink.authority_host
        options["disable_instance_discovery"] = True
    if sink.client_secret:
        return ClientSecretCredential(
            sink.tenant_id, sink.client_id, sink.client_secret.reveal(), **options
        )
    # Managed or workload identity in production; azure-identity reads its own
    # environment variables (AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE, ...).
    return DefaultAzureCredential(**options)


class RenewableCredential:
    """Delegates to a credential that can be replaced by a fresh one on demand.

    Thread-safe: upload threads ask for tokens concurrently, and any of them
    may call :meth:`renew` after a 401.

    Args:
        factory: builds a new underlying credential; called once now and once
            per :meth:`renew`.
    """

    def __init__(self, factory: Callable[[], ClosableCredential]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._current = factory()
        self._retired: list[ClosableCredential] = []
        self.renewals = 0

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        return self._credential().get_token(
            *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
        )

    def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        return self._credential().get_token_info(*scopes, options=options)

    def renew(self) -> None:
        """Make the next token request go to the authority, bypassing every cache.

        The credential just replaced stays open until the next renewal, since
        another thread may be fetching a token through it right now; older
        ones are closed.
        """
        fresh = self._factory()
        with self._lock:
            stale, self._retired = self._retired, [self._current]
            self._current = fresh
            self.renewals += 1
        for credential in stale:
            credential.close()
        logger.info("credential renewed after the service refused a token")

    def close(self) -> None:
        """Close the current and every retired credential; safe to call twice."""
        with self._lock:
            credentials, self._retired = [self._current, *self._retired], []
        for credential in credentials:
            credential.close()

    def _credential(self) -> ClosableCredential:
        with self._lock:
            return self._current
