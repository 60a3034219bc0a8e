"""GRAPH_AUTHORITY_HOST: validated, and given to both azure-identity credentials.

The credentials are only built here, never asked for a token: azure-identity and MSAL accept
nothing but an https authority, so a sign-in against the plain-http fake cannot run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.identity import AuthenticationRecord

from bot.platforms.graph import AUTH_RECORD, _device_code, app_credential, user_credential
from bot.settings import SettingsError, load_settings

SOVEREIGN = "https://login.microsoftonline.us"


def test_authority_defaults_to_the_public_cloud() -> None:
    assert load_settings().graph_authority_host == "https://login.microsoftonline.com"


@pytest.mark.parametrize(
    "value",
    ["http://127.0.0.1:8080", "login.microsoftonline.com", "https://", "https://host/tenant"],
)
def test_authority_must_be_an_https_host(value: str) -> None:
    with pytest.raises(SettingsError, match=r"GRAPH_AUTHORITY_HOST: .*https URL with a host"):
        load_settings(graph_authority_host=value)


def test_app_credential_signs_in_at_the_configured_authority() -> None:
    settings = load_settings(
        graph_tenant_id="tenant",
        graph_client_id="client",
        graph_client_secret="secret",
        graph_authority_host=SOVEREIGN + "/",
    )
    assert app_credential(settings)._authority == SOVEREIGN  # type: ignore[attr-defined]


def test_service_account_signs_in_at_the_configured_authority(tmp_path: Path) -> None:
    settings = load_settings(
        graph_tenant_id="tenant",
        graph_client_id="client",
        graph_authority_host=SOVEREIGN,
        graph_token_cache=tmp_path,
        graph_token_cache_name="scrutiny-test",
    )
    # `teams login` builds this credential (and then asks Entra for a device code).
    assert _device_code(settings)._authority == SOVEREIGN
    assert user_credential(settings) is None


def test_signed_in_account_keeps_the_authority_it_signed_in_at(tmp_path: Path) -> None:
    settings = load_settings(
        graph_tenant_id="tenant",
        graph_client_id="client",
        graph_authority_host="https://login.microsoftonline.com",
        graph_token_cache=tmp_path,
        graph_token_cache_name="scrutiny-test",
    )
    record = AuthenticationRecord("tenant", "client", SOVEREIGN, "home.account", "svc@example")
    (tmp_path / AUTH_RECORD).write_text(record.serialize(), encoding="utf-8")
    credential = user_credential(settings)
    assert credential is not None
    assert credential._authority == SOVEREIGN  # type: ignore[attr-defined]
