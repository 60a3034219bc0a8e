"""`/scrutiny history REF` and `/scrutiny deliveries`: the secretariat's view of the audit log and
of the outbox, in chat. The operator's fuller versions are `scrutiny-bot audit` and
`scrutiny-bot deliveries`."""

from __future__ import annotations

from bot.context import Context, UserError
from bot.domain import DeliveryState, Role
from bot.i18n import N_
from bot.messages import Reply, Request
from bot.router import Router
from bot.services import delivery_log, history
from bot.services.post_items import items_visible
from bot.text_input import whole_number
from bot.visibility import audience_of_member
from handlers.listing import withheld_reply

router = Router("history")

PER_PAGE = 10
MAX_PAGE = 1000
"""Page numbers past this are refused rather than read (nobody pages through 10,000 events)."""

STATE_WORDS: dict[str, DeliveryState] = {
    "pending": DeliveryState.PENDING,
    "waiting": DeliveryState.PENDING,
    "aros": DeliveryState.PENDING,
    "sending": DeliveryState.SENDING,
    "sent": DeliveryState.SENT,
    "anfonwyd": DeliveryState.SENT,
    "failed": DeliveryState.FAILED,
    "methwyd": DeliveryState.FAILED,
    "cancelled": DeliveryState.CANCELLED,
    "canceled": DeliveryState.CANCELLED,
    "canslwyd": DeliveryState.CANCELLED,
}
"""Words that name a delivery state, in English and Welsh."""

PAGE_WORDS = ("page", "tudalen")


def _page_and_rest(words: list[str], ctx: Context) -> tuple[int, list[str]]:
    """Split off a trailing `page N`; N must be a plain number from 1 to MAX_PAGE."""
    if len(words) >= 2 and words[-2].lower() in PAGE_WORDS:
        page = whole_number(words[-1], MAX_PAGE)
        if page is None or page < 1:
            raise UserError(
                ctx.t._("“{value}” is not a page number; give a number from 1 to {most}.").format(
                    value=words[-1], most=MAX_PAGE
                )
            )
        return page, words[:-2]
    return 1, words


@router.command(
    "history",
    aliases=("hanes", "audit"),
    summary=N_("Who changed an item and when, with before and after (secretariat)."),
    usage=N_("history REF [page N] (e.g. history TP-014)"),
    roles=(Role.SECRETARIAT,),
    writes=False,
    cached=False,
)
def show_history(request: Request, ctx: Context) -> Reply:
    """The audit trail of one ref, newest first, ten at a time."""
    page, words = _page_and_rest(request.text.split(), ctx)
    if len(words) != 1:
        raise UserError(
            ctx.t._("Give one reference, for example: {cmd} {usage}").format(
                cmd=ctx.t.cmd, usage="history TP-014"
            )
        )
    ref = words[0]
    hidden = history.withheld_entities(ctx.session, ref, ctx.audience)
    query = history.HistoryFilter(
        ref=ref, offset=(page - 1) * PER_PAGE, limit=PER_PAGE, hidden_entities=hidden
    )
    total = history.count_history(ctx.session, query)
    if hidden and total == 0:
        member_may_see = not history.withheld_entities(
            ctx.session, ref, audience_of_member(ctx.member)
        )
        return withheld_reply(ref.upper(), request, ctx, member_may_see)
    entries = history.read_history(ctx.session, query, ctx.t, preview=history.VALUE_PREVIEW)
    return Reply(
        "history/history",
        {
            "ref": ref.upper(),
            "entries": entries,
            "total": total,
            "first": query.offset + 1,
            "last": query.offset + len(entries),
            "next_command": f"history {ref} page {page + 1}"
            if query.offset + len(entries) < total
            else None,
        },
    )


@router.command(
    "deliveries",
    aliases=("postiadau",),
    summary=N_("What the bot posted where, what waits and what failed (secretariat)."),
    usage=N_("deliveries [pending|sent|failed|cancelled] [channel] [page N], or deliveries ID"),
    roles=(Role.SECRETARIAT,),
    writes=False,
    cached=False,
)
def show_deliveries(request: Request, ctx: Context) -> Reply:
    """The outbox, newest first, or one post with what it said."""
    words = request.text.split()
    if len(words) == 1 and words[0].isascii() and words[0].isdigit():
        return _one_delivery(words[0], request, ctx)
    page, words = _page_and_rest(words, ctx)
    state = None
    channel = None
    for word in words:
        if word.lower() in STATE_WORDS and state is None:
            state = STATE_WORDS[word.lower()]
        elif channel is None:
            channel = word
        else:
            raise UserError(
                ctx.t._("Give at most a state and a channel, for example: {cmd} {usage}").format(
                    cmd=ctx.t.cmd, usage="deliveries failed srs-secretariat"
                )
            )
    query = delivery_log.DeliveryFilter(
        channel=channel, state=state, offset=(page - 1) * PER_PAGE, limit=PER_PAGE
    )
    try:
        rows = delivery_log.list_deliveries(ctx.session, query)
    except delivery_log.UnknownChannel as unknown:
        raise UserError(_unknown_channel(unknown, ctx)) from None
    total = delivery_log.count_deliveries(ctx.session, query)
    stuck = delivery_log.waiting_without_credentials(
        ctx.session, ctx.app.settings.posting_platforms
    )
    next_words = " ".join([*(w for w in words), "page", str(page + 1)])
    return Reply(
        "deliveries/list",
        {
            "rows": rows,
            "total": total,
            "first": query.offset + 1,
            "last": query.offset + len(rows),
            "state": state.value if state else None,
            "channel": channel,
            "stuck": sorted((p.value, n) for p, n in stuck.items()),
            "next_command": f"deliveries {next_words}"
            if query.offset + len(rows) < total
            else None,
        },
    )


def _one_delivery(number: str, request: Request, ctx: Context) -> Reply:
    if len(number) > 12:
        raise UserError(ctx.t._("There is no delivery {id}.").format(id=number[:12] + "…"))
    detail = delivery_log.get_delivery(ctx.session, int(number))
    if detail is None:
        raise UserError(ctx.t._("There is no delivery {id}.").format(id=number))
    if not items_visible(ctx.session, detail.items, ctx.audience):
        member_may_see = items_visible(ctx.session, detail.items, audience_of_member(ctx.member))
        return withheld_reply(f"#{detail.row.id}", request, ctx, member_may_see)
    return Reply("deliveries/detail", {"detail": detail, "row": detail.row})


def _unknown_channel(unknown: delivery_log.UnknownChannel, ctx: Context) -> str:
    if unknown.suggestions:
        return ctx.t._("There is no channel “{slug}”. Did you mean: {suggestions}?").format(
            slug=unknown.slug, suggestions=", ".join(unknown.suggestions)
        )
    return ctx.t._("There is no channel “{slug}”; give a channel's slug.").format(slug=unknown.slug)
