"""Property: no read path shows an item its audience is not cleared for, and what is withheld
is counted exactly. Random actions and decisions (markings, Schedule 12A paragraphs, partner
restrictions) go into the database; random audiences read them through every query service
and through the handlers' rendered replies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.domain import ActionStatus, Marking, Platform
from bot.messages import Request
from bot.models import Action, Channel, Decision, Member
from bot.services import queries
from bot.visibility import (
    UNKNOWN_READERS,
    Audience,
    audience_of_channel,
    audience_of_member,
    can_see,
)
from tests.conftest import NOW
from tests.factories import PARTNERS, Seed

TODAY = NOW.date()
PARTNER_SLUGS = [slug for slug, *_ in PARTNERS]
BOARD_SLUGS = ["strategic", "finance-governance", "business-collaboration"]
WORD = "widget"
"""Every generated title carries it, so text searches reach every item."""

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Spec:
    """A generated item's classification, checked against `can_see` independently of the DB."""

    marking: Marking
    exempt_paragraph: int | None
    restricted_to: tuple[str, ...]
    partner: str
    offset: int | None
    status: ActionStatus
    board: str


spec = st.builds(
    Spec,
    marking=st.sampled_from(list(Marking)),
    # Mostly none or 12-18; sometimes a paragraph outside Schedule 12A's range (must be denied).
    exempt_paragraph=st.one_of(
        st.none(), st.none(), st.integers(12, 18), st.sampled_from([1, 11, 19])
    ),
    restricted_to=st.one_of(
        st.just(()), st.lists(st.sampled_from(PARTNER_SLUGS), unique=True, max_size=3).map(tuple)
    ),
    partner=st.sampled_from(PARTNER_SLUGS),
    offset=st.one_of(st.none(), st.integers(-40, 40)),
    status=st.sampled_from(list(ActionStatus)),
    board=st.sampled_from(BOARD_SLUGS),
)
audience = st.builds(
    Audience,
    clearance=st.sampled_from(list(Marking)),
    exempt_access=st.booleans(),
    readers=st.one_of(
        st.frozensets(st.sampled_from(PARTNER_SLUGS), min_size=1, max_size=3),
        st.just(frozenset({UNKNOWN_READERS})),
    ),
)


def action_ref(n: int) -> str:
    return f"TP-{700 + n}"


def decision_ref(n: int) -> str:
    return f"SB-2026-{700 + n}"


def store(session: Session, seed: Seed, actions: list[Spec], decisions: list[Spec]) -> None:
    """Replace every action and decision with the generated ones."""
    session.execute(delete(Action))
    session.execute(delete(Decision))
    for n, s in enumerate(actions):
        session.add(
            Action(
                ref=action_ref(n),
                title=f"{WORD} plan {700 + n}",
                owner_partner_id=seed.partners[s.partner].id,
                owner="Owner",
                due_date=None if s.offset is None else TODAY + timedelta(days=s.offset),
                status=s.status,
                marking=s.marking,
                exempt_paragraph=s.exempt_paragraph,
                restricted_to=list(s.restricted_to),
            )
        )
    for n, s in enumerate(decisions):
        session.add(
            Decision(
                ref=decision_ref(n),
                board_id=seed.boards[s.board].id,
                decided_on=date(2026, 1, 1) + timedelta(days=abs(s.offset or 0) * 7),
                title=f"{WORD} decision {700 + n}",
                summary=f"About the {WORD}.",
                partners=[s.partner],
                marking=s.marking,
                exempt_paragraph=s.exempt_paragraph,
                restricted_to=list(s.restricted_to),
            )
        )
    session.commit()
    session.expunge_all()


def assert_page(
    page: queries.Page[Any], who: Audience, expected: dict[str, bool], *, searched: bool = False
) -> None:
    """Every item visible to `who`; counts add up to the candidates that matched. With search
    words nothing withheld is counted (no oracle on the words of withheld titles)."""
    for item in page.items:
        assert can_see(item, who), item.ref
        assert expected[item.ref], item.ref
    visible = sum(expected.values())
    assert page.total_visible == visible
    assert page.withheld_total == (0 if searched else len(expected) - visible)
    assert page.candidates == visible + page.withheld_total


items = st.lists(spec, min_size=0, max_size=18)


