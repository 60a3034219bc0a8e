"""Replies shared by the query commands (actions, decisions, meetings, find): lists ten at a
time with a next-page command, single items by ref, and content-free withheld notices.

Contexts hold frozen views and raw filter values; templates translate and format them, so
one reply renders in English and Welsh alike (a `cy+en` channel gets both).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.context import Context, UserError
from bot.domain import ActionStatus, Role
from bot.fields import not_a_date
from bot.messages import Reply, Request
from bot.services import queries, trail
from bot.services.lexicon import lexicon_of
from bot.services.plain_words import (
    OPEN_STATUSES,
    Kind,
    Language,
    Lexicon,
    Query,
    command_words,
    parse,
    ref_kind,
    without_filters,
    without_terms,
)
from bot.visibility import audience_of_member
from handlers.register import OPEN_UPDATE_FORM

PER_PAGE = 10
"""Items per page in every list reply (keeps a Slack message well inside its block limit)."""
TRAIL_SHOWN = 10
"""Linked actions or questions shown under one item (each list stays in one Slack section)."""


def lexicon(ctx: Context) -> Lexicon:
    """The reader's words for this collaboration (names from the database, the glossary)."""
    return lexicon_of(ctx.session, ctx.app.settings.scrutiny_config)


def member_language(ctx: Context) -> Language:
    """The language the asker reads replies in."""
    return "cy" if ctx.t.language == "cy" else "en"


def command_name(ctx: Context, name: str) -> str:
    """A command as the asker would type it: `camau` for a Welsh reader, `actions` otherwise
    (the first word of the command's usage line in the asker's language)."""
    command = ctx.app.commands[ctx.app.aliases.get(name, name)]
    usage = ctx.t._(command.usage).split() if command.usage else []
    return usage[0] if usage and ctx.app.aliases.get(usage[0]) == command.name else command.name


def read_query(request: Request, ctx: Context) -> Query:
    """Parse the request's words; a word that looks like a date but is not one is an error.
    "The last meeting" becomes the date of the board's latest meeting so far."""
    query = parse(request.text, ctx.today, lexicon(ctx), member_language(ctx))
    if query.last_meeting:
        held = queries.last_meeting_day(
            ctx.session, now=ctx.now, zone=ctx.app.settings.timezone, board=query.board
        )
        if held is not None:
            query = replace(query, since=held, until=held, kinds=query.kinds | {"decisions"})
    if query.bad_dates:
        refused = not_a_date("since", query.bad_dates[0], example=ctx.today)
        raise UserError(refused.sentence(ctx.t._))
    return query


def is_shared(request: Request) -> bool:
    """Whether the reply is read in a channel rather than by the asker alone."""
    return not request.is_direct and request.channel_id is not None


def _statuses(query: Query) -> frozenset[ActionStatus] | None:
    """Statuses to list: as asked; else open ones when browsing, any when searching words."""
    if query.statuses:
        return query.statuses
    if query.all_statuses or query.text:
        return None
    return OPEN_STATUSES


def _filters(query: Query, ctx: Context, kind: Kind) -> dict[str, Any]:
    """The filters in force, as views and raw values for the templates to describe."""
    partners = queries.partner_views(ctx.session) if query.partners else {}
    boards = queries.board_views(ctx.session) if query.board else {}
    board = boards.get(query.board) if query.board else None
    actions = kind == "actions"
    return {
        "partners": [partners[s] for s in query.partners if s in partners],
        "board": None if actions else board,
        "statuses": _status_words(query) if actions else [],
        "overdue": query.overdue and actions,
        "due_within_days": query.due_within_days if actions else None,
        "rags": sorted(r.value for r in query.rags) if actions else [],
        "since": query.since,
        "until": query.until,
        "text": query.text,
        "also": list(query.also),
    }


def no_filters() -> dict[str, Any]:
    """The filters of a reply that used none (items asked for by ref)."""
    return {
        "partners": [],
        "board": None,
        "statuses": [],
        "overdue": False,
        "due_within_days": None,
        "rags": [],
        "since": None,
        "until": None,
        "text": None,
        "also": [],
    }


def _status_words(query: Query) -> list[str]:
    statuses = _statuses(query)
    if statuses is None or (statuses == OPEN_STATUSES and (query.overdue or query.due_within_days)):
        return []
    return ["open"] if statuses == OPEN_STATUSES else sorted(s.value for s in statuses)


