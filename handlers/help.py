"""`/scrutiny help`: the commands this member may use, generated from the router."""

from __future__ import annotations

from bot.context import Context
from bot.domain import Role
from bot.i18n import N_
from bot.messages import Reply, Request
from bot.router import Router

router = Router("help")


@router.command(
    "help",
    writes=False,
    aliases=("cymorth", "?"),
    summary=N_("Show the commands you can use."),
    usage=N_("help [command]"),
)
def show_help(request: Request, ctx: Context) -> Reply:
    """List commands, or explain one in detail."""
    commands = ctx.app.visible_commands(ctx.member)
    wanted = request.text.strip().lower()
    if wanted:
        name = ctx.app.aliases.get(wanted)
        commands = [c for c in commands if c.name == name]
    entries = []
    for c in commands:
        usage = ctx.t._(c.usage) if c.usage else c.name
        # A Welsh usage line starts with the Welsh name, so "also" lists the English one instead.
        shown = usage.split()[0] if usage.split() else c.name
        entries.append(
            {
                "name": c.name,
                "usage": usage,
                "summary": ctx.t._(c.summary),
                "aliases": [a for a in (c.name, *c.aliases) if a not in ("?", shown)],
            }
        )
    # What the board-member role brings besides commands: their boards' packs and answers.
    boards = (
        sorted(b.name_cy if ctx.t.language == "cy" else b.name for b in ctx.member.boards)
        if Role.BOARD_MEMBER.value in (ctx.member.roles or ())
        else []
    )
    return Reply(
        "help/help",
        {
            "commands": entries,
            "member_name": ctx.member.name,
            "topic": wanted,
            "board_member_of": boards,
        },
    )
