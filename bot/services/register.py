"""The secretariat's writes to the register: record a decision, update an action.

Both take raw text values (from a Slack form or `key=value` words typed in the console),
check every field before touching anything, and raise `InvalidInput` naming each bad field
and how to fix it, so nothing is ever half-stored. Each change is audited with its state
before and after, in the caller's session and transaction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import text_input
from bot.context import UserError
from bot.domain import ActionStatus, Marking, Rag
from bot.fields import FieldRefused, board_lookup, parse_date, parse_paragraph, partner_lookup
from bot.i18n import Translator
from bot.models import Action, Board, Decision, Meeting
from bot.services import audit
from bot.services.queries import Found, get_action
from bot.visibility import Audience

DECISION_FIELDS = (
    "board",
    "ref",
    "decided_on",
    "title",
    "summary",
    "title_cy",
    "summary_cy",
    "marking",
    "exempt_paragraph",
    "restricted_to",
    "link",
)
"""Fields of the 'record a decision' form, in the order they are asked."""
ACTION_FIELDS = ("status", "rag", "note", "title_cy")
"""Fields of the 'update an action' form."""
NO_RAG = "none"
"""The `rag` value that clears an action's RAG rating."""
CLEAR = "-"
"""The `title_cy` value that clears an action's Welsh title."""

TITLE_MAX = text_input.TITLE.limit
SUMMARY_MAX = text_input.SUMMARY.limit
NOTE_MAX = text_input.NOTE.limit
LINK_MAX = text_input.LINK.limit
_AUDITED_DECISION = DECISION_FIELDS[1:]
"""Columns audited as they are (the board is audited by its slug)."""
_AUDITED_ACTION = ("status", "rag", "last_update", "title_cy")


class InvalidInput(UserError):
    """Form values refused; `errors` maps each bad field to what is wrong and how to fix it."""

    def __init__(self, errors: Mapping[str, str], t: Translator) -> None:
        self.errors = dict(errors)
        lines = [f"{name}: {message}" for name, message in self.errors.items()]
        heading = t.ngettext(
            "Nothing was saved; fix this field:",
            "Nothing was saved; fix these %(num)d fields:",
            len(lines),
        ) % {"num": len(lines)}
        super().__init__("\n".join([heading, *lines]))


def _clean(values: Mapping[str, Any], name: str) -> str:
    return str(values.get(name) or "").strip()


def unknown_fields(
    values: Mapping[str, Any], allowed: tuple[str, ...], t: Translator
) -> dict[str, str]:
    """An error for each given field the form does not have."""
    return {
        name: t._("there is no field “{name}”; use {fields}.").format(
            name=name, fields=", ".join(allowed)
        )
        for name in values
        if name not in allowed
    }


# -- decisions --------------------------------------------------------------------------------
def next_decision_ref(session: Session, board: Board, year: int) -> str:
    """The next free reference for a board and year: one past the highest in use."""
    head = f"{board.prefix}-{year}-"
    refs = session.scalars(select(Decision.ref).where(Decision.ref.like(f"{head}%")))
    numbers = [int(r[len(head) :]) for r in refs if r[len(head) :].isdigit()]
    return f"{head}{max(numbers, default=0) + 1:03d}"


def next_decision_refs(session: Session, year: int) -> dict[str, str]:
    """The next free reference of every board, by board slug."""
    boards = session.scalars(select(Board).order_by(Board.id))
    return {board.slug: next_decision_ref(session, board, year) for board in boards}


@dataclass(frozen=True)
class DecisionForm:
    """A decision's values after every check passed."""

    board: Board
    ref: str
    decided_on: date
    title: str
    summary: str
    title_cy: str
    summary_cy: str
    marking: Marking
    exempt_paragraph: int | None
    restricted_to: list[str]
    link: str


def _refused(refusal: FieldRefused, errors: dict[str, str], t: Translator) -> None:
    errors[refusal.field] = refusal.sentence(t._)


def _check_marking(raw: str, errors: dict[str, str], t: Translator) -> Marking:
    if not raw:
        return Marking.OFFICIAL
    try:
        return Marking(raw.lower())
    except ValueError:
        errors["marking"] = t._("“{value}” is not a marking; use {choices}.").format(
            value=raw, choices=" or ".join(m.value for m in Marking)
        )
        return Marking.OFFICIAL


def _check_paragraph(raw: str, errors: dict[str, str], t: Translator) -> int | None:
    try:
        return parse_paragraph(raw, "exempt_paragraph")
    except FieldRefused as refusal:
        _refused(refusal, errors, t)
        return None


