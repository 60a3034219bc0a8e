"""GRAPH_AUTHORITY_HOST: validated, given to both azure-identity credentials, and used end to
end: `calendar login` and `sync graph` through the real CLI, azure-identity, MSAL and msgraph-sdk
against a fake Entra ID (HTTPS, self-signed for 127.0.0.1) and the fake Graph.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.identity import AuthenticationRecord
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from bot.cli import cli
from bot.entra import microsoft_cloud
from bot.microsoft365.graph import (
    AUTH_RECORD,
    _device_code,
    app_credential,
    calendar_credential,
)
from bot.models import Action, AuditEvent, Decision, Meeting
from bot.settings import SettingsError, load_settings
from tests.conftest import NOW
from tests.fakes.aad import USERNAME, FakeEntra
from tests.fakes.graph_api import FakeGraph, event, list_item

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


def test_the_calendar_account_signs_in_at_the_configured_authority(tmp_path: Path) -> None:
    settings = load_settings(
        graph_tenant_id="tenant",
        graph_client_id="client",
        graph_authority_host=SOVEREIGN,
        graph_token_cache=tmp_path,
        graph_token_cache_name="scrutiny-test",
    )
    # `calendar login` builds this credential (and then asks Entra for a device code).
    assert _device_code(settings)._authority == SOVEREIGN
    assert calendar_credential(settings) is None


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
    credential = calendar_credential(settings)
    assert credential is not None
    assert credential._authority == SOVEREIGN  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("authority", "public"),
    [
        ("https://login.microsoftonline.com", True),
        (SOVEREIGN, True),
        ("login.microsoftonline.us", True),  # an AuthenticationRecord's authority is a bare host
        ("https://127.0.0.1:8443", False),
        ("https://login.example.org", False),
    ],
)
def test_instance_discovery_is_only_asked_of_microsoft_clouds(authority: str, public: bool) -> None:
    assert microsoft_cloud(authority) is public


# -- end to end: the real CLI, azure-identity and msgraph-sdk against local fakes ---------------
TENANT = "7d1a3f5e-0c2b-4e6d-9a8f-1b3c5d7e9f01"
CLIENT = "4e6f8a0b-2c4d-4f6e-8a0b-2c4d6e8f0a1b"
GROUP = "5a0e2c1b-1111-4111-8111-000000000001"
SITE = "srs.sharepoint.com,1f0a,2b0c"
GRAPH_SECTION = f"""
graph:
  calendars:
    strategic: {GROUP}
  sharepoint:
    site: {SITE}
    decisions:
      list: decisions-register
      fields: {{ref: Title, board: Board, decided_on: DecidedOn, title: DecisionTitle}}
    actions:
      list: tactical-plan
      fields: {{ref: Title, title: ActionTitle, owner_partner: Owner, status: Status}}
