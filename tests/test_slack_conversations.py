"""Slack conversations beyond channels and 1:1 DMs, through signed requests to our real
endpoint: group DMs (answered for everyone in them), a DM in a thread, and the global
shortcut "Ask a scrutiny question"."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import Question
from tests import test_slack_http
from tests.fakes.slack_api import BOT_USER_ID, FakeSlackApi, SlackSender
from tests.test_slack_http import texts

fake, slack_app, platform, slack, db = (
    test_slack_http.fake,
    test_slack_http.slack_app,
    test_slack_http.platform,
    test_slack_http.slack,
    test_slack_http.db,
)
TORFAEN, POLICE, MONMOUTHSHIRE = "U0TOR00001", "U0POL00001", "U0MON00001"
GROUP = "G0GRP00001"


def group_message(user: str, text: str, ts: str = "1700000400.000100", **extra: Any) -> dict:
    """A `message.mpim` event: a message in a group DM."""
    return {
        "type": "message",
        "channel_type": "mpim",
        "channel": GROUP,
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        **extra,
    }


def group_mention(user: str, text: str, ts: str = "1700000400.000100") -> dict:
    """The `app_mention` Slack may send for the same message (it carries no channel_type)."""
    return {"type": "app_mention", "channel": GROUP, "user": user, "text": text, "ts": ts}


def answer_in_group(
    slack: SlackSender,
    fake: FakeSlackApi,
    members: list[str],
    user: str,
    text: str,
    ts: str = "1700000400.000100",
) -> str:
    """Ask in a group DM of `members` (and the bot); the answer's text, checked to be in the
    message's thread."""
    fake.group_dms[GROUP] = [*members, BOT_USER_ID]
    before = len(fake.calls_to("chat.postMessage"))
    event = group_message(user, f"<@{BOT_USER_ID}> {text}", ts)
    assert slack.event(event).status_code == 200
    call = fake.wait_for("chat.postMessage", before + 1)[-1]
    assert call.body["channel"] == GROUP
    assert call.body["thread_ts"] == ts
    return texts(call.body)