@PROPERTY
@given(actions=items, decisions=items, who=audience)
def test_query_services_never_show_what_the_audience_may_not_see(
    session: Session, seed: Seed, actions: list[Spec], decisions: list[Spec], who: Audience
) -> None:
    store(session, seed, actions, decisions)
    action_seen = {action_ref(n): can_see(s, who) for n, s in enumerate(actions)}
    decision_seen = {decision_ref(n): can_see(s, who) for n, s in enumerate(decisions)}

    for text in (None, WORD):
        for page_number in (1, 2):
            page = queries.find_actions(
                session, who, today=TODAY, text=text, page=page_number, per_page=7
            )
            assert_page(page, who, action_seen, searched=text is not None)
            page_d = queries.find_decisions(session, who, text=text, page=page_number, per_page=7)
            assert_page(page_d, who, decision_seen, searched=text is not None)
    everything = queries.find_actions(session, who, today=TODAY, per_page=100)
    assert {a.ref for a in everything.items} == {r for r, ok in action_seen.items() if ok}

    overdue = {
        action_ref(n): action_seen[action_ref(n)]
        for n, s in enumerate(actions)
        if s.offset is not None and s.offset < 0 and not s.status.is_closed
    }
    assert_page(
        queries.find_actions(session, who, today=TODAY, overdue=True, per_page=100), who, overdue
    )
    board = {
        decision_ref(n): decision_seen[decision_ref(n)]
        for n, s in enumerate(decisions)
        if s.board == "strategic"
    }
    assert_page(queries.find_decisions(session, who, board="strategic", per_page=100), who, board)
    concerned = {
        decision_ref(n): decision_seen[decision_ref(n)]
        for n, s in enumerate(decisions)
        if s.partner == "torfaen"
    }
    assert_page(
        queries.find_decisions(session, who, partner="torfaen", text=WORD, per_page=3),
        who,
        concerned,
        searched=True,
    )

    for ref, ok in action_seen.items():
        found = queries.get_action(session, who, ref, today=TODAY)
        if ok:
            assert isinstance(found, queries.Found) and can_see(found.item, who)
        else:
            assert found == queries.Withheld(ref)
    for ref, ok in decision_seen.items():
        found_d = queries.get_decision(session, who, ref)
        if ok:
            assert isinstance(found_d, queries.Found) and can_see(found_d.item, who)
        else:
            assert found_d == queries.Withheld(ref)


CHANNELS = [None, "C0TOR00001", "C0POL00001", "C0SBB00001", "C0SEC00001"]


@PROPERTY
@given(
    actions=items,
    decisions=items,
    clearance=st.sampled_from(list(Marking)),
    exempt=st.booleans(),
    partner=st.sampled_from(PARTNER_SLUGS),
    channel=st.sampled_from(CHANNELS),
    channel_clearance=st.sampled_from(list(Marking)),
    channel_exempt=st.booleans(),
    detail=st.integers(0, 17),
)
def test_rendered_replies_never_show_what_the_audience_may_not_see(
    app: ScrutinyApp,
    session: Session,
    seed: Seed,
    actions: list[Spec],
    decisions: list[Spec],
    clearance: Marking,
    exempt: bool,
    partner: str,
    channel: str | None,
    channel_clearance: Marking,
    channel_exempt: bool,
    detail: int,
) -> None:
    # Loaded afresh: `store` detaches everything, and changes to detached rows are not saved.
    member = session.scalars(select(Member).where(Member.slug == "sian-hughes")).one()
    member.clearance, member.exempt_access = clearance, exempt
    member.partner_id = seed.partners[partner].id
    where = session.scalars(select(Channel).where(Channel.external_id == channel)).first()
    if where is not None:
        where.clearance, where.exempt_access = channel_clearance, channel_exempt
    session.commit()
    session.refresh(member)
    who = audience_of_member(member)
    if where is not None:
        who = who.together_with(audience_of_channel(where, PARTNER_SLUGS))
    store(session, seed, actions, decisions)
    hidden = [action_ref(n) for n, s in enumerate(actions) if not can_see(s, who)]
    hidden += [decision_ref(n) for n, s in enumerate(decisions) if not can_see(s, who)]
    hidden_titles = [f"plan {r[3:]}" for r in hidden if r.startswith("TP")]
    hidden_titles += [f"decision {r[8:]}" for r in hidden if r.startswith("SB")]

    def say(text: str, fmt: str = "txt") -> str:
        request = Request(
            Platform.SLACK,
            "U0TOR00001",
            text,
            channel_id=channel,
            is_direct=channel is None,
            now=NOW,
        )
        outcome = app.dispatch(request, fmt)
        return outcome.text + "\n".join(outcome.bodies)

    replies = [
        say("actions all"),
        say("actions all page 2", "slack.json"),
        say("actions overdue"),
        say("decisions"),
        say("decisions page 2", "slack.json"),
        say(WORD),
        say(f"decisions {WORD}"),
    ]
    if detail < len(actions):
        replies.append(say(f"action {action_ref(detail)}"))
    if detail < len(decisions):
        replies.append(say(f"decision {decision_ref(detail)}", "slack.json"))
    for reply in replies:
        for ref in hidden:
            if f"{ref} exists, but" in reply:
                continue  # the content-free withheld notice names only the ref
            assert ref not in reply
        for title in hidden_titles:
            assert title not in reply