def _check_partners(session: Session, raw: str, errors: dict[str, str], t: Translator) -> list[str]:
    slugs, refused = partner_lookup(session).many(raw, "restricted_to", separator=",")
    if refused:
        _refused(refused[0], errors, t)
    return slugs


def _checked(
    values: Mapping[str, Any],
    name: str,
    field: text_input.TextField,
    errors: dict[str, str],
    t: Translator,
) -> str:
    """A text field cleaned by `text_input.clean`; a refusal goes into `errors` under `name`."""
    try:
        return text_input.clean(str(values.get(name) or ""), field)
    except text_input.TextRefused as refused:
        what, fix = refused.describe(t._)
        errors[name] = f"{what}; {fix}."
        return ""


def check_decision(
    session: Session, values: Mapping[str, Any], *, today: date, t: Translator
) -> DecisionForm:
    """Every field of a new decision checked; raises `InvalidInput` listing all problems."""
    errors = unknown_fields(values, DECISION_FIELDS, t)
    raw_board = _clean(values, "board")
    boards = board_lookup(session)
    board: Board | None = None
    if raw_board:
        try:
            board = boards.one(raw_board, "board")
        except FieldRefused as refusal:
            _refused(refusal, errors, t)
    else:
        slugs = ", ".join(boards.slug(b) for b in boards.items)
        errors["board"] = t._("choose a board: {choices}.").format(choices=slugs)
    raw_date = _clean(values, "decided_on")
    decided_on: date | str = t._("give the date decided (YYYY-MM-DD).")
    if raw_date:
        try:
            decided_on = parse_date(raw_date, "decided_on")
        except FieldRefused as refusal:
            decided_on = refusal.sentence(t._)
    if isinstance(decided_on, date) and decided_on > today:
        decided_on = t._("{value} is in the future; record a decision once it is made.").format(
            value=decided_on.isoformat()
        )
    if isinstance(decided_on, str):
        errors["decided_on"] = decided_on
    title = _checked(values, "title", text_input.TITLE, errors, t)
    if not title and "title" not in errors:
        errors["title"] = t._("give the decision a title.")
    summary = _checked(values, "summary", text_input.SUMMARY, errors, t)
    title_cy = _checked(values, "title_cy", text_input.TITLE_CY, errors, t)
    summary_cy = _checked(values, "summary_cy", text_input.SUMMARY_CY, errors, t)
    marking = _check_marking(_clean(values, "marking"), errors, t)
    paragraph = _check_paragraph(_clean(values, "exempt_paragraph"), errors, t)
    restricted = _check_partners(session, _clean(values, "restricted_to"), errors, t)
    link = _checked(values, "link", text_input.LINK, errors, t)
    if link and not text_input.is_web_link(link):
        errors["link"] = t._(
            "“{value}” is not a web address; give the full address starting https://, "
            "without spaces or the characters | < >."
        ).format(value=link)
    ref = _clean(values, "ref").upper()
    if board is not None and isinstance(decided_on, date):
        ref = _check_ref(session, ref, board, decided_on.year, errors, t)
    if errors or board is None or not isinstance(decided_on, date):
        raise InvalidInput(errors, t)
    return DecisionForm(
        board,
        ref,
        decided_on,
        title,
        summary,
        title_cy,
        summary_cy,
        marking,
        paragraph,
        restricted,
        link,
    )


def _check_ref(
    session: Session, ref: str, board: Board, year: int, errors: dict[str, str], t: Translator
) -> str:
    suggestion = next_decision_ref(session, board, year)
    if not ref:
        return suggestion
    if not re.fullmatch(r"[A-Z]{2,8}-[0-9]{4}-[0-9]{3,4}", ref):
        errors["ref"] = t._(
            "“{value}” is not a decision reference; use the form {example}, or leave it empty."
        ).format(value=ref, example=suggestion)
    elif not ref.startswith(f"{board.prefix}-"):
        errors["ref"] = t._("{value} is not a {board} reference; those start {prefix}-.").format(
            value=ref, board=board.name, prefix=board.prefix
        )
    elif session.scalar(select(Decision.id).where(Decision.ref == ref)) is not None:
        errors["ref"] = t._(
            "{value} is already in the register; leave it empty to use {suggestion}."
        ).format(value=ref, suggestion=suggestion)
    return ref


