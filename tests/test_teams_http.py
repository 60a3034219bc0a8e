"""Teams outgoing webhooks through the real endpoint: signatures, the same handlers as Slack,
answers within Teams' 5 seconds, and late answers queued for the channel."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session
from starlette.applications import Starlette

from bot.app import ScrutinyApp, create_app
from bot.domain import Marking, Platform
from bot.messages import Request
from bot.models import Channel, Delivery, Meeting, ProcessedEvent, Question
from bot.platforms.teams.webhook import MAX_REQUEST_BYTES, TeamsPlatform, build_teams, signature
from bot.settings import Settings, load_settings
from bot.web import create_web_app
from tests.conftest import NOW
from tests.factories import Seed

SECRET = base64.b64encode(b"teams outgoing webhook security token!").decode()
TEAM = "2b1c3d4e-0000-4000-8000-00000000aaaa"
THREAD = "19:torfaen0000000000000000000000000@thread.tacv2"
SIAN = "00000000-0000-0000-0000-000000R00001"
"""Sian Hughes (Torfaen, scrutiny member): the seed's Entra object id for U0TOR00001."""
CERI_SLACK = "U0SEC00001"


@pytest.fixture
def teams_settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        slack_bot_token=None,
        slack_signing_secret=None,
        teams_webhook_secret=SECRET,
    )


@pytest.fixture
def teams_app(teams_settings: Settings, engine: Engine, seed: Seed) -> ScrutinyApp:
    return create_app(teams_settings, engine)


@pytest.fixture
def channel(session: Session, seed: Seed) -> Channel:
    found = Channel(
        slug="teams-torfaen",
        name="Torfaen scrutiny",
        platform=Platform.TEAMS,
        external_id=f"{TEAM}/{THREAD}",
        partner=seed.partners["torfaen"],
        clearance=Marking.OFFICIAL,
        webhook_url="https://example.invalid/workflows/torfaen",
    )
    session.add(found)
    session.commit()
    return found


@pytest.fixture
def platform(teams_app: ScrutinyApp) -> TeamsPlatform:
    return build_teams(teams_app, clock=lambda: NOW)


class Client:
    """Posts to the ASGI app through httpx, as Teams would over HTTP."""

    def __init__(self, web: Starlette) -> None:
        self.web = web

    def post(self, path: str, *, content: bytes, headers: dict[str, str]) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.web)
            async with httpx.AsyncClient(transport=transport, base_url="https://bot") as http:
                return await http.post(path, content=content, headers=headers)

        return asyncio.run(send())


@pytest.fixture
def client(teams_app: ScrutinyApp, platform: TeamsPlatform) -> Client:
    return Client(create_web_app(teams_app, [platform]))


def activity(text: str, *, user: str = SIAN, ident: str = "1700000000001") -> dict[str, Any]:
    """An outgoing-webhook activity as Teams sends it for an @mention in a channel."""
    return {
        "type": "message",
        "id": ident,
        "timestamp": "2026-11-23T09:00:00.000Z",
        "channelId": "msteams",
        "serviceUrl": "https://smba.trafficmanager.net/emea/",
        "from": {"id": "29:1abc", "name": "Sian Hughes", "aadObjectId": user},
        "conversation": {
            "isGroup": True,
            "id": f"{THREAD};messageid={ident}",
            "conversationType": "channel",
        },
        "text": f"<at>Scrutiny</at>&nbsp;{text}\n",
        "textFormat": "plain",
        "channelData": {
            "teamsChannelId": THREAD,
            "teamsTeamId": "19:team@thread.tacv2",
            "channel": {"id": THREAD},
            "team": {"id": "19:team@thread.tacv2"},
            "tenant": {"id": "72f988bf-0000-0000-0000-000000000000"},
        },
    }


