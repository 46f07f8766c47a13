"""The emulator's Entra ID, driven by the real azure-identity credentials."""

from __future__ import annotations

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential

from cefpipe.settings import Settings
from emulator.entra import TokenIssuer, TokenVerdict, audience_of_scope
from emulator.server import EmulatorThread
from tests.emulator.helpers import MONITOR_SCOPE


def _credential(
    settings: Settings,
    emu: EmulatorThread,
    *,
    tenant: str | None = None,
    client_id: str | None = None,
    secret: str | None = None,
) -> ClientSecretCredential:
    return ClientSecretCredential(
        tenant or settings.emulator.tenant_id,
        client_id or settings.emulator.client_id,
        secret or settings.emulator.client_secret.reveal(),
        authority=emu.url,
        disable_instance_discovery=True,
        connection_verify=str(emu.ca_file),
    )


def test_sync_credential_gets_a_token_with_the_configured_lifetime(
    settings: Settings, emu: EmulatorThread
) -> None:
    with _credential(settings, emu) as credential:
        first = credential.get_token(MONITOR_SCOPE)
        second = credential.get_token(MONITOR_SCOPE)

    assert first.token == second.token  # cached by MSAL, not fetched again
    lifetime = settings.emulator.token_lifetime_secs
    assert first.expires_on - lifetime <= second.expires_on <= first.expires_on


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"secret": "not-the-secret"}, "AADSTS7000215"),
        ({"client_id": "someone-else"}, "AADSTS700016"),
        ({"tenant": "another-tenant"}, "another-tenant"),
    ],
    ids=["wrong-secret", "unknown-client", "unknown-tenant"],
)
def test_sync_credential_with_wrong_identity_fails_authentication(
    settings: Settings, emu: EmulatorThread, override: dict[str, str], message: str
) -> None:
    with (
        _credential(settings, emu, **override) as credential,
        pytest.raises(ClientAuthenticationError, match=message),
    ):
        credential.get_token(MONITOR_SCOPE)


async def test_async_credential_with_wrong_secret_fails_authentication(
    settings: Settings, emu: EmulatorThread
) -> None:
    credential = AsyncClientSecretCredential(
        settings.emulator.tenant_id,
        settings.emulator.client_id,
        "not-the-secret",
        authority=emu.url,
        connection_verify=str(emu.ca_file),
    )
    async with credential:
        with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
            await credential.get_token(MONITOR_SCOPE)


def _token_request(
    settings: Settings, emu: EmulatorThread, **fields: str
) -> requests.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": settings.emulator.client_id,
        "client_secret": settings.emulator.client_secret.reveal(),
        "scope": MONITOR_SCOPE,
        **fields,
    }
    return requests.post(
        f"{emu.url}/{settings.emulator.tenant_id}/oauth2/v2.0/token",
        data=form,
        verify=str(emu.ca_file),
        timeout=30,
    )


def test_wrong_secret_is_401_invalid_client_like_the_real_service(
    settings: Settings, emu: EmulatorThread
) -> None:
    response = _token_request(settings, emu, client_secret="nope")

    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_description"].startswith(
        "AADSTS7000215: Invalid client secret provided."
    )
    assert body["error_codes"] == [7000215]


@pytest.mark.parametrize(
    ("fields", "status", "error"),
    [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        (
            {"scope": "https://monitor.azure.com/user_impersonation"},
            400,
            "invalid_scope",
        ),
        ({"scope": ""}, 400, "invalid_scope"),
        ({"client_secret": ""}, 401, "invalid_client"),
    ],
    ids=["grant-type", "non-default-scope", "no-scope", "empty-secret"],
)
def test_malformed_token_requests_are_refused(
    settings: Settings,
    emu: EmulatorThread,
    fields: dict[str, str],
    status: int,
    error: str,
) -> None:
    response = _token_request(settings, emu, **fields)

    assert response.status_code == status
    assert response.json()["error"] == error


def test_openid_configuration_points_back_at_the_emulator(
    settings: Settings, emu: EmulatorThread
) -> None:
    tenant = settings.emulator.tenant_id
    response = requests.get(
        f"{emu.url}/{tenant}/v2.0/.well-known/openid-configuration",
        verify=str(emu.ca_file),
        timeout=30,
    )

    document = response.json()
    assert document["token_endpoint"] == f"{emu.url}/{tenant}/oauth2/v2.0/token"
    assert document["authorization_endpoint"].startswith(emu.url)
    assert document["issuer"] == f"{emu.url}/{tenant}/v2.0"


def test_instance_discovery_vouches_for_the_emulator(emu: EmulatorThread) -> None:
    response = requests.get(
        f"{emu.url}/common/discovery/instance",
        params={"api-version": "1.1", "authorization_endpoint": "https://x/authorize"},
        verify=str(emu.ca_file),
        timeout=30,
    )

    assert response.json()["tenant_discovery_endpoint"].startswith(emu.url)


@pytest.mark.parametrize(
    ("scope", "audience"),
    [
        ("https://monitor.azure.com/.default", "https://monitor.azure.com"),
        ("https://monitor.azure.com//.default", "https://monitor.azure.com"),
        (
            "https://monitor.azure.com/.default offline_access",
            "https://monitor.azure.com",
        ),
        ("https://monitor.azure.com/user_impersonation", None),
        ("https://a/.default https://b/.default", None),
        ("/.default", None),
        ("", None),
    ],
)
def test_audience_of_scope(scope: str, audience: str | None) -> None:
    assert audience_of_scope(scope) == audience


def test_token_verdicts_follow_the_clock_and_the_audience() -> None:
    now = [1000.0]
    issuer = TokenIssuer(lifetime_secs=60, clock=lambda: now[0])
    token = issuer.issue("https://monitor.azure.com/")

    assert issuer.verdict(token, "https://monitor.azure.com") is TokenVerdict.VALID
    assert issuer.verdict(token, "https://other") is TokenVerdict.WRONG_AUDIENCE
    assert issuer.verdict("forged", "https://monitor.azure.com") is TokenVerdict.UNKNOWN
    now[0] += 60
    assert issuer.verdict(token, "https://monitor.azure.com") is TokenVerdict.EXPIRED


def test_expired_tokens_are_remembered_for_a_day_then_forgotten() -> None:
    now = [0.0]
    issuer = TokenIssuer(lifetime_secs=60, clock=lambda: now[0])
    old = issuer.issue("https://monitor.azure.com")

    now[0] = 3600.0
    issuer.issue("https://monitor.azure.com")
    assert issuer.verdict(old, "https://monitor.azure.com") is TokenVerdict.EXPIRED
    now[0] = 2 * 24 * 3600.0
    issuer.issue("https://monitor.azure.com")
    assert issuer.verdict(old, "https://monitor.azure.com") is TokenVerdict.UNKNOWN


def test_expire_all_expires_every_issued_token() -> None:
    issuer = TokenIssuer(lifetime_secs=3600)
    token = issuer.issue("https://monitor.azure.com")

    issuer.expire_all()

    assert issuer.verdict(token, "https://monitor.azure.com") is TokenVerdict.EXPIRED