def _meeting_on(session: Session, board: Board, day: date, tz: Any) -> Meeting | None:
    start = datetime.combine(day - timedelta(days=1), datetime.min.time(), tzinfo=tz)
    end = start + timedelta(days=3)
    meetings = session.scalars(
        select(Meeting).where(
            Meeting.board_id == board.id, Meeting.starts_at >= start, Meeting.starts_at < end
        )
    )
    return next((m for m in meetings if m.starts_at.astimezone(tz).date() == day), None)


def record_decision(
    session: Session,
    values: Mapping[str, Any],
    *,
    actor: str,
    now: datetime,
    t: Translator,
) -> Decision:
    """Add a decision to the register (linked to its board's meeting that day, if any)."""
    today = now.astimezone(t.tz).date()
    form = check_decision(session, values, today=today, t=t)
    decision = Decision(
        ref=form.ref,
        board=form.board,
        meeting=_meeting_on(session, form.board, form.decided_on, t.tz),
        decided_on=form.decided_on,
        title=form.title,
        summary=form.summary,
        title_cy=form.title_cy,
        summary_cy=form.summary_cy,
        marking=form.marking,
        exempt_paragraph=form.exempt_paragraph,
        restricted_to=form.restricted_to,
        partners=[],
        link=form.link,
        recorded_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(decision)
            session.flush()
    except IntegrityError:
        # Someone else took the same reference between the check and the insert.
        suggestion = next_decision_ref(session, form.board, form.decided_on.year)
        raise InvalidInput(
            {
                "ref": t._(
                    "{value} was taken a moment ago; leave it empty to use {suggestion}."
                ).format(value=form.ref, suggestion=suggestion)
            },
            t,
        ) from None
    audit.record(
        session,
        actor=actor,
        verb="create",
        entity="decision",
        ref=decision.ref,
        after={"board": form.board.slug, **audit.snapshot(decision, _AUDITED_DECISION)},
    )
    return decision


# -- actions ----------------------------------------------------------------------------------
def find_action(session: Session, ref: str, audience: Audience, today: date) -> Action | None:
    """The action with this ref if the audience may see it (else None: never say it exists)."""
    found = get_action(session, audience, ref, today=today)
    if not isinstance(found, Found):
        return None
    return session.scalar(select(Action).where(Action.ref == found.item.ref))


def update_action_status(
    session: Session,
    ref: str,
    values: Mapping[str, Any],
    *,
    actor: str,
    audience: Audience,
    today: date,
    t: Translator,
) -> tuple[Action, dict[str, Any]]:
    """Change an action's status, RAG, update note and/or Welsh title; returns it and what
    changed. The Welsh title is replaced when given; `title_cy=-` clears it."""
    errors = unknown_fields(values, ACTION_FIELDS, t)
    action = find_action(session, ref, audience, today)
    if action is None:
        raise UserError(t._("There is no action {ref} that you can see here.").format(ref=ref))
    changes: dict[str, Any] = {}
    raw_status = _clean(values, "status").lower()
    if raw_status:
        try:
            changes["status"] = ActionStatus(raw_status)
        except ValueError:
            errors["status"] = t._("“{value}” is not a status; use {choices}.").format(
                value=raw_status, choices=", ".join(s.value for s in ActionStatus)
            )
    raw_rag = _clean(values, "rag").lower()
    if raw_rag:
        if raw_rag == NO_RAG:
            changes["rag"] = None
        else:
            try:
                changes["rag"] = Rag(raw_rag)
            except ValueError:
                errors["rag"] = t._("“{value}” is not a RAG rating; use {choices}.").format(
                    value=raw_rag, choices=", ".join([*(r.value for r in Rag), NO_RAG])
                )
    note = _checked(values, "note", text_input.NOTE, errors, t)
    if note:
        changes["last_update"] = note
    title_cy = _checked(values, "title_cy", text_input.TITLE_CY, errors, t)
    if title_cy:
        changes["title_cy"] = "" if title_cy == CLEAR else title_cy
    if errors:
        raise InvalidInput(errors, t)
    before = audit.snapshot(action, _AUDITED_ACTION)
    after = {**before, **{k: audit.plain(v) for k, v in changes.items()}}
    changed = audit.changes(before, after)
    if not changed:
        raise InvalidInput(
            {
                "status": t._(
                    "nothing would change; give a new status, RAG rating, note or Welsh title."
                )
            },
            t,
        )
    for name, value in changes.items():
        setattr(action, name, value)
    session.flush()
    audit.record(
        session,
        actor=actor,
        verb="update",
        entity="action",
        ref=action.ref,
        before={k: before[k] for k in changed},
        after=changed,
    )
    return action, changed
