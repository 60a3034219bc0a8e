"""The Teams bot's outbound credential, other than a client secret: a certificate (a client
assertion signed with its key, checked by the local Entra ID) and a managed identity (App
Service's endpoint on 127.0.0.1, which MSAL finds through IDENTITY_ENDPOINT and
IDENTITY_HEADER: the identity's own token, or its token as the app's federated credential).
Each post at the local Bot Connector, from the outbox or from the bot's replies through the
Teams SDK, carries the token got with that credential."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp, create_app
from bot.domain import Platform
from bot.models import Channel
from bot.outbox import SendReport, enqueue
from bot.platforms.registry import messengers
from bot.platforms.teams.auth import OutboundTokens, SignInRefused
from bot.platforms.teams.connector_messenger import ConnectorMessenger
from bot.platforms.teams.sdk_bot import build_teams_bot
from bot.posted_messages import PostedRegister
from bot.settings import Settings
from bot.web import create_web_app
from tests.conftest import NOW
from tests.factories import Seed
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import ServedApp
from tests.fakes.token_issuer import (
    APP_ID,
    CERTIFICATE,
    JWT_BEARER,
    MSI_PATH,
    TOKEN_EXCHANGE,
    USER_IDENTITY,
    FakeTokenIssuer,
    certificate_file,
)
from tests.support.teams import PERSONAL, activity, bot_settings, post, send
from tests.test_teams_outbox import card, teams_channel  # noqa: F401 - fixture

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def claims(token: str) -> dict[str, Any]:
    """A token's claims, as the connector would read them (the fake's signature is its own)."""
    return jwt.decode(token, options={"verify_signature": False})


def teams_settings(
    database_url: str, entra: FakeTokenIssuer, bot_connector: FakeBotConnector, **credential: Any
) -> Settings:
    """The TEAMS_* settings of a bot trusting `entra`, with `credential` instead of a secret."""
    return bot_settings(
        database_url, entra, bot_connector, **{"teams_client_secret": None, **credential}
    )


def test_a_post_through_the_connector_carries_a_token_got_with_the_certificate(
    app: ScrutinyApp,
    session: Session,
    teams_channel: Channel,  # noqa: F811
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    tmp_path: Path,
) -> None:
    pem = tmp_path / "bot-certificate.pem"
    issuer.certificate = certificate_file(pem)
    settings = teams_settings(
        app.settings.database_url, issuer, connector, teams_certificate_path=pem
    )
    assert settings.teams_credential == "certificate"
    messenger = messengers(settings, app.sessions)[Platform.TEAMS]
    assert isinstance(messenger, ConnectorMessenger)
    enqueue(session, key="digest", channel=teams_channel, kind="test", payload=card("Digest"))
    session.commit()

    assert send(app, messenger).sent == 1

    [created] = connector.calls_of("create")
    assert claims(created.bearer)["appidacr"] == CERTIFICATE
    assert claims(created.bearer)["appid"] == APP_ID
    # One sign-in, with a signed assertion the fake checked against the certificate; no secret.
    [signin] = [c for c in issuer.entra.calls if c.path.endswith("/token")]
    assert signin.form["client_assertion_type"] == JWT_BEARER
    assert "client_secret" not in signin.form
    assert jwt.get_unverified_header(signin.form["client_assertion"])["x5t"]


def test_a_certificate_entra_does_not_know_is_refused_with_its_reason(
    database_url: str,
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    tmp_path: Path,
) -> None:
    issuer.certificate = certificate_file(tmp_path / "registered.pem")
    other = tmp_path / "other.pem"
    certificate_file(other)
    settings = teams_settings(database_url, issuer, connector, teams_certificate_path=other)

    with pytest.raises(SignInRefused, match="invalid_client AADSTS700027"):
        OutboundTokens(settings).token(settings.teams_bot_scope)


@pytest.fixture
def identity_host(issuer: FakeTokenIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
    """An App Service host whose managed identity endpoint is the issuer's."""
    for name, value in issuer.managed_identity_env().items():
        monkeypatch.setenv(name, value)
    # MSAL would take Service Fabric's endpoint for App Service's with this set.
    monkeypatch.delenv("IDENTITY_SERVER_THUMBPRINT", raising=False)


PostWith = Callable[..., SendReport]


@pytest.fixture
def post_with_identity(
    app: ScrutinyApp,
    session: Session,
    teams_channel: Channel,  # noqa: F811
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    identity_host: None,
) -> PostWith:
    """Send one digest from the outbox with the managed identity and the settings given."""

    def post_digest(**given: Any) -> SendReport:
        settings = teams_settings(app.settings.database_url, issuer, connector, **given)
        assert settings.teams_credential == "managed identity"
        messenger = ConnectorMessenger.from_settings(settings, PostedRegister(app.sessions))
        enqueue(session, key="digest", channel=teams_channel, kind="test", payload=card("Digest"))
        session.commit()
        return send(app, messenger)

    return post_digest


