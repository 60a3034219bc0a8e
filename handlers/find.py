"""`/scrutiny find <words>`, @mentions and plain text: work out whether the words ask about
actions, decisions or meetings, and answer with the same replies as those commands.
Also the `page` button, which re-runs a list command for another page.
"""

from __future__ import annotations

import dataclasses
import difflib

from bot.context import Context
from bot.i18n import N_
from bot.messages import Reply, Request
from bot.router import Router
from bot.services.plain_words import Kind, Query, ref_kind
from handlers.listing import (
    action_reply,
    actions_reply,
    combined_reply,
    command_name,
    decision_reply,
    decisions_reply,
    meetings_reply,
    read_query,
    refs_reply,
)

router = Router("find")

PAGED_COMMANDS = ("actions", "decisions", "find")
"""Commands a `page` button may re-run; anything else in a button value is refused."""


def choose_kind(query: Query) -> Kind | None:
    """What the words ask about; None when they could mean decisions or actions."""
    if query.kinds == {"meetings"}:
        return "meetings"
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
    refs = [ref for ref in query.refs if ref_kind(ref) != "questions"]
    if len(query.refs) == 1 and ref_kind(query.refs[0]) == "questions":
        return ctx.app.run_command("questions", dataclasses.replace(request, text=""), ctx)
    if len(refs) == 1:
        # A ref anywhere in the words is what they ask about ("where are we with TP-014?").
        if ref_kind(refs[0]) == "decisions":
            return decision_reply(refs[0], request, ctx)
        return action_reply(refs[0], request, ctx)
    if refs:
        return refs_reply(refs, request, ctx)
    kind = choose_kind(query)
    if kind == "meetings":
        return meetings_reply(query, ctx)
    if kind == "actions":
        return actions_reply(query, request, ctx)
    if kind == "decisions":
        return decisions_reply(query, request, ctx)
    if not query.terms and not query.partners:
        first = request.text.split()[0].lower() if request.text.split() else ""
        return Reply("find/examples", {"text": request.text.strip(), "command": meant(first, ctx)})
    reply = combined_reply(query, request, ctx)
    if not reply.context["decisions"].items and not reply.context["actions"].items:
        first = request.text.split()[0].lower() if request.text.split() else ""
        reply.context["command"] = meant(first, ctx)
    else:
        reply.context["command"] = None
    return reply


def meant(word: str, ctx: Context) -> str | None:
    """The command a mistyped first word stands for, as the asker would type it, among the
    commands the asker may run (a scrutiny member is never offered a secretariat command)."""
    if not word:
        return None
    names = {
        alias: command.name
        for command in ctx.app.visible_commands(ctx.member)
        for alias in (command.name, *command.aliases)
        if len(alias) > 2
    }
    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.75)
    return command_name(ctx, names[close[0]]) if close else None


@router.action("page", writes=False)
def next_page(request: Request, ctx: Context) -> Reply:
    """A "next" button: its value is the command text for the page to show."""
    value = str(request.values.get("value") or request.text).strip()
    name, _, rest = value.partition(" ")
    if name not in PAGED_COMMANDS:
        return Reply("common/error", {"message": ctx.t._("That button is no longer supported.")})
    # Through the dispatcher's role check: a page is no more visible than its first one.
    return ctx.app.run_command(name, dataclasses.replace(request, text=rest), ctx)