def post(client: Client, body: bytes, auth: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    return client.post("/teams/messages", content=body, headers=headers)


def signed(client: Client, data: dict[str, Any]) -> Any:
    body = json.dumps(data).encode()
    return post(client, body, f"HMAC {signature(SECRET, body)}")


def claimed(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(ProcessedEvent)) or 0


def test_a_member_queries_overdue_actions_by_mention_and_gets_html_within_the_deadline(
    client: Client, channel: Channel
) -> None:
    response = signed(client, activity("actions overdue torfaen"))
    assert response.status_code == 200
    reply = response.json()
    assert reply["type"] == "message"
    assert "<code>TP-001</code>" in reply["text"]
    assert "<b>Actions: overdue · Torfaen County Borough Council</b>" in reply["text"]
    # The channel is Official and not exempt: the exempt action is only counted.
    assert "left out because this channel isn't cleared" in reply["text"]


@pytest.mark.parametrize(
    "tamper",
    ["missing", "wrong scheme", "bad signature", "tampered body", "other secret", "not base64"],
)
def test_bad_or_missing_signatures_get_401_and_nothing_runs(
    client: Client, channel: Channel, engine: Engine, tamper: str
) -> None:
    body = json.dumps(activity("actions overdue torfaen")).encode()
    good = signature(SECRET, body)
    auth, sent = {
        "missing": (None, body),
        "wrong scheme": (f"Bearer {good}", body),
        "bad signature": ("HMAC " + base64.b64encode(b"x" * 32).decode(), body),
        "tampered body": (f"HMAC {good}", body.replace(b"torfaen", b"newport")),
        "other secret": (f"HMAC {signature(base64.b64encode(b'other').decode(), body)}", body),
        "not base64": ("HMAC ***", body),
    }[tamper]
    response = post(client, sent, auth)
    assert response.status_code == 401
    assert claimed(engine) == 0


def test_a_replayed_message_is_not_run_twice(
    client: Client, channel: Channel, engine: Engine
) -> None:
    first = signed(client, activity("actions overdue torfaen", ident="42"))
    again = signed(client, activity("actions overdue torfaen", ident="42"))
    assert "TP-001" in first.json()["text"]
    assert again.status_code == 200 and again.json()["text"] == ""
    assert claimed(engine) == 1


def test_a_member_submits_a_question_from_teams_through_the_same_handler(
    client: Client, channel: Channel, teams_app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    session.add(
        Meeting(
            board=seed.boards["business-collaboration"],
            starts_at=datetime(2026, 12, 17, 10, 0, tzinfo=UTC),
            location="Online",
        )
    )
    session.commit()
    opened = teams_app.dispatch(
        Request(
            Platform.SLACK, CERI_SLACK, "window open business 2026-12-17", is_direct=True, now=NOW
        )
    )
    assert "open until" in opened.text
    response = signed(
        client, activity("ask business 2026-12-17 When will the file shares move (TP-001)?")
    )
    assert response.status_code == 200
    assert "Q-BC-2026-12-" in response.json()["text"]
    [question] = session.scalars(select(Question)).all()
    assert question.text.startswith("When will the file shares move")


def test_unknown_people_and_html_in_their_words_are_answered_safely(
    client: Client, channel: Channel
) -> None:
    response = signed(client, activity("<b>hi</b> & <script>x</script>", user="nobody"))
    text = response.json()["text"]
    assert "<script>" not in text
    assert text.startswith("<b>")


def test_a_slow_command_is_acknowledged_and_its_answer_queued_for_the_channel(
    teams_app: ScrutinyApp,
    channel: Channel,
    engine: Engine,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow = TeamsPlatform(teams_app, SECRET, clock=lambda: NOW, reply_within=0.05)
    dispatch = teams_app.dispatch

    def slowly(request: Request, fmt: str = "txt") -> Any:
        time.sleep(0.4)
        return dispatch(request, fmt)

    monkeypatch.setattr(teams_app, "dispatch", slowly)
    response = signed(
        Client(create_web_app(teams_app, [slow])), activity("actions overdue torfaen", ident="s1")
    )
    assert response.status_code == 200
    assert "Working on it" in response.json()["text"]
    # Shutting down waits for the command, which queues its answer.
    asyncio.run(slow.shutdown())
    [delivery] = session.scalars(select(Delivery)).all()
    assert delivery.idempotency_key == "teams-reply:s1"
    assert delivery.channel_id == channel.id
    assert "TP-001" in delivery.payload["text"]


@pytest.mark.parametrize(
    "conversation",
    ["no channel data", "no conversation kind", "personal", "group chat", "channel, no id"],
)
def test_a_conversation_teams_does_not_name_gets_the_narrowest_audience(
    client: Client, channel: Channel, conversation: str
) -> None:
    # Sian may read the exempt TP-003 alone; an unnamed conversation is never taken for that.
    data = activity("action TP-003", ident=f"fail-closed-{conversation}")
    if conversation == "no channel data":
        del data["channelData"]
    elif conversation == "no conversation kind":
        del data["conversation"]["conversationType"]
    elif conversation == "personal":
        data["conversation"] = {"id": "a:1personal", "conversationType": "personal"}
        del data["channelData"]["channel"], data["channelData"]["teamsChannelId"]
    elif conversation == "group chat":
        data["conversation"] = {"id": "19:chat@thread.v2", "conversationType": "groupChat"}
    else:
        data["channelData"] = {"tenant": {"id": "72f988bf-0000-0000-0000-000000000000"}}
    text = signed(client, data).json()["text"]
    assert "Exempt contract renewal" not in text
    assert "not cleared" in text


def test_the_same_member_reads_the_item_in_a_cleared_channel(
    client: Client, channel: Channel, session: Session
) -> None:
    # The control for the test above: what withholds TP-003 there is the audience alone.
    channel.clearance = Marking.OFFICIAL_SENSITIVE
    channel.exempt_access = True
    session.commit()
    text = signed(client, activity("action TP-003", ident="cleared")).json()["text"]
    assert "Exempt contract renewal" in text


@pytest.mark.parametrize(
    "broken",
    [
        {"from": "str"},
        {"from": None},
        {"from": ["x"]},
        {"text": ["actions"]},
        {"id": 42},
        {"channelData": "x"},
        {"channelData": {"channel": []}},
        {"conversation": 1},
        {"channelData": {"teamsChannelId": "19:" + "x" * 100_000}},
    ],
)
def test_a_signed_body_that_is_not_a_teams_activity_gets_400_and_nothing_runs(
    client: Client, channel: Channel, engine: Engine, broken: dict[str, Any]
) -> None:
    response = signed(client, {**activity("actions overdue torfaen"), **broken})
    assert response.status_code == 400
    assert claimed(engine) == 0


@pytest.mark.parametrize("body", [b"not json", b"[]", b"null", b'"x"', b"[" * 100_000, b"\xff"])
def test_a_signed_body_that_is_not_json_gets_400(
    client: Client, engine: Engine, body: bytes
) -> None:
    response = post(client, body, f"HMAC {signature(SECRET, body)}")
    assert response.status_code == 400
    assert claimed(engine) == 0


def test_a_body_over_the_cap_is_refused_before_its_signature_is_read(
    client: Client, platform: TeamsPlatform
) -> None:
    body = b" " * (MAX_REQUEST_BYTES + 1)
    response = post(client, body, f"HMAC {signature(SECRET, body)}")
    assert response.status_code == 413
    assert platform.stats["too_large"] == 1 and platform.stats["refused"] == 0


def test_a_command_that_fails_inside_is_answered_politely_not_with_500(
    client: Client, channel: Channel, engine: Engine, platform: TeamsPlatform
) -> None:
    # As on a database whose schema is behind: claiming the message id fails.
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE processed_events RENAME TO processed_events_away"))
    try:
        response = signed(client, activity("actions overdue torfaen", ident="broken"))
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE processed_events_away RENAME TO processed_events"))
    assert response.status_code == 200
    assert "Something went wrong on our side" in response.json()["text"]
    assert platform.stats["failed"] == 1
