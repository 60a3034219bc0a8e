"""Teams posts link the bot's earlier posts with Microsoft's deep links to a message: the call
for questions goes to a Teams channel (a new thread) and a group chat through the real Teams
SDK client and the local Bot Connector; the answer, posted later, links the call's activity.
Then the URL forms themselves, ids with `:`, `@` and `;` escaped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp, create_app
from bot.domain import Marking, Platform
from bot.models import Channel, PostedMessage
from bot.permalinks import PostLinks, PostRef, format_link
from bot.platforms.registry import messengers
from bot.platforms.teams.connector_messenger import ConnectorMessenger
from bot.services import earlier_posts
from tests.factories import Seed
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.token_issuer import CLIENT_SECRET, TENANT_ID, FakeTokenIssuer
from tests.support.cards import assert_valid_card
from tests.support.teams import GROUP_CHAT, PERSONAL, THREAD, send
from tests.test_questions import BUSINESS, SECRETARIAT, SPEC, TORFAEN, add_meeting, ref_of, say
from tests.test_teams_credentials import teams_settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

GROUP = "6b1c3a53-3e0c-4f3a-9d55-0c2f7e4b5a10"
"""The team's Entra (Microsoft 365) group id, the first part of a channel's external_id."""
LINK = "https://teams.microsoft.com/l/message/"


@pytest.fixture
def teams_app(
    database_url: str,
    engine: Engine,
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
) -> Iterator[ScrutinyApp]:
    settings = teams_settings(database_url, issuer, connector, teams_client_secret=CLIENT_SECRET)
    yield create_app(settings, engine)


@pytest.fixture
def messenger(teams_app: ScrutinyApp) -> ConnectorMessenger:
    found = messengers(teams_app.settings, teams_app.sessions)[Platform.TEAMS]
    assert isinstance(found, ConnectorMessenger)
    return found


def teams_channels(session: Session, seed: Seed) -> tuple[Channel, Channel]:
    """Torfaen's Teams channel and its members' group chat."""
    channel, chat = (
        Channel(
            slug=slug,
            name=name,
            platform=Platform.TEAMS,
            external_id=external_id,
            partner=seed.partners["torfaen"],
            clearance=Marking.OFFICIAL,
        )
        for slug, name, external_id in (
            ("teams-torfaen", "Torfaen scrutiny", f"{GROUP}/{THREAD}"),
            ("teams-torfaen-chat", "Torfaen members", GROUP_CHAT),
        )
    )
    session.add_all([channel, chat])
    session.commit()
    return channel, chat


def card_links(card: dict[str, Any]) -> list[str]:
    """The targets of the Markdown links in a card's text."""
    text = json.dumps(card)
    return [part.split(")", 1)[0] for part in text.split("](")[1:]]


def teams_links(card: dict[str, Any]) -> list[str]:
    return [url for url in card_links(card) if url.startswith(LINK)]


def test_an_answer_links_the_call_for_questions_in_a_channel_thread_and_a_group_chat(
    teams_app: ScrutinyApp,
    messenger: ConnectorMessenger,
    connector: FakeBotConnector,
    seed: Seed,
    session: Session,
) -> None:
    meeting = add_meeting(session, seed, "business-collaboration", BUSINESS)
    channel, chat = teams_channels(session, seed)
    say(teams_app, SECRETARIAT, f"window open {SPEC}")
    assert send(teams_app, messenger).sent == 2
    [created] = connector.calls_of("create")
    [sent_to_chat] = connector.calls_of("send")
    assert sent_to_chat.conversation_id == GROUP_CHAT
    call_ids = {
        key: earlier_posts.sent_post(session, earlier_posts.window_call_key(meeting.id, c.slug))
        for key, c in (("channel", channel), ("chat", chat))
    }
    channel_call, chat_call = call_ids["channel"], call_ids["chat"]
    assert channel_call is not None and chat_call is not None
    assert connector.posted[channel_call.message_id] == created.body["activity"]
    assert connector.posted[chat_call.message_id] == sent_to_chat.body

    asked = ref_of(say(teams_app, TORFAEN, f"ask {SPEC} Is the data centre move on budget?"))
    say(teams_app, SECRETARIAT, f"accept {asked}")
    say(teams_app, SECRETARIAT, f"answer {asked} Yes, within 2%.")
    assert send(teams_app, messenger).sent == 2

    # In the channel, the answer replies in the call's thread and links the call.
    replies = {c.conversation_id: c for c in connector.calls_of("reply")}
    replied = replies[f"{THREAD};messageid={channel_call.message_id}"]
    [answer_card] = replied.cards
    assert_valid_card(answer_card)
    assert "Yes, within 2%." in json.dumps(answer_card)
    [link] = teams_links(answer_card)
    address = urlsplit(link)
    conversation, message = (unquote(p) for p in address.path.split("/")[-2:])
    assert (conversation, message) == (THREAD, channel_call.message_id)
    assert parse_qs(address.query) == {
        "tenantId": [TENANT_ID],
        "groupId": [GROUP],
        "parentMessageId": [channel_call.message_id],
        "createdTime": [channel_call.message_id],
    }

    # In the group chat (no threads: the reply quotes the call), the answer links the call.
    chat_answer = replies[GROUP_CHAT]
    [chat_card] = chat_answer.cards
    assert_valid_card(chat_card)
    [chat_link] = teams_links(chat_card)
    address = urlsplit(chat_link)
    conversation, message = (unquote(p) for p in address.path.split("/")[-2:])
    assert (conversation, message) == (GROUP_CHAT, chat_call.message_id)
    assert message in connector.posted
    assert json.loads(parse_qs(address.query)["context"][0]) == {"contextType": "chat"}

    # The reply's thread was recorded as it was sent, so a link to the answer itself names
    # the call as its thread's first post.
    answer_post = earlier_posts.sent_post(session, f"answer:{asked}:{channel.slug}")
    assert answer_post is not None and answer_post.thread == channel_call.message_id
    to_answer = urlsplit(teams_app.renderer.post_links.url(answer_post) or "")
    assert parse_qs(to_answer.query)["parentMessageId"] == [channel_call.message_id]
    assert parse_qs(to_answer.query)["createdTime"] == [answer_post.message_id]
    recorded = session.scalars(
        select(PostedMessage.thread_id).where(PostedMessage.channel == channel.external_id)
    ).all()
    assert set(recorded) == {None, channel_call.message_id}


