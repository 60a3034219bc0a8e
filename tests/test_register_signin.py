"""Signing in to the register with OpenID Connect against local fakes of Microsoft Entra ID
and Sign in with Slack: the real ASGI app, real HTTP to the fakes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from bot.app import create_app
from bot.settings import Settings
from bot.web import create_web_app
from tests.conftest import NOW
from tests.factories import Seed
from tests.fakes.oidc_idp import TENANT, FakeIdentityProvider


@pytest.fixture(params=["entra", "slack"])
def idp(request: pytest.FixtureRequest) -> Iterator[FakeIdentityProvider]:
    fake = FakeIdentityProvider(request.param, "register-client", "register-secret", NOW).start()
    yield fake
    fake.stop()


@pytest.fixture
def client(
    idp: FakeIdentityProvider, settings: Settings, engine: object, seed: Seed
) -> Iterator[TestClient]:
    update: dict[str, object] = {
        "web_session_secret": "s" * 40,
        "web_base_url": "http://testserver",
    }
    if idp.style == "entra":
        update |= {
            "web_entra_client_id": idp.client_id,
            "web_entra_client_secret": idp.client_secret,
            "web_entra_metadata_url": idp.metadata_url,
            "graph_tenant_id": TENANT,
        }
    else:
        update |= {
            "web_slack_client_id": idp.client_id,
            "web_slack_client_secret": idp.client_secret,
            "web_slack_metadata_url": idp.metadata_url,
        }
    app = create_app(settings.model_copy(update=update), engine)  # type: ignore[arg-type]
    with TestClient(create_web_app(app, clock=lambda: NOW), client=("127.0.0.1", 1)) as c:
        yield c


def who(idp: FakeIdentityProvider, seed: Seed, slug: str) -> dict[str, str]:
    member = seed.members[slug]
    if idp.style == "entra":
        assert member.entra_object_id
        return {"oid": member.entra_object_id, "tid": TENANT}
    assert member.slack_user_id
    return {"sub": member.slack_user_id, "https://slack.com/user_id": member.slack_user_id}


def sign_in_through(client: TestClient, idp: FakeIdentityProvider) -> httpx.Response:
    start = client.get(f"/signin/{idp.style}?next=/actions", follow_redirects=False)
    assert start.status_code == 303
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    back = httpx.get(authorize, follow_redirects=False)
    assert back.status_code == 302
    target = urlsplit(back.headers["location"])
    return client.get(f"{target.path}?{target.query}", follow_redirects=False)


def test_sign_in_maps_the_provider_identity_to_the_member(
    client: TestClient, idp: FakeIdentityProvider, seed: Seed
) -> None:
    assert client.get("/actions", follow_redirects=False).status_code == 303
    idp.user = who(idp, seed, "sian-hughes")
    done = sign_in_through(client, idp)
    assert done.status_code == 303 and done.headers["location"] == "/actions"
    page = client.get("/actions")
    assert "Signed in as Sian Hughes" in page.text
    assert "example member" not in client.get("/signin").text
    assert f"POST {idp.prefix}/token" in idp.calls and f"GET {idp.prefix}/keys" in idp.calls


def test_token_signed_with_an_unpublished_key_is_refused(
    client: TestClient, idp: FakeIdentityProvider, seed: Seed
) -> None:
    idp.user = who(idp, seed, "sian-hughes")
    idp.sign_with_unpublished_key = True
    done = sign_in_through(client, idp)
    assert done.headers["location"] == "/signin?problem=refused"
    assert client.get("/actions", follow_redirects=False).status_code == 303


def test_token_for_another_audience_is_refused(
    client: TestClient, idp: FakeIdentityProvider, seed: Seed
) -> None:
    idp.user = who(idp, seed, "sian-hughes")
    idp.audience_override = "someone-else"
    assert sign_in_through(client, idp).headers["location"] == "/signin?problem=refused"


def test_a_stranger_is_not_signed_in(client: TestClient, idp: FakeIdentityProvider) -> None:
    idp.user = {"oid": "not-a-member", "sub": "U0NOBODY", "https://slack.com/user_id": "U0NOBODY"}
    assert sign_in_through(client, idp).headers["location"] == "/signin?problem=unknown"
    assert client.get("/decisions", follow_redirects=False).status_code == 303


def test_a_forged_state_is_refused(
    client: TestClient, idp: FakeIdentityProvider, seed: Seed
) -> None:
    idp.user = who(idp, seed, "sian-hughes")
    start = client.get(f"/signin/{idp.style}", follow_redirects=False)
    back = httpx.get(start.headers["location"], follow_redirects=False)
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    done = client.get(
        f"/signin/{idp.style}/callback?code={code}&state=forged", follow_redirects=False
    )
    assert done.headers["location"] == "/signin?problem=refused"
