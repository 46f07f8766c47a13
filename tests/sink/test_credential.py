"""Which identity the sink uses, and that renewal really replaces it."""

from __future__ import annotations

from typing import Any

from azure.identity import ClientSecretCredential, DefaultAzureCredential

from cefpipe.settings import Settings
from sink.credential import RenewableCredential, build_credential


def test_a_client_secret_selects_the_client_secret_credential(
    sink_env: dict[str, str],
) -> None:
    settings = Settings.from_env(sink_env)

    credential = build_credential(settings.sink)

    assert isinstance(credential, ClientSecretCredential)
    credential.close()


def test_without_a_secret_the_default_chain_is_used(sink_env: dict[str, str]) -> None:
    env = {
        key: value for key, value in sink_env.items() if key != "AZURE_CLIENT_SECRET"
    }
    settings = Settings.from_env(env)

    credential = build_credential(settings.sink)

    assert isinstance(credential, DefaultAzureCredential)
    credential.close()


class CountingCredential:
    built = 0

    def __init__(self) -> None:
        CountingCredential.built += 1
        self.number = CountingCredential.built
        self.closed = False

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return ("token", self.number)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        return ("info", self.number)

    def close(self) -> None:
        self.closed = True


def test_renewal_builds_a_fresh_credential_and_close_closes_all() -> None:
    built: list[CountingCredential] = []

    def factory() -> CountingCredential:
        built.append(CountingCredential())
        return built[-1]

    renewable = RenewableCredential(factory)  # type: ignore[arg-type]
    first = renewable.get_token_info("scope")
    renewable.renew()
    second = renewable.get_token_info("scope")
    renewable.close()

    assert first != second
    assert renewable.renewals == 1
    assert all(credential.closed for credential in built)