@pytest.mark.parametrize("identity", [APP_ID, "system", USER_IDENTITY])
def test_an_outbox_post_carries_a_token_got_with_the_managed_identity(
    post_with_identity: PostWith,
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    identity: str,
) -> None:
    assert post_with_identity(teams_managed_identity_client_id=identity).sent == 1

    [created] = connector.calls_of("create")
    [asked] = issuer.identity_requests
    assert asked.get("client_id", "system") == identity
    if identity == APP_ID:
        # The identity is the app: its own token, for the connector, and Entra never asked.
        assert asked["resource"] == "https://api.botframework.com"
        assert created.bearer == issuer.identity_token(APP_ID, asked["resource"])
        assert issuer.entra.grants() == []
    else:
        # The identity's token for the token exchange is the app's credential at Entra ID.
        assert asked["resource"] == TOKEN_EXCHANGE
        [signin] = [c for c in issuer.entra.calls if c.path.endswith("/token")]
        assert signin.form["client_assertion"] == issuer.identity_token(identity, TOKEN_EXCHANGE)
        assert claims(created.bearer)["xms_ficid"] == f"/fake/identities/{identity}"
        assert claims(created.bearer)["appid"] == APP_ID


SOVEREIGN_EXCHANGE = "api://AzureADTokenExchangeUSGov"


@pytest.mark.parametrize("configured", [False, True])
def test_a_sovereign_clouds_token_exchange_audience_is_a_setting(
    post_with_identity: PostWith,
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    configured: bool,
) -> None:
    """A cloud whose federated credentials trust another audience: the public default is
    refused there, and TEAMS_TOKEN_EXCHANGE_AUDIENCE set to that cloud's value signs in."""
    issuer.token_exchange_audience = SOVEREIGN_EXCHANGE
    audience = {"teams_token_exchange_audience": SOVEREIGN_EXCHANGE} if configured else {}

    report = post_with_identity(teams_managed_identity_client_id=USER_IDENTITY, **audience)

    [asked] = issuer.identity_requests
    assert asked["resource"] == (SOVEREIGN_EXCHANGE if configured else TOKEN_EXCHANGE)
    assert report.sent == (1 if configured else 0)
    assert len(connector.calls_of("create")) == report.sent


@pytest.fixture
def managed_identity_app(
    database_url: str,
    engine: Engine,
    seed: Seed,
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    identity_host: None,
) -> Iterator[ScrutinyApp]:
    settings = teams_settings(
        database_url, issuer, connector, teams_managed_identity_client_id=APP_ID
    )
    yield create_app(settings, engine)


def test_a_reply_through_the_sdk_carries_the_managed_identitys_token(
    managed_identity_app: ScrutinyApp,
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
) -> None:
    bot = build_teams_bot(managed_identity_app, clock=lambda: NOW)
    with ServedApp(create_web_app(managed_identity_app, [bot])) as served:
        body = activity(connector, "personal", "actions overdue torfaen")
        response = post(served, body, issuer.token(connector.service_url))
        assert response.status_code == 200
        connector.wait_until(lambda: bool(connector.calls))

    [sent] = connector.calls
    assert (sent.kind, sent.conversation_id, sent.status) == ("send", PERSONAL, 201)
    # Asked of the managed identity endpoint, for the connector, as the app's identity; Entra
    # ID itself was never asked.
    [asked] = issuer.identity_requests
    assert asked["resource"] == "https://api.botframework.com"
    assert asked["client_id"] == APP_ID
    assert sent.bearer == issuer.identity_token(APP_ID, asked["resource"])
    assert MSI_PATH in issuer.requests
    assert issuer.entra.grants() == []


def test_only_the_identity_that_is_the_app_signs_in_without_the_tenant(
    database_url: str,
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    identity_host: None,
) -> None:
    itself = teams_settings(
        database_url,
        issuer,
        connector,
        teams_tenant_id=None,
        teams_managed_identity_client_id=APP_ID,
    )
    scope = itself.teams_bot_scope
    assert OutboundTokens(itself).token(scope) == issuer.identity_token(
        APP_ID, "https://api.botframework.com"
    )
    federated = teams_settings(
        database_url,
        issuer,
        connector,
        teams_tenant_id=None,
        teams_managed_identity_client_id="system",
    )
    with pytest.raises(ValueError, match="TEAMS_TENANT_ID must be set"):
        OutboundTokens(federated)