"""
runner = CliRunner()


@pytest.fixture
def local_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Refuses to resolve any host but 127.0.0.1; the hosts asked for."""
    asked: list[str] = []
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        asked.append(str(host))
        if host not in ("127.0.0.1", b"127.0.0.1"):
            raise OSError(f"test refused to resolve {host!r}: tests only talk to 127.0.0.1")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    soon = NOW + timedelta(days=14)
    with FakeGraph(page_size=2) as fake:
        fake.events[GROUP] = [
            event(
                f"sb{n}",
                "Strategic Board",
                (soon + timedelta(days=28 * n)).strftime("%Y-%m-%dT10:00"),
                (soon + timedelta(days=28 * n)).strftime("%Y-%m-%dT12:00"),
            )
            for n in range(3)
        ]
        fake.items[(SITE, "decisions-register")] = [
            list_item(
                n,
                Title=f"SB-2026-00{n}",
                Board="SB",
                DecidedOn=f"2026-07-0{n}T23:00:00Z",
                DecisionTitle=f"Decision {n}",
            )
            for n in range(1, 4)
        ]
        fake.items[(SITE, "tactical-plan")] = [
            list_item(10 + n, Title=f"TP-10{n}", ActionTitle=f"Action {n}", Owner="torfaen")
            for n in range(1, 4)
        ]
        yield fake


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_login_then_sync_through_the_real_cli_and_identity_libraries(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    engine: Engine,
    graph: FakeGraph,
    local_only: list[str],
) -> None:
    config = tmp_path / "collaboration.yaml"
    example = Path(__file__).parents[1] / "config" / "collaboration.example.yaml"
    config.write_text(example.read_text(encoding="utf-8") + GRAPH_SECTION, encoding="utf-8")
    with FakeEntra(tmp_path, TENANT, CLIENT) as entra:
        environment = {
            "DATABASE_URL": database_url,
            "SCRUTINY_CONFIG": str(config),
            "SCRUTINY_LANGUAGE": "en",
            "GRAPH_TENANT_ID": TENANT,
            "GRAPH_CLIENT_ID": CLIENT,
            "GRAPH_CLIENT_SECRET": "app-secret",
            "GRAPH_API_URL": graph.url,
            "GRAPH_AUTHORITY_HOST": entra.authority,
            "GRAPH_TOKEN_CACHE": str(tmp_path / "graph"),
            "GRAPH_TOKEN_CACHE_NAME": "scrutiny-test",
            # azure-identity's persistent cache lives in ~/.IdentityService; MSAL's requests
            # (azure-core's requests transport) trust the fake's certificate through this.
            "HOME": str(tmp_path),
            "REQUESTS_CA_BUNDLE": str(entra.ca_file),
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)

        loaded = runner.invoke(cli, ["config", "load"])
        assert loaded.exit_code == 0, loaded.output

        signed_in = runner.invoke(cli, ["calendar", "login"])
        assert signed_in.exit_code == 0, signed_in.output
        assert f"at {entra.authority}/devicelogin with the code FAKE-CODE" in signed_in.stdout
        assert "never posts" in signed_in.stdout
        # Read-only: the one delegated permission (MSAL adds the sign-in's own scopes).
        [asked] = [c.form["scope"] for c in entra.calls if c.path.endswith("/devicecode")]
        assert sorted(asked.split()) == [
            "https://graph.microsoft.com/Group.Read.All",
            "offline_access",
            "openid",
            "profile",
        ]
        record = AuthenticationRecord.deserialize((tmp_path / "graph" / AUTH_RECORD).read_text())
        assert (record.authority, record.tenant_id, record.username) == (
            urlsplit(entra.authority).netloc,
            TENANT,
            USERNAME,
        )
        # The CAE cache: the one the SDK's auth provider reads (enable_cae=True).
        cache = tmp_path / ".IdentityService" / "scrutiny-test.cae"
        assert "fake-refresh-token" in cache.read_text(encoding="utf-8")

        first = runner.invoke(cli, ["sync", "graph"])
        assert first.exit_code == 0, first.output
        with engine.connect() as conn:
            audited = conn.scalar(select(func.count()).select_from(AuditEvent))
            made = {
                model.__name__: conn.scalar(select(func.count()).select_from(model))
                for model in (Meeting, Decision, Action)
            }
        assert made == {"Meeting": 3, "Decision": 3, "Action": 3}
        for kind in ("meetings", "decisions", "actions"):
            assert f"{kind}: 3 created, 0 updated, 0 unchanged." in first.stdout

        again = runner.invoke(cli, ["sync", "graph"])
        assert again.exit_code == 0, again.output
        for kind in ("meetings", "decisions", "actions"):
            assert f"{kind}: 0 created, 0 updated, 3 unchanged." in again.stdout
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(AuditEvent)) == audited

    # The device code once, then the app's secret once per run; the account's token came
    # from the persistent cache, without prompting. Nothing resolved any other host.
    assert entra.grants() == [
        "urn:ietf:params:oauth:grant-type:device_code",
        "client_credentials",
        "client_credentials",
    ]
    assert {c.path for c in entra.calls} == {
        f"/{TENANT}/v2.0/.well-known/openid-configuration",
        f"/{TENANT}/oauth2/v2.0/devicecode",
        f"/{TENANT}/oauth2/v2.0/token",
    }
    assert set(local_only) == {"127.0.0.1"}
    assert len(graph.calls_to(f"/groups/{GROUP}/calendar/calendarView")) == 4  # 2 pages x 2 runs