# -- the URL forms ----------------------------------------------------------------------------
LINKS = PostLinks(teams_tenant_id=TENANT_ID)


def test_a_channel_post_links_with_the_tenant_the_team_and_its_thread() -> None:
    root = LINKS.url(PostRef("teams", f"{GROUP}/19:abc@thread.tacv2", "1712000000001"))
    assert root == (
        f"{LINK}19:abc@thread.tacv2/1712000000001?tenantId={TENANT_ID}&groupId={GROUP}"
        "&parentMessageId=1712000000001&createdTime=1712000000001"
    )
    reply = PostRef("teams", f"{GROUP}/19:abc@thread.tacv2", "1712000000009", thread="1712")
    assert "parentMessageId=1712&createdTime=1712000000009" in (LINKS.url(reply) or "")
    # A thread's conversation id names its first post after ";messageid=".
    in_thread = PostRef("teams", f"{GROUP}/19:abc@thread.tacv2;messageid=1712", "1712000000009")
    assert LINKS.url(in_thread) == LINKS.url(reply)
    # Older channels' ids end @thread.skype.
    assert (LINKS.url(PostRef("teams", f"{GROUP}/19:old@thread.skype", "17")) or "").startswith(
        f"{LINK}19:old@thread.skype/17?tenantId="
    )


def test_ids_are_escaped_so_they_cannot_break_the_address() -> None:
    odd = PostRef("teams", f"{GROUP}/19:a b;c?d#e&f@thread.tacv2", "1712")
    url = LINKS.url(odd) or ""
    path = urlsplit(url).path
    # `:` and `@` may stand in a path (RFC 3986 pchar) and do in Microsoft's examples.
    assert path == "/l/message/19:a%20b%3Bc%3Fd%23e%26f@thread.tacv2/1712"
    assert unquote(path.split("/")[3]) == "19:a b;c?d#e&f@thread.tacv2"
    chat = LINKS.url(PostRef("teams", "19:x_y@unq.gbl.spaces", "1:2/3"))
    assert chat == (
        f"{LINK}19:x_y@unq.gbl.spaces/1%3A2%2F3?context=%7B%22contextType%22%3A%22chat%22%7D"
    )
    # In a card the link is Markdown; nothing in an id ends it early.
    shown = format_link("The call for questions", url, "teams.json")
    assert shown == f"[The call for questions]({url})"
    assert_valid_card(
        {
            "type": "AdaptiveCard",
            "version": "1.5",
            "body": [{"type": "TextBlock", "text": shown, "wrap": True}],
        }
    )


@pytest.mark.parametrize(
    ("post", "links"),
    [
        # No tenant: Teams could not open the channel's message.
        (PostRef("teams", f"{GROUP}/{THREAD}", "1712"), PostLinks()),
        # A channel given by its thread id alone, or under a team id that is not its group id.
        (PostRef("teams", THREAD, "1712"), LINKS),
        (PostRef("teams", f"19:team@thread.tacv2/{THREAD}", "1712"), LINKS),
        # A channel message's id is its creation time; anything else is not one.
        (PostRef("teams", f"{GROUP}/{THREAD}", "not-a-time"), LINKS),
        # The Bot Connector's id of a personal conversation is no chat id Teams can open.
        (PostRef("teams", PERSONAL, "1712"), LINKS),
        (PostRef("teams", "19:old-group-chat-or-channel@thread.skype", "1712"), LINKS),
        (PostRef("teams", GROUP_CHAT, ""), LINKS),
        (None, LINKS),
    ],
)
def test_no_link_where_teams_could_not_open_it(post: PostRef | None, links: PostLinks) -> None:
    assert links.url(post) is None


def test_slack_and_teams_links_come_from_one_post_links() -> None:
    both = PostLinks("https://srs.slack.com", TENANT_ID)
    assert both.url(PostRef("slack", "C0TOR00001", "1700000000.000100")) == (
        "https://srs.slack.com/archives/C0TOR00001/p1700000000000100"
    )
    assert (both.url(PostRef("teams", GROUP_CHAT, "1712")) or "").startswith(LINK)
