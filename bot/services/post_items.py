"""The classified items a post shows, and whether an audience may still see all of them.

A rendered post records the refs it shows (`{"decisions": [...], "actions": [...]}`) so that
the sender can check them again at send time and the delivery log can check them before
showing a post's text to someone else. Default deny: a ref that no longer exists, or a kind
this module does not know, counts as not visible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import Action, Decision, Question
from bot.visibility import Audience, can_see

DECISION_ITEMS = "decisions"
ACTION_ITEMS = "actions"
QUESTION_ITEMS = "questions"

_MODELS: dict[str, type[Action | Decision | Question]] = {
    DECISION_ITEMS: Decision,
    ACTION_ITEMS: Action,
    QUESTION_ITEMS: Question,
}


def classified_items(
    session: Session, refs: Mapping[str, Iterable[str]]
) -> dict[tuple[str, str], Any]:
    """The rows behind `refs`, keyed by (kind, ref); unknown kinds and refs are absent."""
    found: dict[tuple[str, str], Any] = {}
    for kind, wanted in refs.items():
        model = _MODELS.get(kind)
        if model is None:
            continue
        names = sorted(set(wanted))
        rows = session.scalars(select(model).where(model.ref.in_(names)))
        for row in cast("Iterable[Action | Decision | Question]", rows):
            found[(kind, row.ref)] = row
    return found


def still_visible(
    wanted: Mapping[str, Sequence[str]], items: Mapping[tuple[str, str], Any], audience: Audience
) -> bool:
    """Whether `audience` may see every item in `wanted`, given the rows already loaded."""
    return all(
        (kind, ref) in items and can_see(items[(kind, ref)], audience)
        for kind, refs in wanted.items()
        for ref in refs
    )


def items_visible(
    session: Session, wanted: Mapping[str, Sequence[str]], audience: Audience
) -> bool:
    """Whether `audience` may see every item a post shows (loads the rows itself)."""
    return still_visible(wanted, classified_items(session, wanted), audience)
