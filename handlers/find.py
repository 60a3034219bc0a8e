"""`/scrutiny find <words>`, @mentions and plain text: work out whether the words ask about
actions, decisions or meetings, and answer with the same replies as those commands.
Also the `page` button, which re-runs a list command for another page.
"""

from __future__ import annotations

import dataclasses
import difflib

from bot.app import Context
from bot.i18n import N_
from bot.messages import Reply, Request
from bot.router import Router
from bot.services.query_words import Kind, Query, ref_kind
from handlers.listing import (
    action_reply,
    actions_reply,
    combined_reply,
    decision_reply,
    decisions_reply,
    meetings_reply,
    read_query,
)

router = Router("find")

PAGED_COMMANDS = ("actions", "decisions", "find")
"""Commands a `page` button may re-run; anything else in a button value is refused."""


def choose_kind(query: Query) -> Kind | None:
    """What the words ask about; None when they could mean decisions or actions."""
    if query.has_action_filters:
        return "actions"
    if len(query.kinds) == 1:
        return next(iter(query.kinds))
    preference: tuple[Kind, ...] = ("decisions", "actions", "meetings")
    for kind in preference:
        if kind in query.kinds:
            return kind
    if query.board or query.since or query.until:
        return "decisions"
    return None


@router.command(
    "find",
    writes=False,
    aliases=("search", "chwilio"),
    summary=N_(
        "Ask in plain words, e.g. “overdue actions for Torfaen” or “what did the "
        "strategic board decide about the data centre move?”."
    ),
    usage=N_("find <words>"),
)
def find(request: Request, ctx: Context) -> Reply:
    """Answer free text with the list or item it asks for."""
    query = read_query(request, ctx)
    if query.refs and not query.terms and not query.has_filters:
        ref = query.refs[0]
        if ref_kind(ref) == "decisions":
            return decision_reply(ref, request, ctx)
        return action_reply(ref, request, ctx)
    kind = choose_kind(query)
    if kind == "meetings":
        return meetings_reply(query, ctx)
    if kind == "actions":
        return actions_reply(query, request, ctx)
    if kind == "decisions":
        return decisions_reply(query, request, ctx)
    if not query.terms and not query.partners:
        first = request.text.split()[0].lower() if request.text.split() else ""
        close = difflib.get_close_matches(first, list(ctx.app.aliases), n=1) if first else []
        return Reply(
            "find/examples",
            {"text": request.text.strip(), "command": ctx.app.aliases[close[0]] if close else None},
        )
    reply = combined_reply(query, request, ctx)
    if not reply.context["decisions"].items and not reply.context["actions"].items:
        first = query.terms[0] if query.terms else ""
        close = difflib.get_close_matches(first, list(ctx.app.aliases), n=1) if first else []
        reply.context["command"] = ctx.app.aliases[close[0]] if close else None
    else:
        reply.context["command"] = None
    return reply


@router.action("page", writes=False)
def next_page(request: Request, ctx: Context) -> Reply:
    """A "next" button: its value is the command text for the page to show."""
    value = str(request.values.get("value") or request.text).strip()
    name, _, rest = value.partition(" ")
    if name not in PAGED_COMMANDS:
        return Reply("common/error", {"message": ctx.t._("That button is no longer supported.")})
    command = ctx.app.commands[name]
    return command.handler(dataclasses.replace(request, text=rest), ctx)