def _suggestions(query: Query, kind: Kind, ctx: Context) -> list[str]:
    """Broader commands to try when nothing was found, in the asker's language."""
    words = lexicon(ctx)
    language = member_language(ctx)
    name = command_name(ctx, kind)

    def say(q: Query) -> str:
        return command_words(q, words, language=language)

    tries: list[str] = []
    if query.terms and query.has_filters:
        tries.append(f"{name} {say(without_terms(query))}")
        tries.append(f"{name} {say(without_filters(query))}")
    elif query.terms:
        if len(query.terms) > 1:
            tries.append(f"{name} {query.terms[0]}")
        other = command_name(ctx, "decisions" if kind == "actions" else "actions")
        tries.append(f"{other} {' '.join(query.terms)}")
    elif query.has_filters:
        tries.append(name)
    return [t.strip() for t in tries]


def _list_context(
    query: Query, ctx: Context, request: Request, kind: Kind, page: queries.Page[Any]
) -> dict[str, Any]:
    more = min(page.per_page, page.total_visible - page.last) if page.has_next else 0
    return {
        "page": page,
        "filters": _filters(query, ctx, kind),
        "next_command": (
            f"{kind} {command_words(query, lexicon(ctx), page=page.page + 1)}" if more else None
        ),
        "next_count": more,
        "shared": is_shared(request),
        "suggestions": _suggestions(query, kind, ctx) if not page.items else [],
        "hints": list(query.hints),
        "today": ctx.today,
    }


def _actions_page(
    query: Query, ctx: Context, page: int, per_page: int
) -> queries.Page[queries.ActionView]:
    return queries.find_actions(
        ctx.session,
        ctx.audience,
        today=ctx.today,
        partner=query.partners or None,
        status=_statuses(query),
        overdue=query.overdue,
        due_within_days=query.due_within_days,
        rag=query.rags or None,
        due_from=query.since,
        due_until=query.until,
        text=query.search_groups if query.terms else None,
        page=page,
        per_page=per_page,
        count_up_to=queries.COUNT_UP_TO,
    )


def _decisions_page(
    query: Query, ctx: Context, page: int, per_page: int
) -> queries.Page[queries.DecisionView]:
    return queries.find_decisions(
        ctx.session,
        ctx.audience,
        board=query.board,
        partner=query.partners or None,
        since=query.since,
        until=query.until,
        text=query.search_groups if query.terms else None,
        page=page,
        per_page=per_page,
        count_up_to=queries.COUNT_UP_TO,
    )


def actions_reply(query: Query, request: Request, ctx: Context) -> Reply:
    """A page of actions matching the query."""
    page = _actions_page(query, ctx, query.page, PER_PAGE)
    context = _list_context(query, ctx, request, "actions", page)
    context["show_partner"] = len(query.partners) != 1
    return Reply("actions/list", context)


def decisions_reply(query: Query, request: Request, ctx: Context) -> Reply:
    """A page of decisions matching the query."""
    page = _decisions_page(query, ctx, query.page, PER_PAGE)
    return Reply("decisions/list", _list_context(query, ctx, request, "decisions", page))


def meetings_reply(query: Query, ctx: Context) -> Reply:
    """The next meetings, of one board when the query names it, within the period it names
    ("in the next two weeks", "in December")."""
    meetings = queries.next_meetings(ctx.session, now=ctx.now, board=query.board, limit=PER_PAGE)
    last = query.until
    if query.ahead_days is not None:
        last = ctx.today + timedelta(days=query.ahead_days)
    zone = ctx.app.settings.timezone
    meetings = [
        m
        for m in meetings
        if (last is None or m.starts_at.astimezone(zone).date() <= last)
        and (query.since is None or m.starts_at.astimezone(zone).date() >= query.since)
    ]
    board = queries.board_views(ctx.session).get(query.board) if query.board else None
    return Reply("meetings/list", {"meetings": meetings, "board": board})


def _results(
    decisions: queries.Page[queries.DecisionView],
    actions: queries.Page[queries.ActionView],
    request: Request,
    ctx: Context,
    **context: Any,
) -> Reply:
    """The "find/results" reply: a few decisions and actions, and what was withheld."""
    withheld = dict(decisions.withheld)
    for reason, count in actions.withheld.items():
        withheld[reason] = withheld.get(reason, 0) + count
    return Reply(
        "find/results",
        {
            "decisions": decisions,
            "actions": actions,
            "withheld": withheld,
            "shared": is_shared(request),
            "today": ctx.today,
            **context,
        },
    )


