"""Reading the audit log back: who changed what and when, with before and after in words.

Every change writes an `AuditEvent` (see `bot.services.audit`); this module turns those rows
into entries a person can read, for `scrutiny-bot audit` (the operator, who sees everything) and
the secretariat's `/scrutiny history REF` (read for an audience: the history of a decision,
action or question is shown only to an audience that may see the item itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from bot.i18n import N_, Translator
from bot.models import AuditEvent, Member
from bot.services.post_items import ACTION_ITEMS, DECISION_ITEMS, QUESTION_ITEMS, classified_items
from bot.visibility import Audience, can_see

MAX_ENTRIES = 200
"""The most entries one read returns; older ones are reached with `offset`."""

VALUE_PREVIEW = 160
"""Long values (an update note, a question's text) are cut to this in chat."""

FIELD_LABELS: dict[str, str] = {
    "active": N_("active"),
    "answer": N_("answer"),
    "answered_by": N_("answered by"),
    "attempts": N_("attempts"),
    "board": N_("board"),
    "board_id": N_("board"),
    "clearance": N_("clearance"),
    "cron": N_("schedule"),
    "decided_on": N_("date decided"),
    "digest_cron": N_("digest schedule"),
    "due_date": N_("due date"),
    "ends_at": N_("ends"),
    "exempt_access": N_("exempt access"),
    "exempt_paragraph": N_("Schedule 12A paragraph"),
    "language": N_("language"),
    "last_update": N_("update note"),
    "link": N_("papers link"),
    "location": N_("location"),
    "marking": N_("marking"),
    "meeting_id": N_("meeting"),
    "merged_into_id": N_("merged into"),
    "name": N_("name"),
    "name_cy": N_("Welsh name"),
    "owner": N_("owner"),
    "owner_partner": N_("owning partner"),
    "owner_partner_id": N_("owning partner"),
    "partner": N_("partner"),
    "partners": N_("partners concerned"),
    "questions_close": N_("questions close"),
    "questions_open": N_("questions open"),
    "rag": N_("RAG rating"),
    "reason": N_("reason"),
    "ref": N_("ref"),
    "restricted_to": N_("restricted to"),
    "roles": N_("roles"),
    "run_at": N_("time"),
    "skip_bank_holidays": N_("skips bank holidays"),
    "starts_at": N_("starts"),
    "state": N_("state"),
    "status": N_("status"),
    "summary": N_("summary"),
    "text": N_("text"),
    "theme": N_("theme"),
    "timezone": N_("time zone"),
    "title": N_("title"),
    "title_cy": N_("Welsh title"),
    "summary_cy": N_("Welsh summary"),
    "location_cy": N_("Welsh location"),
}

VALUE_LABELS: dict[str, dict[str, str]] = {
    "status": {
        "not-started": N_("not started"),
        "in-progress": N_("in progress"),
        "blocked": N_("blocked"),
        "done": N_("done"),
        "cancelled": N_("cancelled"),
    },
    "rag": {"red": N_("RED"), "amber": N_("AMBER"), "green": N_("GREEN")},
    "marking": {"official": N_("OFFICIAL"), "official-sensitive": N_("OFFICIAL-SENSITIVE")},
    "clearance": {"official": N_("OFFICIAL"), "official-sensitive": N_("OFFICIAL-SENSITIVE")},
    "state": {
        "submitted": N_("submitted"),
        "accepted": N_("accepted"),
        "rejected": N_("rejected"),
        "merged": N_("merged"),
        "withdrawn": N_("withdrawn"),
        "answered": N_("answered"),
        "carried-forward": N_("carried forward"),
        "pending": N_("pending"),
        "sending": N_("sending"),
        "sent": N_("sent"),
        "failed": N_("failed"),
    },
}
"""Stored enum values in words, per field, as the rest of the bot shows them."""

VERB_LABELS: dict[str, str] = {
    "cancel": N_("cancelled"),
    "create": N_("created"),
    "deactivate": N_("made inactive"),
    "fail": N_("failed to post"),
    "import.create": N_("imported"),
    "import.update": N_("changed by an import"),
    "post": N_("posted"),
    "question.accept": N_("accepted"),
    "question.answer": N_("answered"),
    "question.carry-create": N_("carried forward from an earlier meeting"),
    "question.carry-forward": N_("carried forward to the next meeting"),
    "question.edit": N_("edited"),
    "question.merge": N_("merged into another question"),
    "question.merged-in": N_("took in a merged question"),
    "question.reject": N_("rejected"),
    "question.submit": N_("submitted"),
    "question.support": N_("supported"),
    "question.withdraw": N_("withdrawn"),
    "retry": N_("queued again"),
    "update": N_("changed"),
    "window.close": N_("question window closed"),
    "window.extend": N_("question window extended"),
    "window.open": N_("question window opened"),
}
"""Every verb the code writes; a verb missing here is shown as stored (tests keep them in step)."""

ENTITY_LABELS: dict[str, str] = {
    "action": N_("action"),
    "board": N_("board"),
    "channel": N_("channel"),
    "decision": N_("decision"),
    "delivery": N_("post"),
    "meeting": N_("meeting"),
    "member": N_("member"),
    "partner": N_("partner"),
    "question": N_("question"),
    "reminder": N_("reminder"),
}


@dataclass(frozen=True)
class FieldChange:
    """One field of one event: its label and its value before and after, in words."""

    field: str
    before: str | None
    """None when the event created the item (there was no before)."""
    after: str | None
    """None when the event removed the value entirely (not the same as blank)."""


@dataclass(frozen=True)
class HistoryEntry:
    """One audit event in words."""

    id: int
    at: datetime
    actor: str
    """The member's name when the actor is a member, else as recorded (`bootstrap`, `operator`)."""
    verb: str
    entity: str
    ref: str
    changes: tuple[FieldChange, ...]


CLASSIFIED_ENTITIES: dict[str, str] = {
    "action": ACTION_ITEMS,
    "decision": DECISION_ITEMS,
    "question": QUESTION_ITEMS,
}
"""Audited entities that carry a marking (their history is as classified as they are), with
the kind under which `bot.services.post_items` loads them."""


@dataclass(frozen=True)
class HistoryFilter:
    """What to read: any of a ref, an actor, a start time; newest first."""

    ref: str | None = None
    actor: str | None = None
    since: datetime | None = None
    offset: int = 0
    limit: int = 50
    hidden_entities: frozenset[str] = frozenset()
    """Entities whose events under `ref` are left out (see `withheld_entities`)."""


def withheld_entities(session: Session, ref: str, audience: Audience) -> frozenset[str]:
    """The classified entities with this ref that `audience` may not see (default deny)."""
    ref = ref.strip().upper()
    rows = classified_items(session, {kind: [ref] for kind in CLASSIFIED_ENTITIES.values()})
    return frozenset(
        entity
        for entity, kind in CLASSIFIED_ENTITIES.items()
        if (kind, ref) in rows and not can_see(rows[(kind, ref)], audience)
    )


def _statement(query: HistoryFilter) -> Select[AuditEvent]:
    statement = select(AuditEvent)
    if query.hidden_entities:
        statement = statement.where(AuditEvent.entity.not_in(sorted(query.hidden_entities)))
    if query.ref:
        ref = query.ref.strip()
        # Refs are stored as typed by the source (upper case for register items); match both.
        statement = statement.where(
            or_(AuditEvent.entity_ref == ref, AuditEvent.entity_ref == ref.upper())
        )
    if query.actor:
        statement = statement.where(func.lower(AuditEvent.actor) == query.actor.strip().lower())
    if query.since is not None:
        statement = statement.where(AuditEvent.at >= query.since)
    return statement


def read_history(
    session: Session, query: HistoryFilter, t: Translator, *, preview: int | None = None
) -> list[HistoryEntry]:
    """Audit events matching `query`, newest first, described in `t`'s language.

    `preview` cuts long values to that many characters (chat); None keeps them whole (CLI).
    """
    limit = max(1, min(query.limit, MAX_ENTRIES))
    statement = (
        _statement(query)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .offset(max(0, query.offset))
        .limit(limit)
    )
    events = list(session.scalars(statement))
    names = _member_names(session, {event.actor for event in events})
    return [_entry(event, names, t, preview) for event in events]


def count_history(session: Session, query: HistoryFilter) -> int:
    """How many events match `query`, ignoring its offset and limit ("showing 1-50 of 212")."""
    counted = _statement(query).with_only_columns(func.count())
    return int(session.scalar(counted) or 0)


def _member_names(session: Session, actors: set[str]) -> dict[str, str]:
    if not actors:
        return {}
    rows = session.execute(select(Member.slug, Member.name).where(Member.slug.in_(actors)))
    return {slug: name for slug, name in rows}


def _entry(
    event: AuditEvent, names: dict[str, str], t: Translator, preview: int | None
) -> HistoryEntry:
    before = event.before or {}
    after = event.after or {}
    if event.before is None:
        # A creation: list what it was created with, skipping empty values.
        keys = [key for key, value in after.items() if value not in (None, "", [], {})]
        changes = tuple(
            FieldChange(field_label(key, t), None, value_in_words(after[key], t, preview, key))
            for key in keys
        )
    else:
        keys = [key for key in _ordered_keys(before, after) if before.get(key) != after.get(key)]
        changes = tuple(
            FieldChange(
                field_label(key, t),
                value_in_words(before.get(key), t, preview, key),
                value_in_words(after[key], t, preview, key) if key in after else None,
            )
            for key in keys
        )
    return HistoryEntry(
        id=event.id,
        at=event.at,
        actor=names.get(event.actor, event.actor),
        verb=verb_label(event.verb, t),
        entity=t._(ENTITY_LABELS[event.entity]) if event.entity in ENTITY_LABELS else event.entity,
        ref=event.entity_ref,
        changes=changes,
    )


def _ordered_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [*after, *(key for key in before if key not in after)]


def field_label(name: str, t: Translator) -> str:
    """A stored field name in words ("last_update" -> "update note")."""
    label = FIELD_LABELS.get(name)
    return t._(label) if label else name.replace("_", " ")


def verb_label(verb: str, t: Translator) -> str:
    """What an event did, in words."""
    label = VERB_LABELS.get(verb)
    return t._(label) if label else verb


def value_in_words(
    value: Any, t: Translator, preview: int | None = None, field: str | None = None
) -> str:
    """A stored JSON value as a reader would say it: blank, yes/no, a status or marking in
    words, lists joined, dates kept."""
    if value is None or value == "" or value == []:
        return t._("(blank)")
    named = VALUE_LABELS.get(field or "", {}).get(value) if isinstance(value, str) else None
    if named is not None:
        return t._(named)
    if isinstance(value, bool):
        return t._("yes") if value else t._("no")
    if isinstance(value, list):
        text = ", ".join(str(item) for item in value)
    elif isinstance(value, dict):
        text = ", ".join(f"{key}: {item}" for key, item in value.items())
    else:
        text = str(value)
    if preview is not None and len(text) > preview:
        text = text[: preview - 1] + "…"
    return text
