"""Property: the rule's two forms agree. Generated decisions, actions and questions (markings,
Schedule 12A paragraphs in and out of range with review dates past and future, partner
restrictions) go into the database; for generated audiences (a member alone, or a member in a
channel) the SQL form selects exactly the rows `can_see` passes, and counts the withheld rows
by the same reasons `withheld_reason` gives. Runs on SQLite, and on PostgreSQL when
TEST_DATABASE_URL is set."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.domain import Marking
from bot.models import Action, Decision, Question
from bot.visibility import (
    RULE,
    UNKNOWN_READERS,
    Audience,
    can_see,
    visible_to,
    withheld_reason,
    withheld_reason_of,
)
from tests.conftest import NOW
from tests.factories import PARTNERS, Seed

TODAY = NOW.date()
PARTNER_SLUGS = [slug for slug, *_ in PARTNERS]

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Classification:
    """A generated item's classification columns."""

    marking: Marking
    exempt_paragraph: int | None
    exempt_review_on: date | None
    restricted_to: list[str]


classifications = st.builds(
    Classification,
    marking=st.sampled_from(list(Marking)),
    exempt_paragraph=st.one_of(
        st.none(), st.none(), st.integers(12, 18), st.sampled_from([0, 1, 11, 19, 30])
    ),
    exempt_review_on=st.one_of(
        st.none(), st.integers(-400, 400).map(lambda d: TODAY + timedelta(days=d))
    ),
    restricted_to=st.one_of(
        st.just([]),
        st.lists(st.sampled_from([*PARTNER_SLUGS, "unknown-partner"]), max_size=4),
    ),
)
reader_sets = st.one_of(
    st.frozensets(st.sampled_from(PARTNER_SLUGS), min_size=1, max_size=3),
    st.just(frozenset(PARTNER_SLUGS)),
    st.just(frozenset({UNKNOWN_READERS})),
)
alone = st.builds(
    Audience,
    clearance=st.sampled_from(list(Marking)),
    exempt_access=st.booleans(),
    readers=reader_sets,
)
# A reply in a channel is read by the channel and the asking member together.
audiences = st.one_of(alone, st.builds(lambda m, c: m.together_with(c), alone, alone))


def _store(session: Session, seed: Seed, items: list[Classification]) -> None:
    session.execute(delete(Question))
    session.execute(delete(Action))
    session.execute(delete(Decision))
    meeting = seed.meetings[0]
    asker = seed.members["sian-hughes"]
    for n, c in enumerate(items):
        marks: dict[str, Any] = {
            "marking": c.marking,
            "exempt_paragraph": c.exempt_paragraph,
            "exempt_review_on": c.exempt_review_on,
            "restricted_to": list(c.restricted_to),
        }
        session.add(
            Decision(
                ref=f"SB-2026-{900 + n}",
                board_id=seed.boards["strategic"].id,
                decided_on=date(2026, 1, 1),
                title="t",
                **marks,
            )
        )
        session.add(
            Action(ref=f"TP-{900 + n}", title="t", owner_partner_id=asker.partner_id, **marks)
        )
        session.add(
            Question(
                ref=f"Q-SB-2026-12-{900 + n}",
                meeting_id=meeting.id,
                text="t",
                asker_id=asker.id,
                partner_id=asker.partner_id,
                **marks,
            )
        )
    session.commit()
    session.expunge_all()


@PROPERTY
@given(
    items=st.lists(classifications, max_size=12),
    who=st.lists(audiences, min_size=1, max_size=3),
)
def test_sql_form_selects_and_counts_as_can_see_does(
    session: Session, seed: Seed, items: list[Classification], who: list[Audience]
) -> None:
    _store(session, seed, items)
    for model in (Decision, Action, Question):
        rows = list(session.scalars(select(model)))
        assert len(rows) == len(items)
        for audience in who:
            shown = set(session.scalars(select(model.id).where(visible_to(model, audience))))
            assert shown == {r.id for r in rows if can_see(r, audience)}
            reason = withheld_reason_of(model, audience)
            by_sql = {
                k: n for k, n in session.execute(select(reason, func.count()).group_by(reason))
            }
            by_python: dict[str | None, int] = {}
            for r in rows:
                key = withheld_reason(r, audience)
                by_python[key] = by_python.get(key, 0) + 1
            assert by_sql == by_python
            per_row = {i: r for i, r in session.execute(select(model.id, reason))}
            assert per_row == {r.id: withheld_reason(r, audience) for r in rows}


def test_the_table_orders_reasons_and_ends_with_a_check_every_item_meets() -> None:
    assert [c.reason for c in RULE] == ["exempt", "restricted", "sensitive"]
    assert RULE[-1].column == "marking"


def test_a_past_review_date_does_not_lift_an_exemption(session: Session, seed: Seed) -> None:
    past = Classification(Marking.OFFICIAL, 14, TODAY - timedelta(days=365), [])
    _store(session, seed, [past])
    without = Audience(Marking.OFFICIAL_SENSITIVE, False, frozenset({"torfaen"}))
    decision = session.scalars(select(Decision)).one()
    assert not can_see(decision, without)
    assert session.scalars(select(Decision.id).where(visible_to(Decision, without))).all() == []
    assert withheld_reason(decision, without) == "exempt"
