"""Askers and supporters are told, in a direct message of their own, when the secretariat
accepts, rejects, merges or answers their question: through the real Slack endpoint, the
real dispatcher, the scheduler and the outbox posting to the fake Slack Web API."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.domain import DeliveryState, Marking, Platform, Role
from bot.i18n import Translator
from bot.models import DIRECT_CHANNELS, Channel, Delivery, Member, Question, QuestionSupport
from bot.scheduler import run_question_posts, run_schedules, send_due
from bot.services.direct_messages import direct_channel
from bot.services.questions import core as questions
from bot.services.questions import posts as question_posts
from bot.visibility import audience_of_member
from tests.conftest import NOW
from tests.factories import Seed
from tests.fakes.slack_api import SlackSender
from tests.fakes.slack_limits import LimitedSlackApi
from tests.outbox_support import sender_for
from tests.test_questions import add_meeting, add_partner_channels
from tests.test_slack_http import texts
from tests.test_slack_questions import (
    BUSINESS,
    MONMOUTHSHIRE,
    MONMOUTHSHIRE_CHANNEL,
    NEWPORT,
    NEWPORT_CHANNEL,
    POLICE,
    POLICE_CHANNEL,
    SECRETARIAT_CHANNEL,
    SECRETARY,
    SPEC,
    TORFAEN,
    command,
    db,
    fake,
    platform,
    posts_by_key,
    ref_in,
    slack,
    slack_app,
    worker,
)

__all__ = ["db", "fake", "platform", "slack", "slack_app"]  # fixtures used by name

USERS = (TORFAEN, POLICE, NEWPORT, MONMOUTHSHIRE, SECRETARY)


def direct_posts(fake: LimitedSlackApi) -> dict[str, str]:
    """Text of each post to a member (a Slack user id, not a channel), by its key."""
    found: dict[str, str] = {}
    for call in fake.calls_to("chat.postMessage"):
        key = str(((call.body.get("metadata") or {}).get("event_payload") or {}).get("key", ""))
        if call.ok and str(call.body["channel"]) in USERS:
            found[key] = texts(call.body)
    return found


def questions_with_every_fate(
    slack: SlackSender, session: Session, seed: Seed, slack_app: ScrutinyApp
) -> dict[str, str]:
    """Torfaen asks (Monmouthshire supports), the police ask the same (merged into it),
    Newport asks (rejected); the first is accepted. The refs by name."""
    add_meeting(session, seed, "business-collaboration", BUSINESS)
    add_partner_channels(session, seed)
    command(slack, SECRETARY, f"window open {SPEC}", channel=SECRETARIAT_CHANNEL)
    asked = ref_in(command(slack, TORFAEN, f"ask {SPEC} When will the file shares move to "
                           "SharePoint Online? theme:delivery"))  # fmt: skip
    command(slack, MONMOUTHSHIRE, f"support {asked}", channel=MONMOUTHSHIRE_CHANNEL)
    same = ref_in(command(slack, POLICE, f"ask! {SPEC} When will the file shares be moved to "
                          "SharePoint Online?", channel=POLICE_CHANNEL))  # fmt: skip
    odd = ref_in(command(slack, NEWPORT, f"ask {SPEC} Please list every laptop and who has "
                         "it.", channel=NEWPORT_CHANNEL))  # fmt: skip
    command(slack, SECRETARY, f"merge {same} into {asked}", channel=SECRETARIAT_CHANNEL)
    command(
        slack,
        SECRETARY,
        f"reject {odd} Asset lists are in the monthly service report.",
        channel=SECRETARIAT_CHANNEL,
    )
    command(slack, SECRETARY, f"accept {asked}", channel=SECRETARIAT_CHANNEL)
    return {"asked": asked, "same": same, "odd": odd}


def test_each_decision_reaches_each_asker_and_supporter_once_in_their_language(
    slack: SlackSender,
    fake: LimitedSlackApi,
    slack_app: ScrutinyApp,
    seed: Seed,
    session: Session,
    db: Session,
) -> None:
    refs = questions_with_every_fate(slack, session, seed, slack_app)
    asked, same, odd = refs["asked"], refs["same"], refs["odd"]
    worker(slack_app, fake, NOW)
    worker(slack_app, fake, NOW + timedelta(minutes=1))

    decided = {
        (TORFAEN, f"notify:{asked}:accepted:sian-hughes"),
        (MONMOUTHSHIRE, f"notify:{asked}:accepted:eleri-jones"),
        # The police asker became a supporter when the question was merged, before acceptance.
        (POLICE, f"notify:{asked}:accepted:rhys-evans"),
        (POLICE, f"notify:{same}:merged:rhys-evans"),
        (NEWPORT, f"notify:{odd}:rejected:tom-price"),
    }
    assert posts_by_key(fake, "notify:") == Counter(dict.fromkeys(decided, 1))
    told = direct_posts(fake)
    assert (
        "Asset lists are in the monthly service report." in told[f"notify:{odd}:rejected:tom-price"]
    )
    assert f"merged into {asked}" in told[f"notify:{same}:merged:rhys-evans"]
    assert "has been accepted" in told[f"notify:{asked}:accepted:sian-hughes"]
    welsh = told[f"notify:{asked}:accepted:eleri-jones"]
    assert "Derbyniwyd" in welsh
    assert "has been accepted" not in welsh

    # The answer reaches the asker and both supporters once, however often the worker runs.
    command(
        slack,
        SECRETARY,
        f"answer {asked} The migration finishes in March 2027.",
        channel=SECRETARIAT_CHANNEL,
    )
    for minutes in (2, 3):
        worker(slack_app, fake, NOW + timedelta(minutes=minutes))
    answered = {
        (TORFAEN, f"notify:{asked}:answered:sian-hughes"),
        (MONMOUTHSHIRE, f"notify:{asked}:answered:eleri-jones"),
        (POLICE, f"notify:{asked}:answered:rhys-evans"),
    }
    assert posts_by_key(fake, "notify:") == Counter(dict.fromkeys(decided | answered, 1))
    assert (
        "The migration finishes in March 2027."
        in direct_posts(fake)[f"notify:{asked}:answered:sian-hughes"]
    )
    assert fake.duplicates() == {}


def test_no_other_post_ever_lands_in_a_direct_message(
    slack: SlackSender,
    fake: LimitedSlackApi,
    slack_app: ScrutinyApp,
    seed: Seed,
    session: Session,
    db: Session,
) -> None:
    refs = questions_with_every_fate(slack, session, seed, slack_app)
    command(slack, SECRETARY, "remind #srs-torfaen 2026-11-23 09:30 Papers due",
            channel=SECRETARIAT_CHANNEL)  # fmt: skip
    worker(slack_app, fake, NOW)
    command(slack, SECRETARY, f"answer {refs['asked']} In March 2027.", channel=SECRETARIAT_CHANNEL)
    command(slack, SECRETARY, f"window close {SPEC}", channel=SECRETARIAT_CHANNEL)
    # Announcements, the pack, answers, a reminder and the Monday digest all go out.
    for hours in (1, 2, 24 * 7):
        worker(slack_app, fake, NOW + timedelta(hours=hours))
    keys_by_target: dict[str, set[str]] = {}
    for call in fake.calls_to("chat.postMessage"):
        key = str(((call.body.get("metadata") or {}).get("event_payload") or {}).get("key", ""))
        if call.ok and key:
            keys_by_target.setdefault(str(call.body["channel"]), set()).add(key.split(":")[0])
    assert {"window-open", "question-pack", "answer", "digest"} <= set().union(
        *(keys_by_target.get(c, set()) for c in ("C0TOR00001", "C0SEC00001", "C0NEW00001"))
    )
    direct = {user: keys_by_target.get(user, set()) for user in USERS}
    assert all(kinds <= {"notify"} for kinds in direct.values()), direct
    assert direct[TORFAEN] == {"notify"}

    # Every channel-selection query skips the direct channels; only the outbox asks for them.
    everything = db.scalars(select(Channel).execution_options(**{DIRECT_CHANNELS: True})).all()
    hidden = {c.slug for c in everything if c.direct_member_id is not None}
    assert hidden, "the notices made direct channels"
    assert hidden.isdisjoint(db.scalars(select(Channel.slug)))
    assert hidden.isdisjoint(c.slug for c in db.scalars(select(Channel)))
    meeting = db.scalar(select(Question).where(Question.ref == refs["asked"]))
    assert meeting is not None
    assert hidden.isdisjoint(
        c.slug for c in question_posts.announcement_channels(db, meeting.meeting)
    )
    assert hidden.isdisjoint(c.slug for c in question_posts.answer_channels(db, meeting))
    assert hidden.isdisjoint(c.slug for c in question_posts.secretariat_channels(db))


def test_a_police_only_question_is_told_only_to_those_cleared_for_it(
    slack: SlackSender,
    fake: LimitedSlackApi,
    slack_app: ScrutinyApp,
    seed: Seed,
    session: Session,
    db: Session,
) -> None:
    add_meeting(session, seed, "business-collaboration", BUSINESS)
    command(slack, SECRETARY, f"window open {SPEC}", channel=SECRETARIAT_CHANNEL)
    ref = ref_in(command(slack, POLICE, f"ask {SPEC} How is the custody suite network "
                         "protected?", channel=POLICE_CHANNEL))  # fmt: skip
    question = db.scalar(select(Question).where(Question.ref == ref))
    assert question is not None
    # Police only, with a Torfaen member among its supporters (added before it was restricted).
    question.restricted_to = ["gwent-police"]
    db.add(
        QuestionSupport(
            question=question,
            member_id=seed.members["sian-hughes"].id,
            partner_id=seed.partners["torfaen"].id,
            created_at=NOW - timedelta(hours=1),
        )
    )
    db.commit()
    # The secretariat's channel may not read it; it is accepted where the police may.
    police = seed.members["rhys-evans"]
    zone = slack_app.settings.timezone
    questions.accept(
        db, ref, audience_of_member(police), actor="ceri-morgan", now=NOW, t=Translator("en", zone)
    )
    db.commit()
    run_schedules(slack_app, NOW)
    queued = db.scalars(select(Delivery.idempotency_key).where(Delivery.kind == "question-notice"))
    assert set(queued) == {f"notify:{ref}:accepted:rhys-evans"}

    # The police member loses clearance for it before the notice is sent: it is cancelled.
    police = db.get(Member, police.id)
    assert police is not None
    police.partner_id = seed.partners["torfaen"].id
    db.commit()
    send_due(slack_app, sender=sender_for(slack_app, fake))
    notice = db.scalar(select(Delivery).where(Delivery.kind == "question-notice"))
    assert notice is not None
    db.refresh(notice)
    assert notice.state is DeliveryState.CANCELLED
    assert posts_by_key(fake, "notify:") == Counter()


def test_a_member_known_only_to_teams_is_skipped_and_counted(
    slack: SlackSender,
    fake: LimitedSlackApi,
    slack_app: ScrutinyApp,
    seed: Seed,
    session: Session,
    db: Session,
) -> None:
    add_meeting(session, seed, "business-collaboration", BUSINESS)
    command(slack, SECRETARY, f"window open {SPEC}", channel=SECRETARIAT_CHANNEL)
    ref = ref_in(command(slack, TORFAEN, f"ask {SPEC} Who owns the backup plan?"))
    teams_only = Member(
        slug="gwyn-teams",
        name="Gwyn Teams",
        partner_id=seed.partners["newport"].id,
        roles=[Role.SCRUTINY_MEMBER.value],
        clearance=Marking.OFFICIAL,
        language="cy",
        entra_object_id="00000000-0000-0000-0000-00000000abcd",
    )
    db.add(teams_only)
    db.flush()
    question = db.scalar(select(Question).where(Question.ref == ref))
    assert question is not None
    db.add(
        QuestionSupport(
            question=question,
            member_id=teams_only.id,
            partner_id=teams_only.partner_id,
            created_at=NOW - timedelta(hours=1),
        )
    )
    db.commit()
    command(slack, SECRETARY, f"reject {ref} Covered by TP-001.", channel=SECRETARIAT_CHANNEL)
    report = run_question_posts(slack_app, NOW)
    assert (report.notices, report.unreachable) == (1, 1)
    send_due(slack_app, sender=sender_for(slack_app, fake))
    assert set(posts_by_key(fake, "notify:")) == {(TORFAEN, f"notify:{ref}:rejected:sian-hughes")}
    # Running again owes nothing new and still sends nothing to the Teams-only member.
    assert run_question_posts(slack_app, NOW).notices == 0


def test_a_direct_channel_follows_its_members_clearance(session: Session, seed: Seed) -> None:
    member = seed.members["rhys-evans"]
    channel = direct_channel(session, member)
    assert channel is not None
    assert (channel.platform, channel.external_id) == (Platform.SLACK, "U0POL00001")
    assert (channel.clearance, channel.exempt_access) == (Marking.OFFICIAL_SENSITIVE, True)
    session.commit()
    member.clearance = Marking.OFFICIAL
    member.exempt_access = False
    session.commit()
    session.refresh(channel)
    assert (channel.clearance, channel.exempt_access) == (Marking.OFFICIAL, False)
    assert channel.partner_id == member.partner_id


def test_board_members_get_their_boards_packs_and_answers_directly(
    slack: SlackSender,
    fake: LimitedSlackApi,
    slack_app: ScrutinyApp,
    seed: Seed,
    session: Session,
    db: Session,
) -> None:
    meeting = add_meeting(session, seed, "business-collaboration", BUSINESS)
    add_partner_channels(session, seed)
    board = seed.boards["business-collaboration"]
    board.members.append(seed.members["tom-price"])  # board-member, Newport, OFFICIAL only
    session.commit()
    command(slack, SECRETARY, f"window open {SPEC}", channel=SECRETARIAT_CHANNEL)
    asked = ref_in(command(slack, TORFAEN, f"ask {SPEC} Who tests the restore of backups?"))
    secret = ref_in(command(slack, POLICE, f"ask {SPEC} Which custody systems lack backups?",
                            channel=POLICE_CHANNEL))  # fmt: skip
    question = db.scalar(select(Question).where(Question.ref == secret))
    assert question is not None
    question.marking = Marking.OFFICIAL_SENSITIVE
    db.commit()
    for ref in (asked, secret):
        command(slack, SECRETARY, f"accept {ref}", channel=SECRETARIAT_CHANNEL)
    command(slack, SECRETARY, f"window close {SPEC}", channel=SECRETARIAT_CHANNEL)
    for minutes in (60, 61):
        worker(slack_app, fake, NOW + timedelta(minutes=minutes))
    packs = posts_by_key(fake, f"pack:{meeting.id}:")
    assert [(user, key.split(":")[2]) for user, key in packs] == [(NEWPORT, "tom-price")]
    assert list(packs.values()) == [1]
    [pack_key] = [key for _, key in packs]
    pack = direct_posts(fake)[pack_key]
    assert "Who tests the restore of backups?" in pack
    assert "custody" not in pack  # not cleared for the OFFICIAL-SENSITIVE question

    command(slack, SECRETARY, f"answer {asked} Every quarter.", channel=SECRETARIAT_CHANNEL)
    command(slack, SECRETARY, f"answer {secret} All have them.", channel=SECRETARIAT_CHANNEL)
    for minutes in (62, 63):
        worker(slack_app, fake, NOW + timedelta(minutes=minutes))
    to_board = {key for user, key in posts_by_key(fake, "notify:") if user == NEWPORT}
    assert to_board == {f"notify:{asked}:answered:tom-price"}
    told = direct_posts(fake)[f"notify:{asked}:answered:tom-price"]
    assert "as a member of the Business" in told and "Every quarter." in told

    board_help = texts(command(slack, NEWPORT, "help", channel=NEWPORT_CHANNEL).body)
    assert "As a board member of the Business" in board_help
    assert "As a board member" not in texts(command(slack, TORFAEN, "help").body)
