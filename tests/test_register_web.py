"""The register on the web, through the real ASGI app (`bot.web.create_web_app`) over HTTP:
sign-in, pages, visibility, forms with CSRF, attendance, calendar feeds and exports."""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from icalendar import Calendar
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from bot.app import ScrutinyApp, create_app
from bot.imports import ImportRejected, import_file
from bot.models import Action, Attendance, AuditEvent, Meeting, Question
from bot.settings import Settings
from bot.web import create_web_app
from tests.conftest import NOW
from tests.factories import Seed

LOCAL = ("127.0.0.1", 50000)
SECRET_ITEMS = ("TP-003", "TP-004", "SB-2026-032", "BC-2026-010", "Exempt", "Police-only")


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"web_session_secret": "test-secret-" + "x" * 32})


@pytest.fixture
def web_app(web_settings: Settings, engine: object, seed: Seed) -> ScrutinyApp:
    return create_app(web_settings, engine)  # type: ignore[arg-type]


@pytest.fixture
def client(web_app: ScrutinyApp) -> Iterator[TestClient]:
    with TestClient(create_web_app(web_app, clock=lambda: NOW), client=LOCAL) as test_client:
        yield test_client


def csrf(client: TestClient, path: str = "/signin") -> str:
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def sign_in(client: TestClient, member: str) -> str:
    """Sign in by the development sign-in; returns the Set-Cookie header of the new session."""
    token = csrf(client)
    answer = client.post(
        "/signin/dev",
        data={"csrf_token": token, "member": member, "next": "/decisions"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/decisions"
    return answer.headers["set-cookie"]


def test_signed_out_is_redirected_everywhere(client: TestClient) -> None:
    for path in (
        "/decisions",
        "/decisions/SB-2026-031",
        "/actions",
        "/meetings",
        "/attendance",
        "/calendars",
        "/export/register.csv",
        "/export/register.xlsx",
    ):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/signin?next="), path
    assert "Approved the data centre" not in client.get("/signin").text


def test_session_cookie_is_signed_httponly_lax(client: TestClient) -> None:
    header = sign_in(client, "sian-hughes").lower()
    assert "samesite=lax" in header and "httponly" in header and "secure" not in header
    cookie = next(c for c in client.cookies.jar if c.name == "scrutiny_register")
    client.cookies.set("scrutiny_register", cookie.value[:-3] + "abc")
    assert client.get("/decisions", follow_redirects=False).status_code == 303


def test_development_signin_only_from_loopback(web_app: ScrutinyApp) -> None:
    with TestClient(create_web_app(web_app, clock=lambda: NOW), client=("10.0.0.5", 1)) as far:
        page = far.get("/signin")
        assert "Sign in as an example member" not in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        refused = far.post(
            "/signin/dev", data={"csrf_token": token.group(1), "member": "ceri-morgan"}
        )
        assert refused.status_code == 404


def test_development_signin_off_when_a_provider_is_configured(
    web_settings: Settings, engine: object, seed: Seed
) -> None:
    configured = web_settings.model_copy(
        update={
            "web_slack_client_id": "client",
            "web_slack_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
        }
    )
    app = create_app(configured, engine)  # type: ignore[arg-type]
    with TestClient(create_web_app(app, clock=lambda: NOW), client=LOCAL) as near:
        page = near.get("/signin")
        assert "Sign in with Slack" in page.text
        assert "example member" not in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        answer = near.post("/signin/dev", data={"csrf_token": token.group(1), "member": "x"})
        assert answer.status_code == 404


def test_forms_without_the_csrf_token_are_refused(client: TestClient, session: Session) -> None:
    sign_in(client, "ceri-morgan")
    meeting = session.scalars(select(Meeting)).first()
    assert meeting is not None
    answer = client.post(
        f"/meetings/{meeting.id}/attendance",
        data={"partner:torfaen": "present", "csrf_token": "forged"},
    )
    assert answer.status_code == 403
    assert session.scalars(select(Attendance)).first() is None
    assert client.post("/signout", data={}).status_code == 403


def test_decisions_search_filter_and_permalink(client: TestClient) -> None:
    sign_in(client, "sian-hughes")
    page = client.get("/decisions", params={"q": "data centre"})
    assert "SB-2026-031" in page.text and "FG-2026-044" not in page.text
    page = client.get("/decisions", params={"board": "finance-governance"})
    assert "FG-2026-044" in page.text and "SB-2026-031" not in page.text
    page = client.get("/decisions", params={"since": "2026-11-20"})
    assert "FG-2026-044" in page.text and "SB-2026-031" not in page.text
    detail = client.get("/decisions/SB-2026-031")
    assert detail.status_code == 200
    assert "phase 2 of the move" in detail.text
    moved = client.get("/decisions/sb-2026-31", follow_redirects=False)
    assert moved.status_code == 301 and moved.headers["location"] == "/decisions/SB-2026-031"


def _trail(session: Session, seed: Seed) -> None:
    seed.actions["TP-001"].decision_refs = ["SB-2026-031"]
    seed.actions["TP-003"].decision_refs = ["SB-2026-031"]
    seed.actions["TP-004"].decision_refs = ["SB-2026-031"]
    session.add(
        Question(
            ref="Q-SB-2026-12-001",
            meeting=seed.meetings[0],
            text="When will phase 2 finish?",
            asker=seed.members["sian-hughes"],
            partner=seed.partners["torfaen"],
            linked_refs=["TP-001"],
            state="accepted",
            answer="By March 2027.",
        )
    )
    session.commit()


def test_trail_from_decision_to_actions_and_questions_and_back(
    client: TestClient, session: Session, seed: Seed
) -> None:
    _trail(session, seed)
    sign_in(client, "rhys-evans")
    page = client.get("/decisions/SB-2026-031").text
    assert "TP-001" in page and "TP-004" in page and "TP-003" in page
    assert "Q-SB-2026-12-001" in page and "By March 2027." in page
    back = client.get("/actions/TP-001").text
    assert "SB-2026-031" in back and "When will phase 2 finish?" in back


def test_member_without_exempt_access_sees_nothing_withheld_anywhere(
    client: TestClient, session: Session, seed: Seed
) -> None:
    _trail(session, seed)
    sign_in(client, "eleri-jones")
    pages = [
        client.get("/decisions").text,
        client.get("/decisions", params={"q": "exempt procurement"}).text,
        client.get("/decisions", params={"q": "police records"}).text,
        client.get("/actions").text,
        client.get("/actions", params={"q": "segregation"}).text,
        client.get("/decisions/SB-2026-031").text,
        client.get("/export/register.csv", params={"sheet": "decisions"}).text,
        client.get("/export/register.csv", params={"sheet": "actions"}).text,
    ]
    for page in pages:
        for secret in SECRET_ITEMS:
            assert secret not in page
    # Counts exclude them too: two visible decisions, and a content-free withheld line.
    listing = client.get("/decisions").text
    assert "2 benderfyniad" in listing or "2 decisions" in listing
    for ref in ("SB-2026-032", "BC-2026-010"):
        assert client.get(f"/decisions/{ref}").status_code == 404
    for ref in ("TP-003", "TP-004"):
        assert client.get(f"/actions/{ref}").status_code == 404
    book = load_workbook(io.BytesIO(client.get("/export/register.xlsx").content))
    cells = " ".join(str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row)
    for secret in SECRET_ITEMS:
        assert secret not in cells


def test_welsh_pages_and_language_switch(client: TestClient) -> None:
    sign_in(client, "eleri-jones")
    page = client.get("/decisions")
    assert '<html lang="cy">' in page.text and "Penderfyniadau" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    client.post("/language", data={"csrf_token": token.group(1), "lang": "en", "next": "/actions"})
    english = client.get("/actions")
    assert '<html lang="en">' in english.text and "Tactical plan actions" in english.text


def test_secretariat_records_attendance_and_the_chart_changes(
    client: TestClient, session: Session, seed: Seed
) -> None:
    sign_in(client, "ceri-morgan")
    meeting = seed.meetings[0]
    before = client.get("/attendance", params={"year": 2026}).text
    assert 'data-partner="torfaen"' in before and "0% (0/0)" in before
    token = csrf(client, f"/meetings/{meeting.id}")
    refused = client.post(
        f"/meetings/{meeting.id}/attendance",
        data={"csrf_token": token, "partner:torfaen": "sleeping"},
    )
    assert refused.status_code == 422 and "not an attendance" in refused.text
    saved = client.post(
        f"/meetings/{meeting.id}/attendance",
        data={"csrf_token": token, "partner:torfaen": "present", "partner:newport": "apologies"},
    )
    assert saved.status_code == 200
    after = client.get("/attendance", params={"year": 2026}).text
    assert "100% (1/1)" in after and "0% (0/1)" in after
    event = session.scalars(select(AuditEvent).where(AuditEvent.entity == "attendance")).one()
    assert event.actor == "web:ceri-morgan"
    assert event.after == {"torfaen": "present", "newport": "apologies"}


def test_scrutiny_member_cannot_use_secretariat_forms(client: TestClient, seed: Seed) -> None:
    sign_in(client, "sian-hughes")
    token = csrf(client, "/decisions")
    answer = client.post(
        f"/meetings/{seed.meetings[0].id}/attendance",
        data={"csrf_token": token, "partner:torfaen": "present"},
    )
    assert answer.status_code == 403
    assert client.get("/decisions/new").status_code == 403


def test_record_decision_with_field_errors_then_success(
    client: TestClient, session: Session
) -> None:
    sign_in(client, "ceri-morgan")
    token = csrf(client, "/decisions/new")
    refused = client.post(
        "/decisions/new",
        data={"csrf_token": token, "board": "strategic", "decided_on": "2026-13-01", "title": ""},
    )
    assert refused.status_code == 422
    assert 'id="decided_on-error"' in refused.text and 'id="title-error"' in refused.text
    made = client.post(
        "/decisions/new",
        data={
            "csrf_token": token,
            "board": "strategic",
            "decided_on": "2026-11-20",
            "title": "Adopted the register",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303 and made.headers["location"] == "/decisions/SB-2026-033"
    event = session.scalars(select(AuditEvent).where(AuditEvent.entity_ref == "SB-2026-033")).one()
    assert event.actor == "web:ceri-morgan"


def test_update_action_and_link_its_decision(client: TestClient, session: Session) -> None:
    sign_in(client, "ceri-morgan")
    token = csrf(client, "/actions/TP-002")
    refused = client.post(
        "/actions/TP-002",
        data={"csrf_token": token, "status": "sleeping", "decisions": "SB-2026-999"},
    )
    assert refused.status_code == 422
    assert 'id="status-error"' in refused.text and 'id="decisions-error"' in refused.text
    saved = client.post(
        "/actions/TP-002",
        data={"csrf_token": token, "status": "blocked", "rag": "red", "decisions": "sb-2026-031"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    action = session.scalars(select(Action).where(Action.ref == "TP-002")).one()
    session.refresh(action)
    assert action.status.value == "blocked" and action.decision_refs == ["SB-2026-031"]
    assert "TP-002" in client.get("/decisions/SB-2026-031").text


def test_export_is_safe_against_formula_injection(
    client: TestClient, session: Session, seed: Seed
) -> None:
    seed.decisions["SB-2026-031"].title = '=HYPERLINK("http://evil")'
    seed.actions["TP-001"].title = "@SUM(1)"
    session.commit()
    sign_in(client, "sian-hughes")
    rows = list(csv.reader(io.StringIO(client.get("/export/register.csv").text.lstrip("\ufeff"))))
    titles = [row[3] for row in rows[1:]]
    assert '\'=HYPERLINK("http://evil")' in titles
    book = load_workbook(io.BytesIO(client.get("/export/register.xlsx").content))
    values = [c.value for row in book["actions"].iter_rows() for c in row]
    assert "'@SUM(1)" in values
    assert not any(isinstance(v, str) and v.startswith(("=", "@")) for v in values)


def test_calendar_feed_across_clock_changes_and_revoked(
    client: TestClient, session: Session, seed: Seed
) -> None:
    strategic = seed.boards["strategic"]
    spring = Meeting(
        board=strategic,
        starts_at=datetime(2026, 3, 30, 9, 0, tzinfo=UTC),  # 10:00 BST, the day after the change
        questions_close=datetime(2026, 3, 27, 17, 0, tzinfo=UTC),  # 17:00 GMT
    )
    autumn = Meeting(
        board=strategic,
        starts_at=datetime(2026, 10, 26, 10, 0, tzinfo=UTC),  # 10:00 GMT
    )
    session.add_all([spring, autumn])
    session.commit()
    sign_in(client, "sian-hughes")
    token = csrf(client, "/calendars")
    page = client.post("/calendars/new", data={"csrf_token": token, "board": "strategic"}).text
    match = re.search(r"<code>http://127\.0\.0\.1:3000(/calendars/[^<]+\.ics)</code>", page)
    assert match, page
    feed_path = match.group(1)
    client.cookies.clear()
    calendar = Calendar.from_ical(client.get(feed_path).content)
    assert calendar.walk("VTIMEZONE")[0]["TZID"] == "Europe/London"
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    first = events[f"meeting-{spring.id}@127.0.0.1"]["DTSTART"].dt
    assert (first.hour, first.utcoffset().total_seconds()) == (10, 3600)
    assert first.tzinfo.key == "Europe/London"  # type: ignore[union-attr]
    second = events[f"meeting-{autumn.id}@127.0.0.1"]["DTSTART"].dt
    assert (second.hour, second.utcoffset().total_seconds()) == (10, 0)
    deadline = events[f"questions-close-{spring.id}@127.0.0.1"]["DTEND"].dt
    assert (deadline.hour, deadline.utcoffset().total_seconds()) == (17, 0)
    assert int(events[f"meeting-{spring.id}@127.0.0.1"]["SEQUENCE"]) == 0
    spring.location = "Newport"
    session.commit()
    again = Calendar.from_ical(client.get(feed_path).content)
    moved = {str(e["UID"]): e for e in again.walk("VEVENT")}[f"meeting-{spring.id}@127.0.0.1"]
    assert int(moved["SEQUENCE"]) == 1
    sign_in(client, "sian-hughes")
    page = client.get("/calendars").text
    feed_id = re.search(r'name="feed" value="(\d+)"', page)
    assert feed_id
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    client.post("/calendars/revoke", data={"csrf_token": token.group(1), "feed": feed_id.group(1)})
    assert client.get(feed_path).status_code == 404
    assert client.get("/calendars/not-a-feed.ics").status_code == 404


def test_healthz_still_answers(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"


def test_today_is_from_the_injected_clock(client: TestClient) -> None:
    sign_in(client, "sian-hughes")
    page = client.get("/actions", params={"timing": "overdue", "partner": "torfaen"}).text
    # TP-001 was due 30 September 2026: 54 days before Monday 23 November 2026.
    assert "54 days late" in page
    assert date(2026, 11, 23) == NOW.date()


def test_actions_import_carries_the_decisions_they_come_from(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = tmp_path / "actions.csv"
    path.write_text(
        "ref,title,owner_partner,decisions\n"
        "TP-201,Build the register,torfaen,sb-2026-031 FG-2026-044\n"
        "TP-202,Nothing behind it,torfaen,SB-2026-999\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as rejected:
        import_file(session, "actions", path, actor="test", now=NOW)
    assert [str(p) for p in rejected.value.problems] == [
        'actions.csv line 3, decisions "SB-2026-999": no decision SB-2026-999 in the register; '
        "import the decisions first, or give refs such as SB-2026-014."
    ]
    session.rollback()
    path.write_text(
        "ref,title,owner_partner,decisions\n"
        "TP-201,Build the register,torfaen,sb-2026-031 FG-2026-044\n",
        encoding="utf-8",
    )
    import_file(session, "actions", path, actor="test", now=NOW)
    session.commit()
    stored = session.scalars(select(Action).where(Action.ref == "TP-201")).one()
    assert stored.decision_refs == ["SB-2026-031", "FG-2026-044"]
    again = import_file(session, "actions", path, actor="test", now=NOW)
    assert again.updated == 0 and again.created == 0


def test_serve_starts_with_only_the_register_configured(
    database_url: str, seed: Seed, tmp_path: Path
) -> None:
    """`scrutiny-bot serve` with no Slack or Teams but sign-in to the register configured."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    script = Path(sys.executable).with_name("scrutiny-bot")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TEAMS_", "WEB_"))}
    env.update(
        DATABASE_URL=database_url,
        LOG_LEVEL="WARNING",
        WEB_SLACK_CLIENT_ID="register-client",
        WEB_SESSION_SECRET="x" * 40,
        WEB_BASE_URL=f"http://127.0.0.1:{port}",
    )
    served = subprocess.Popen(
        [*command, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        page = None
        for _ in range(300):
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/signin", timeout=2)
                break
            except httpx.TransportError:
                assert served.poll() is None, served.communicate()
                time.sleep(0.05)
        assert page is not None and page.status_code == 200
        assert "Sign in with Slack" in page.text and "example member" not in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json()["status"] == "ok"
    finally:
        served.terminate()
        _out, err = served.communicate(timeout=20)
    assert "serving the register alone" in err


def test_welsh_readers_get_the_welsh_title_and_summary(
    client: TestClient, session: Session, seed: Seed
) -> None:
    decision = seed.decisions["SB-2026-031"]
    decision.title_cy = "Cymeradwyo achos busnes symud y ganolfan ddata (cam 2)"
    decision.summary_cy = "Cymeradwyodd y bwrdd gam 2 y symud i ganolfan ddata Blaenafon."
    session.commit()
    sign_in(client, "eleri-jones")
    listing = client.get("/decisions").text
    assert "Cymeradwyo achos busnes symud y ganolfan ddata (cam 2)" in listing
    page = client.get("/decisions/SB-2026-031").text
    assert "Cymeradwyodd y bwrdd gam 2" in page
    sign_in(client, "sian-hughes")
    assert "Approved the data centre move business case" in client.get("/decisions").text
