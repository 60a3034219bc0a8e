"""`/scrutiny actions [filters]` and `/scrutiny action REF`: the tactical plan."""

from __future__ import annotations

import dataclasses

from bot.context import Context
from bot.i18n import N_
from bot.messages import Reply, Request
from bot.router import Router
from handlers.listing import action_reply, actions_reply, command_name, read_query, single_ref

router = Router("actions")


@router.command(
    "actions",
    writes=False,
    aliases=("camau",),
    summary=N_(
        "List tactical-plan actions, ten at a time: by partner, status, overdue, due soon, "
        "RAG or words."
    ),
    usage=N_("actions [overdue|due soon|blocked|red ...] [partner] [words] [page N]"),
)
def list_actions(request: Request, ctx: Context) -> Reply:
    """Actions matching the filters in the words, e.g. `actions overdue torfaen`."""
    return actions_reply(read_query(request, ctx), request, ctx)


@router.command(
    "action",
    writes=False,
    aliases=("cam",),
    summary=N_("Show one action in full."),
    usage=N_("action REF (e.g. action TP-014)"),
)
def show_action(request: Request, ctx: Context) -> Reply:
    """One action by its ref."""
    ref = single_ref(request, ctx, "action TP-014")
    if ref is None:
        # Plain words that start with the command word: read them all as a question.
        words = f"{command_name(ctx, 'action')} {request.text}"
        return ctx.app.run_command("find", dataclasses.replace(request, text=words), ctx)
    return action_reply(ref, request, ctx)
