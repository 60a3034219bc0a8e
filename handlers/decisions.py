"""`/scrutiny decisions [filters]` and `/scrutiny decision REF`: the decision register."""

from __future__ import annotations

import dataclasses

from bot.context import Context
from bot.i18n import N_
from bot.messages import Reply, Request
from bot.router import Router
from handlers.listing import command_name, decision_reply, decisions_reply, read_query, single_ref

router = Router("decisions")
NEW_WORDS = ("new", "newydd")
"""`decision new`: record a decision instead of showing one."""


@router.command(
    "decisions",
    writes=False,
    aliases=("penderfyniadau",),
    summary=N_("List board decisions, newest first: by board, partner, date or words."),
    usage=N_("decisions [board] [partner] [since YYYY-MM-DD] [in YYYY] [words] [page N]"),
)
def list_decisions(request: Request, ctx: Context) -> Reply:
    """Decisions matching the filters in the words, e.g. `decisions strategic since 2026-01-01`."""
    return decisions_reply(read_query(request, ctx), request, ctx)


@router.command(
    "decision",
    writes=False,
    aliases=("penderfyniad",),
    summary=N_("Show one decision in full."),
    usage=N_("decision REF (e.g. decision SB-2026-014), or decision new (secretariat)"),
)
def show_decision(request: Request, ctx: Context) -> Reply:
    """One decision by its ref; `decision new` is the secretariat's record-decision form."""
    if request.text.strip().lower() in NEW_WORDS:
        return ctx.app.run_command("record-decision", request, ctx)
    ref = single_ref(request, ctx, "decision SB-2026-014")
    if ref is None:
        # Plain words that start with the command word: read them all as a question.
        words = f"{command_name(ctx, 'decision')} {request.text}"
        return ctx.app.run_command("find", dataclasses.replace(request, text=words), ctx)
    return decision_reply(ref, request, ctx)
