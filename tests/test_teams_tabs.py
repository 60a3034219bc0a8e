"""The register's pages for Microsoft Teams tabs, through the real ASGI app: the personal Home
tab (the member's overview, within their clearance), the team's register tab and its
configuration page, framing by Teams only, and sign-in through Entra ID in a window of its own."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from bot.app import ScrutinyApp, create_app
from bot.models import Member
from bot.register_web.app import TEAMS_FRAME_ANCESTORS
from bot.settings import Settings
from bot.visibility import audience_of_member
from bot.web import create_web_app
from handlers.home import overview
from tests.conftest import NOW
from tests.factories import Seed
from tests.fakes.oidc_idp import TENANT, FakeIdentityProvider
from tests.test_register_web import LOCAL, sign_in


@pytest.fixture
def web_app(settings: Settings, engine: object, seed: Seed) -> ScrutinyApp:
    configured = settings.model_copy(update={"web_session_secret": "t" * 40})
    return create_app(configured, engine)  # type: ignore[arg-type]


@pytest.fixture
def client(web_app: ScrutinyApp) -> Iterator[TestClient]:
    with TestClient(create_web_app(web_app, clock=lambda: NOW), client=LOCAL) as test_client:
        yield test_client


def _frame_ancestors(response: httpx.Response) -> list[str]:
    policy = response.headers["content-security-policy"]
    directive = next(d.strip() for d in policy.split(";") if "frame-ancestors" in d)
    return directive.split()[1:]


def test_signed_out_the_tab_offers_sign_in_instead_of_redirecting(client: TestClient) -> None:
    for path in ("/teams/home", "/teams/register?view=actions", "/teams/register/config"):
        page = client.get(path, follow_redirects=False)
        assert page.status_code == 200, path
        assert 'id="teams-signin"' in page.text
        assert "Migrate file shares" not in page.text and "Strategic" not in page.text
    # No identity provider here: the link is the register's own sign-in, no Teams window.
    home = client.get("/teams/home").text
    assert 'href="/signin?next=/teams/home"' in home and "data-popup-url" not in home


def test_home_tab_is_the_members_overview(client: TestClient, session: Session, seed: Seed) -> None:
    sign_in(client, "sian-hughes")
    page = client.get("/teams/home")
    assert page.status_code == 200
    member = session.get(Member, seed.members["sian-hughes"].id)
    assert member is not None
    expected = overview(session, audience_of_member(member), member, today=NOW.date(), now=NOW)
    assert [a.ref for a in expected["overdue"].items] == ["TP-001", "TP-003"]
    for action in (*expected["overdue"].items, *expected["due_soon"].items):
        assert f'href="/actions/{action.ref}"' in page.text
    for decision in expected["decisions"].items:
        assert f'href="/decisions/{decision.ref}"' in page.text
    for meeting in expected["meetings"]:
        assert f'href="/meetings/{meeting.id}"' in page.text
    assert "Scrutiny overview for Sian Hughes" in page.text
    assert 'src="/teams/tab.js"' in page.text and 'integrity="sha384-' in page.text


def test_home_tab_keeps_to_the_members_clearance(client: TestClient) -> None:
    sign_in(client, "eleri-jones")
    page = client.get("/teams/home").text
    assert '<html lang="cy">' in page
    for secret in ("TP-003", "TP-004", "TP-006", "SB-2026-032", "BC-2026-010"):
        assert secret not in page
    assert "nid ydych wedi" in page or "not cleared" in page  # the content-free withheld line


def test_register_tab_opens_the_chosen_view(client: TestClient) -> None:
    sign_in(client, "sian-hughes")
    for query, target in (
        ("view=actions", "/actions"),
        ("view=meetings&board=strategic", "/meetings?board=strategic"),
        ("view=decisions&board=finance", "/decisions?board=finance"),
        ("view=../signout", "/decisions"),
    ):
        answer = client.get(f"/teams/register?{query}", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == target, query
    config = client.get("/teams/register/config").text
    assert 'id="teams-register-config"' in config
    for view in ("decisions", "actions", "meetings", "attendance"):
        assert f'value="{view}"' in config
    assert 'value="strategic"' in config
    assert 'data-content-url="http://127.0.0.1:3000/teams/register"' in config


def test_teams_may_frame_the_register_and_no_one_else(client: TestClient) -> None:
    sign_in(client, "sian-hughes")
    for path in ("/teams/home", "/teams/register/config", "/decisions", "/signin"):
        answer = client.get(path)
        assert _frame_ancestors(answer) == ["'self'", *TEAMS_FRAME_ANCESTORS], path
        assert "x-frame-options" not in answer.headers
    for host in (
        "https://teams.microsoft.com",
        "https://*.cloud.microsoft",
        "https://*.office.com",
    ):
        assert host in TEAMS_FRAME_ANCESTORS
    script = client.get("/teams/tab.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "authentication.authenticate" in script.text and "notifySuccess" in script.text


def test_over_https_the_session_cookie_goes_with_the_teams_frame(
    settings: Settings, engine: object, seed: Seed
) -> None:
    secure = settings.model_copy(
        update={"web_session_secret": "t" * 40, "web_base_url": "https://register.example"}
    )
    app = create_app(secure, engine)  # type: ignore[arg-type]
    web = create_web_app(app, clock=lambda: NOW)
    with TestClient(web, client=LOCAL, base_url="https://testserver") as https_client:
        header = sign_in(https_client, "sian-hughes").lower()
        assert "samesite=none" in header and "secure" in header and "httponly" in header
        assert "Sian Hughes" in https_client.get("/teams/home").text


def test_sign_in_from_the_tab_goes_through_entra_in_its_own_window(
    settings: Settings, engine: object, seed: Seed
) -> None:
    idp = FakeIdentityProvider("entra", "register-client", "register-secret", NOW).start()
    try:
        configured = settings.model_copy(
            update={
                "web_session_secret": "t" * 40,
                "web_base_url": "http://testserver",
                "web_entra_client_id": idp.client_id,
                "web_entra_client_secret": idp.client_secret,
                "web_entra_metadata_url": idp.metadata_url,
                "graph_tenant_id": TENANT,
            }
        )
        app = create_app(configured, engine)  # type: ignore[arg-type]
        with TestClient(create_web_app(app, clock=lambda: NOW), client=LOCAL) as tab:
            offered = tab.get("/teams/home").text
            assert 'data-popup-url="/signin/entra?next=/teams/signed-in"' in offered
            # What Teams opens in its sign-in window: the register's own Entra sign-in.
            start = tab.get("/signin/entra?next=/teams/signed-in", follow_redirects=False)
            authorize = start.headers["location"]
            assert parse_qs(urlsplit(authorize).query)["code_challenge_method"] == ["S256"]
            member = seed.members["sian-hughes"]
            idp.user = {"oid": member.entra_object_id or "", "tid": TENANT}
            back = httpx.get(authorize, follow_redirects=False)
            target = urlsplit(back.headers["location"])
            done = tab.get(f"{target.path}?{target.query}", follow_redirects=False)
            assert done.headers["location"] == "/teams/signed-in"
            closing = tab.get("/teams/signed-in").text
            assert 'id="teams-signed-in"' in closing and 'src="/teams/tab.js"' in closing
            assert "Scrutiny overview for Sian Hughes" in tab.get("/teams/home").text
    finally:
        idp.stop()