def combined_reply(query: Query, request: Request, ctx: Context) -> Reply:
    """The best few decisions and actions for free text that names neither."""
    per_kind = PER_PAGE // 2
    words = command_words(query, lexicon(ctx), page=1)
    return _results(
        _decisions_page(query, ctx, 1, per_kind),
        _actions_page(query, ctx, 1, per_kind),
        request,
        ctx,
        decisions_command=f"decisions {words}".strip(),
        actions_command=f"actions {words}".strip(),
        filters=_filters(query, ctx, "decisions"),
        hints=list(query.hints),
        show_partner=len(query.partners) != 1,
    )


def refs_reply(refs: Sequence[str], request: Request, ctx: Context) -> Reply:
    """Several items named by ref in one question ("TP-014 and SB-2026-031")."""
    actions = [r for r in refs if ref_kind(r) == "actions"]
    decisions = [r for r in refs if ref_kind(r) == "decisions"]
    return _results(
        queries.decisions_by_refs(ctx.session, ctx.audience, decisions),
        queries.actions_by_refs(ctx.session, ctx.audience, actions, today=ctx.today),
        request,
        ctx,
        decisions_command="",
        actions_command="",
        filters={**no_filters(), "refs": list(refs)},
        hints=[],
        show_partner=True,
        command=None,
    )


def withheld_reply(ref: str, request: Request, ctx: Context, member_may_see: bool) -> Reply:
    """A content-free "REF exists, but ... not cleared" reply."""
    return Reply(
        "common/withheld",
        {
            "ref": ref,
            "shared": is_shared(request),
            "member_may_see": member_may_see and is_shared(request),
            "secretariat": ctx.app.secretariat_channel_name(ctx.session, request.platform),
        },
    )


def action_reply(ref: str, request: Request, ctx: Context) -> Reply:
    """One action by ref, or why it cannot be shown here."""
    found = queries.get_action(ctx.session, ctx.audience, ref, today=ctx.today)
    if isinstance(found, queries.Found):
        sources, hidden = trail.decisions_behind(
            ctx.session, ctx.audience, found.item.decision_refs
        )
        return Reply(
            "actions/detail",
            {
                "action": found.item,
                "sources": sources[:TRAIL_SHOWN],
                "more_sources": max(0, len(sources) - TRAIL_SHOWN),
                "trail_withheld": hidden,
                "shared": is_shared(request),
                "partner_names": queries.partner_views(ctx.session),
                "today": ctx.today,
                # A convenience only: the update form's handlers check the role themselves.
                "update_button": OPEN_UPDATE_FORM if ctx.has_role(Role.SECRETARIAT) else None,
            },
        )
    if isinstance(found, queries.Withheld):
        alone = queries.get_action(
            ctx.session, audience_of_member(ctx.member), ref, today=ctx.today
        )
        return withheld_reply(found.ref, request, ctx, isinstance(alone, queries.Found))
    return Reply("common/not_found", {"ref": found.ref, "kind": "actions"})


def decision_reply(ref: str, request: Request, ctx: Context) -> Reply:
    """One decision by ref, or why it cannot be shown here."""
    found = queries.get_decision(ctx.session, ctx.audience, ref)
    if isinstance(found, queries.Found):
        followed = trail.decision_trail(
            ctx.session,
            ctx.audience,
            found.item.ref,
            viewer=ctx.member,
            now=ctx.now,
            zone=ctx.app.settings.timezone,
        )
        return Reply(
            "decisions/detail",
            {
                "decision": found.item,
                "partner_names": queries.partner_views(ctx.session),
                "actions": followed.actions[:TRAIL_SHOWN],
                "more_actions": max(0, len(followed.actions) - TRAIL_SHOWN),
                "questions": followed.questions[:TRAIL_SHOWN],
                "more_questions": max(0, len(followed.questions) - TRAIL_SHOWN),
                "trail_withheld": followed.withheld,
                "shared": is_shared(request),
                "today": ctx.today,
            },
        )
    if isinstance(found, queries.Withheld):
        alone = queries.get_decision(ctx.session, audience_of_member(ctx.member), ref)
        return withheld_reply(found.ref, request, ctx, isinstance(alone, queries.Found))
    return Reply("common/not_found", {"ref": found.ref, "kind": "decisions"})


def single_ref(request: Request, ctx: Context, usage: str) -> str | None:
    """The one ref a command like `action TP-014` needs; None when the words are a question
    that starts with the command word ("cam 2 symud y ganolfan ddata", phase 2 of the move);
    a clear error when there are no words."""
    words = request.text.split()
    if len(words) > 1:
        return None
    if len(words) != 1:
        raise UserError(
            ctx.t._("Give one reference, for example: {cmd} {usage}").format(
                cmd=ctx.t.cmd, usage=usage
            )
        )
    return words[0]
