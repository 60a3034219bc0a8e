"""Secretariat only: record a decision, update an action (Slack forms, or `key=value` words).

Without values these commands reply with a form (`surface="modal"`): Slack opens it; the
console and other platforms show its text rendering, which explains the `key=value` words.
The form's submission and the typed words go through the same service functions, and the
secretariat role is checked on the server for every one of them (commands and form ids).
"""

from __future__ import annotations

import shlex

from bot.context import Context, UserError
from bot.domain import EXEMPT_PARAGRAPHS, ActionStatus, Marking, Rag, Role
from bot.i18n import N_
from bot.messages import Reply, Request
from bot.router import Router
from bot.services import register as service
from bot.services.queries import ActionView, DecisionView, board_views, partner_views
from bot.visibility import can_see

router = Router("register")
SECRETARIAT = (Role.SECRETARIAT,)

RECORD_DECISION = "register.record_decision"
"""Form id of 'record a decision'."""
UPDATE_ACTION = "register.update_action"
"""Form id of 'update an action'."""
OPEN_UPDATE_FORM = "register.update_action_form"
"""Button ("mark updated") whose value is an action ref: opens the update form."""


def parse_words(text: str, ctx: Context) -> tuple[list[str], dict[str, str]]:
    """Split typed words into plain words and `key=value` pairs (quotes group words)."""
    try:
        words = shlex.split(text)
    except ValueError:
        raise UserError(
            ctx.t._('A quote is not closed in “{text}”; close it, e.g. note="Finished".').format(
                text=text
            )
        ) from None
    plain: list[str] = []
    values: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key:
            values[key.strip().lower().replace("-", "_")] = value
        else:
            plain.append(word)
    return plain, values


def _refused(problem: service.InvalidInput) -> Reply:
    return Reply("register/invalid", {"errors": problem.errors}, field_errors=problem.errors)


def _decision_form(ctx: Context) -> Reply:
    language = ctx.t.language
    return Reply(
        "register/decision_form",
        {
            "callback_id": RECORD_DECISION,
            "boards": [
                {"slug": b.slug, "label": b.label(language)}
                for b in board_views(ctx.session).values()
            ],
            "next_refs": service.next_decision_refs(ctx.session, ctx.today.year),
            "today": ctx.today.isoformat(),
            "markings": [m.value for m in Marking],
            "paragraphs": list(EXEMPT_PARAGRAPHS),
            "partners": [
                {"slug": p.slug, "label": p.label(language)}
                for p in sorted(partner_views(ctx.session).values(), key=lambda p: p.slug)
            ],
        },
        surface="modal",
    )


def _record(values: dict[str, str], ctx: Context) -> Reply:
    try:
        decision = service.record_decision(
            ctx.session, values, actor=ctx.member.slug, now=ctx.now, t=ctx.t
        )
    except service.InvalidInput as problem:
        return _refused(problem)
    shown = can_see(decision, ctx.audience)
    view = DecisionView.of(decision, partner_views(ctx.session)) if shown else None
    return Reply(
        "register/decision_recorded",
        {
            "ref": decision.ref,
            "decision": view,
            "partner_names": partner_views(ctx.session),
            "today": ctx.today,
        },
    )


@router.command(
    "record-decision",
    summary=N_("Record a board decision in the register (secretariat)."),
    usage=N_('record-decision [board=strategic decided_on=2026-11-19 title="..."]'),
    aliases=("cofnodi-penderfyniad",),
    roles=SECRETARIAT,
)
def record_decision_command(request: Request, ctx: Context) -> Reply:
    """Open the form, or record at once when values are typed."""
    plain, values = parse_words(request.text, ctx)
    if plain and plain[0].lower() in ("new", "newydd"):
        plain = plain[1:]
    if plain:
        raise UserError(
            ctx.t._(
                'Give each value as name=value, e.g. title="Approved the budget"; '
                "“{word}” has no name."
            ).format(word=plain[0])
        )
    return _record(values, ctx) if values else _decision_form(ctx)


@router.action(RECORD_DECISION, roles=SECRETARIAT)
def record_decision_submitted(request: Request, ctx: Context) -> Reply:
    """The 'record a decision' form was submitted."""
    values = {k: str(v) for k, v in request.values.items() if k in service.DECISION_FIELDS}
    return _record(values, ctx)


def _action_form(ref: str, ctx: Context) -> Reply:
    action = service.find_action(ctx.session, ref, ctx.audience, ctx.today)
    if action is None:
        raise UserError(ctx.t._("There is no action {ref} that you can see here.").format(ref=ref))
    return Reply(
        "register/action_form",
        {
            "callback_id": UPDATE_ACTION,
            "action": ActionView.of(action, ctx.today),
            "statuses": [s.value for s in ActionStatus],
            "rags": [*(r.value for r in Rag), service.NO_RAG],
            "today": ctx.today,
        },
        surface="modal",
    )


def _update(ref: str, values: dict[str, str], ctx: Context) -> Reply:
    try:
        action, changed = service.update_action_status(
            ctx.session,
            ref,
            values,
            actor=ctx.member.slug,
            audience=ctx.audience,
            today=ctx.today,
            t=ctx.t,
        )
    except service.InvalidInput as problem:
        return _refused(problem)
    return Reply(
        "register/action_updated",
        {
            "action": ActionView.of(action, ctx.today),
            "changed": sorted(changed),
            "form_button": OPEN_UPDATE_FORM,
            "today": ctx.today,
        },
    )


@router.command(
    "update",
    summary=N_("Update an action's status, RAG rating, update note or Welsh title (secretariat)."),
    usage=N_('update REF [status=done rag=green note="..."]'),
    aliases=("diweddaru",),
    roles=SECRETARIAT,
)
def update_action_command(request: Request, ctx: Context) -> Reply:
    """Open the form for one action, or update it at once when values are typed."""
    plain, values = parse_words(request.text, ctx)
    if len(plain) != 1:
        raise UserError(
            ctx.t._("Name one action, e.g. {cmd} update TP-014 status=done.").format(cmd=ctx.t.cmd)
        )
    ref = plain[0].upper()
    return _update(ref, values, ctx) if values else _action_form(ref, ctx)


@router.action(OPEN_UPDATE_FORM, roles=SECRETARIAT)
def open_update_form(request: Request, ctx: Context) -> Reply:
    """The "mark updated" button on an action: its value is the action's ref."""
    ref = str(request.values.get("value") or request.text).strip().upper()
    return _action_form(ref, ctx)


@router.action(UPDATE_ACTION, roles=SECRETARIAT)
def update_action_submitted(request: Request, ctx: Context) -> Reply:
    """The 'update an action' form was submitted; its metadata is the action's ref."""
    ref = str(request.values.get("metadata") or "").strip().upper()
    values = {k: str(v) for k, v in request.values.items() if k in service.ACTION_FIELDS}
    return _update(ref, values, ctx)
