"""The welcome: the few commands that matter, sent the first time a member opens the bot's
messages (Slack's Messages tab; Teams' personal chat can reuse it). Once per member and
platform; later visits get nothing (`Reply.surface` "none")."""

from __future__ import annotations

from bot.context import Context
from bot.domain import Platform
from bot.messages import Reply, Request
from bot.router import Router
from bot.services.welcome import first_visit

router = Router("welcome")

WELCOME = "welcome.first_visit"
"""The interaction a platform runs when a member opens the bot's messages."""
COMMANDS = ("help", "home", "actions", "decisions", "meetings", "find", "ask")
"""The commands the welcome names, in this order (those the member may run)."""


@router.action(WELCOME)
def welcome(request: Request, ctx: Context) -> Reply:
    """The welcome on a member's first visit; nothing on later ones."""
    platform = ctx.platform or Platform.SLACK
    allowed = {c.name: c for c in ctx.app.visible_commands(ctx.member)}
    commands = [
        {"usage": ctx.t._(allowed[name].usage), "summary": ctx.t._(allowed[name].summary)}
        for name in COMMANDS
        if name in allowed
    ]
    first = first_visit(ctx.session, ctx.member, platform, ctx.now)
    return Reply(
        "welcome/welcome",
        {"member_name": ctx.member.name, "commands": commands},
        surface="message" if first else "none",
    )
