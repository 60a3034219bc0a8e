"""`/scrutiny meetings [board]`: the next board meetings and their question windows."""

from __future__ import annotations

from bot.context import Context, UserError
from bot.i18n import N_
from bot.messages import Reply, Request
from bot.router import Router
from handlers.listing import meetings_reply, read_query

router = Router("meetings")


@router.command(
    "meetings",
    writes=False,
    aliases=("cyfarfodydd",),
    summary=N_("Show the next board meetings and when questions for them close."),
    usage=N_("meetings [strategic|finance|business]"),
)
def list_meetings(request: Request, ctx: Context) -> Reply:
    """The next meetings, of one board when named."""
    query = read_query(request, ctx)
    if query.terms or query.partners:
        raise UserError(
            ctx.t._(
                "Meetings can only be narrowed to a board (strategic, finance or business) "
                "and a period (e.g. {cmd} meetings strategic next month)."
            ).format(cmd=ctx.t.cmd)
        )
    return meetings_reply(query, ctx)
