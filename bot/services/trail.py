"""The trail between the register's items: a decision's actions, and the questions that asked
about a decision or an action. Every list passes through the visibility rule."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, String, bindparam, exists, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import InstrumentedAttribute

from bot.domain import QuestionState
from bot.models import Action, Decision, Meeting, Member, Question
from bot.services import audit
from bot.services.queries import ActionView, DecisionView, Found, get_decision
from bot.services.questions.core import QuestionView, views
from bot.visibility import Audience, can_see, partition

HIDDEN_STATES = (QuestionState.REJECTED, QuestionState.WITHDRAWN)
"""Questions the trail leaves out: only their askers and the secretariat follow those."""


@dataclass(frozen=True)
class Trail:
    """What a reader may follow from one item, and how many linked items were withheld."""

    actions: tuple[ActionView, ...]
    questions: tuple[QuestionView, ...]
    withheld: int


def json_list_has_any(
    dialect: str, column: InstrumentedAttribute[list[str]], name: str, count: int
) -> tuple[ColumnElement[bool], list[str]]:
    """Rows whose JSON list `column` holds any of `count` values (SQLite and PostgreSQL), bound
    by name; and the names to bind the values to, in order."""
    names = [f"{name}_{i}" for i in range(count)]
    if dialect == "postgresql":
        as_jsonb = column.cast(JSONB)
        return or_(
            *(as_jsonb.op("@>")(func.jsonb_build_array(bindparam(n, type_=String))) for n in names)
        ), names
    each = func.json_each(column).table_valued("value")
    values = [bindparam(n, type_=String) for n in names]
    return exists(select(1).select_from(each).where(each.c.value.in_(values))), names


# The trail's statements are built once per dialect and number of refs: building a Select
# with its joins and JSON test costs more than SQLite takes to run it.
@cache
def _actions_from(dialect: str) -> Select[Action]:
    linked, _ = json_list_has_any(dialect, Action.decision_refs, "ref", 1)
    return (
        select(Action)
        .options(joinedload(Action.owner_partner))
        .where(linked)
        .order_by(Action.due_date.is_(None), Action.due_date, Action.ref)
    )


@lru_cache(maxsize=64)  # one per number of refs linked
def _questions_about(dialect: str, count: int) -> tuple[Select[Question], list[str]]:
    linked, names = json_list_has_any(dialect, Question.linked_refs, "ref", count)
    statement = (
        select(Question)
        .options(joinedload(Question.meeting).joinedload(Meeting.board), joinedload(Question.asker))
        .where(linked, Question.state.not_in(HIDDEN_STATES))
        .order_by(Question.created_at, Question.id)
    )
    return statement, names


def actions_from(
    session: Session, audience: Audience, decision_ref: str, *, today: date
) -> tuple[list[ActionView], int]:
    """Actions that come from a decision, soonest due first; and how many were withheld."""
    statement = _actions_from(session.get_bind().dialect.name)
    rows = session.scalars(statement, {"ref_0": decision_ref}).all()
    split = partition(rows, audience)
    return [ActionView.of(a, today) for a in split.visible], split.withheld_total


def questions_about(
    session: Session,
    audience: Audience,
    refs: Collection[str],
    *,
    viewer: Member | None,
    now: datetime,
    zone: ZoneInfo,
) -> tuple[list[QuestionView], int]:
    """Questions that link any of `refs`, oldest first; and how many were withheld."""
    if not refs:
        return [], 0
    values = sorted(set(refs))
    statement, names = _questions_about(session.get_bind().dialect.name, len(values))
    rows = session.scalars(statement, dict(zip(names, values, strict=True))).all()
    split = partition(rows, audience)
    shown = views(session, split.visible, viewer=viewer, now=now, zone=zone)
    return shown, split.withheld_total


def decision_trail(
    session: Session,
    audience: Audience,
    decision_ref: str,
    *,
    viewer: Member | None,
    now: datetime,
    zone: ZoneInfo,
) -> Trail:
    """A decision's actions, and the questions about the decision or any of those actions."""
    today = now.astimezone(zone).date()
    actions, hidden_actions = actions_from(session, audience, decision_ref, today=today)
    refs = [decision_ref, *(a.ref for a in actions)]
    questions, hidden_questions = questions_about(
        session, audience, refs, viewer=viewer, now=now, zone=zone
    )
    return Trail(tuple(actions), tuple(questions), hidden_actions + hidden_questions)


def decisions_behind(
    session: Session, audience: Audience, decision_refs: Collection[str]
) -> tuple[list[DecisionView], int]:
    """The decisions an action comes from that the audience may see; and how many were
    withheld (a missing ref counts as withheld, so the answer never tells the two apart)."""
    shown = [
        found.item
        for found in (get_decision(session, audience, ref) for ref in decision_refs)
        if isinstance(found, Found)
    ]
    return shown, len(decision_refs) - len(shown)


def parse_decision_refs(
    session: Session, raw: str, audience: Audience
) -> tuple[list[str], list[str]]:
    """Decision refs from words separated by spaces or commas: (found refs, unknown words).

    A decision the audience may not see counts as unknown, so the answer never reveals it."""
    words = [w.strip().upper() for w in raw.replace(",", " ").split() if w.strip()]
    if not words:
        return [], []
    stored = {
        d.ref: d
        for d in session.scalars(select(Decision).where(func.upper(Decision.ref).in_(words)))
    }
    found = [w for w in dict.fromkeys(words) if w in stored and can_see(stored[w], audience)]
    unknown = [w for w in dict.fromkeys(words) if w not in found]
    return found, unknown


def link_decisions(
    session: Session, action: Action, refs: list[str], *, actor: str
) -> dict[str, list[str]]:
    """Set the decisions an action comes from; audited; returns what changed (empty: none)."""
    before = list(action.decision_refs or [])
    if before == refs:
        return {}
    action.decision_refs = refs
    session.flush()
    audit.record(
        session,
        actor=actor,
        verb="update",
        entity="action",
        ref=action.ref,
        before={"decision_refs": before},
        after={"decision_refs": refs},
    )
    return {"decision_refs": refs}