# -- group DMs ----------------------------------------------------------------------------------
def test_group_dm_is_answered_for_the_least_cleared_member_in_it(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    # Sian may read exempt items; Eleri may not: in a group DM with both, TP-003 stays out.
    out = answer_in_group(slack, fake, [TORFAEN, MONMOUTHSHIRE], TORFAEN, "action TP-003")
    assert "Exempt contract renewal" not in out
    assert "not cleared" in out
    # Every page of members was read (two per page on the fake: three members, two pages).
    assert len(fake.calls_to("conversations.members")) == 2


def test_group_dm_of_members_all_cleared_sees_what_they_all_may(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    out = answer_in_group(slack, fake, [TORFAEN, POLICE], TORFAEN, "action TP-003")
    assert "Exempt contract renewal" in out


def test_group_dm_never_shows_one_partners_restricted_item_to_another(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    # Rhys (police) reads TP-004 alone; with Sian (Torfaen) in the conversation he does not.
    out = answer_in_group(slack, fake, [POLICE, TORFAEN], POLICE, "action TP-004")
    assert "Police-only network segregation" not in out


def test_group_dm_with_someone_unknown_reads_as_an_unregistered_channel(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    out = answer_in_group(slack, fake, [POLICE, "U0STRANGER"], POLICE, "action TP-004")
    assert "Police-only network segregation" not in out
    second = "1700000400.000900"  # another message
    out = answer_in_group(slack, fake, [TORFAEN, "U0STRANGER"], TORFAEN, "action TP-001", second)
    assert "Migrate file shares" in out  # an open item still answers


def test_group_dm_message_and_its_app_mention_twin_are_answered_once(
    slack: SlackSender, fake: FakeSlackApi, platform: Any
) -> None:
    fake.group_dms[GROUP] = [TORFAEN, POLICE, BOT_USER_ID]
    text = f"<@{BOT_USER_ID}> meetings"
    assert slack.event(group_mention(TORFAEN, text)).status_code == 200
    assert slack.event(group_message(TORFAEN, text)).status_code == 200
    fake.wait_until(lambda: platform.stats["events_handled"] == 2)
    fake.wait_until(lambda: platform.health()["working"] == 0)
    assert len(fake.calls_to("chat.postMessage")) == 1
    # The app_mention said nothing of the kind of conversation: the bot asked, once.
    assert len(fake.calls_to("conversations.info")) == 1


def test_group_dm_chatter_without_a_mention_of_the_bot_is_not_answered(
    slack: SlackSender, fake: FakeSlackApi, platform: Any
) -> None:
    fake.group_dms[GROUP] = [TORFAEN, POLICE, BOT_USER_ID]
    slack.event(group_message(TORFAEN, "<@U0POL00001> meetings later?"))
    slack.event(group_message(TORFAEN, f"<@{BOT_USER_ID}> meetings", ts="1700000400.000200"))
    call = fake.wait_for("chat.postMessage")[0]
    assert call.body["thread_ts"] == "1700000400.000200"
    fake.wait_until(lambda: platform.health()["working"] == 0)
    assert len(fake.calls_to("chat.postMessage")) == 1


def test_group_dm_whose_members_cannot_be_listed_gets_no_answer(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    fake.group_dms[GROUP] = [POLICE, TORFAEN, BOT_USER_ID]
    fake.fail_next("conversations.members", 200, error="missing_scope")
    slack.event(group_message(POLICE, f"<@{BOT_USER_ID}> action TP-004"))
    out = texts(fake.wait_for("chat.postMessage")[0].body)
    assert "could not see who is in this conversation" in out
    assert "Police-only" not in out


def test_channel_mention_is_still_answered_for_the_channel(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    event = {
        "type": "app_mention",
        "channel": "C0TOR00001",
        "user": TORFAEN,
        "text": f"<@{BOT_USER_ID}> action TP-003",
        "ts": "1700000500.000100",
    }
    slack.event(event)
    out = texts(fake.wait_for("chat.postMessage")[0].body)
    assert "Exempt contract renewal" not in out  # #srs-torfaen is not cleared for it
    assert fake.calls_to("conversations.members") == []


# -- a DM in a thread ----------------------------------------------------------------------------
def test_direct_message_in_a_thread_is_answered_in_that_thread(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    event = {
        "type": "message",
        "channel_type": "im",
        "channel": "D0TOR00001",
        "user": TORFAEN,
        "text": "action TP-003",
        "ts": "1700000600.000200",
        "thread_ts": "1700000600.000100",
    }
    slack.event(event)
    call = fake.wait_for("chat.postMessage")[0]
    assert (call.body["channel"], call.body["thread_ts"]) == ("D0TOR00001", "1700000600.000100")
    assert "Exempt contract renewal" in texts(call.body)  # she reads her DM alone


# -- the global shortcut -------------------------------------------------------------------------
def test_global_shortcut_opens_the_ask_form_and_the_question_is_stored(
    slack: SlackSender, fake: FakeSlackApi, seed: Any, db: Session
) -> None:
    payload = {
        "type": "shortcut",
        "callback_id": "question.ask",
        "trigger_id": "trigger-global",
        "user": {"id": TORFAEN},
    }
    assert slack.interaction(payload).status_code == 200
    call = fake.wait_for("views.open")[0]
    assert call.body["trigger_id"] == "trigger-global"
    view = call.body["view"]
    assert view["callback_id"] == "question.ask"  # the one ask form
    [question_input] = [b for b in view["blocks"] if b.get("block_id") == "question"]
    assert not question_input["element"].get("initial_value")
    words = "Which partners still run their own email gateways?"
    values = {
        "meeting": {
            "type": "static_select",
            "selected_option": {
                "value": str(seed.meetings[0].id),
                "text": {"type": "plain_text", "text": "m"},
            },
        },
        "question": {"type": "plain_text_input", "value": words},
    }
    assert slack.submit(TORFAEN, view, values).status_code == 200
    confirmation = fake.wait_for("chat.postMessage")[0]
    assert confirmation.body["channel"] == TORFAEN  # opened from nowhere: told in a DM
    db.expire_all()
    assert db.scalar(select(Question.text)) == words


def test_a_global_shortcut_that_is_not_ours_is_refused(slack: SlackSender) -> None:
    payload = {"type": "shortcut", "callback_id": "other.app", "user": {"id": TORFAEN}}
    assert slack.interaction(payload).status_code == 400
