"""Joint-scrutiny questions from chat: ask, support, edit, withdraw, list; and for the
secretariat: windows, moderation (accept, reject, merge), the pack and answers.

Commands and the platform's forms and buttons go through the same service functions, and
roles are checked on the server for every one of them. Forms are offered as replies with
`surface="modal"`; platforms without forms show their text rendering, which gives the
equivalent command. Ids a platform maps buttons and forms onto:

- `question.support` (button, value = question ref), `question.accept` (button, value = ref)
- `question.ask` (form: meeting, question, theme, link), `question.ask_form` (button, value =
  meeting id: opens that form), `question.draft` (a message turned into a draft: request text)
- `question.ask_anyway` (button on the near-duplicate reply, value = JSON of the draft)
- `question.reject_form` / `question.reject` (button value or form metadata = ref; `reason`)
- `question.merge_form` / `question.merge` (button value or form metadata = ref; `into`, the
  ref it is merged into)
- `question.answer_form` / `question.answer` (metadata = ref; `answer`, `answered_by`)
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any
from zoneinfo import ZoneInfo

from bot.context import Context, UserError
from bot.domain import AnonymousQuestions, QuestionState, Role
from bot.i18n import N_
from bot.messages import Reply, Request
from bot.models import Meeting, Question
from bot.router import Router
from bot.services.questions import core as service
from bot.services.questions import pack as question_pack
from bot.services.questions import posts as question_posts
from bot.services.questions import windows
from bot.services.questions.core import MAX_LENGTH, THEMES, Duplicate
from bot.services.questions.windows import MeetingInfo, QuestionError
from bot.text_input import whole_number

router = Router("questions")

ASKERS = (Role.SCRUTINY_MEMBER, Role.BOARD_MEMBER, Role.SECRETARIAT)
SECRETARIAT = (Role.SECRETARIAT,)

ASK = "question.ask"
ASK_FORM = "question.ask_form"
DRAFT = "question.draft"
ASK_ANYWAY = "question.ask_anyway"
SUPPORT = "question.support"
ACCEPT = "question.accept"
REJECT_FORM = "question.reject_form"
REJECT = "question.reject"
MERGE_FORM = "question.merge_form"
MERGE = "question.merge"
ANSWER_FORM = "question.answer_form"
ANSWER = "question.answer"

MERGE_CHOICES_MAX = 100
"""Slack's limit on a static select's options: the merge form offers the first this many."""
BUTTON_VALUE_MAX = 2000
"""Slack's limit on a button's value: a longer draft gets no 'submit anyway' button."""
_BY = re.compile(r'^by[=:]\s*(?:"([^"]*)"|“([^”]*)”|(\S+))\s*', re.IGNORECASE)
_WINDOW_VERBS = {
    "open": "open",
    "agor": "open",
    "close": "close",
    "cau": "close",
    "extend": "extend",
    "estyn": "extend",
}


# -- shared steps -----------------------------------------------------------------------------
def _zone(ctx: Context) -> ZoneInfo:
    return ctx.app.settings.timezone


def _after_words(text: str, consumed: int) -> str:
    """The text after its first `consumed` words, line breaks kept."""
    stripped = text.strip()
    if consumed == 0:
        return stripped
    parts = stripped.split(None, consumed)
    return parts[consumed] if len(parts) > consumed else ""


def _meeting(
    words: list[str], ctx: Context, *, required: bool, example: str
) -> tuple[Meeting | None, list[str]]:
    spec, rest = windows.read_meeting_words(
        words, ctx.t, bare=True, boards=windows.board_names(ctx.session)
    )
    if spec is None:
        if required:
            raise QuestionError(
                ctx.t._(
                    "Name the meeting by board and date or number, e.g. {cmd} {example}."
                ).format(cmd=ctx.t.cmd, example=example),
                "meeting",
            )
        return None, rest
    meeting = windows.find_meeting(ctx.session, spec, now=ctx.now, zone=_zone(ctx), t=ctx.t)
    return meeting, rest


def _asker(ctx: Context) -> service.Asker:
    return service.Asker(ctx.member, ctx.audience, ctx.now, _zone(ctx), ctx.t)


def _view(question: Question, ctx: Context) -> service.QuestionView:
    return service.view(ctx.session, question, viewer=ctx.member, now=ctx.now, zone=_zone(ctx))


def _one_ref(words: list[str], ctx: Context, usage: str) -> str:
    if len(words) != 1:
        raise UserError(
            ctx.t._("Name one question, e.g. {cmd} {usage}.").format(cmd=ctx.t.cmd, usage=usage)
        )
    return words[0]


def _form_refused(problem: QuestionError, *, field: str | None = None) -> Reply:
    """The refusal under the form's field at fault (`field` when the form has only one)."""
    return Reply(
        "common/error",
        {"message": str(problem)},
        field_errors={field or problem.field: str(problem)},
    )


# -- asking -----------------------------------------------------------------------------------
def _ask_form(ctx: Context, *, draft: str = "", meeting_id: int | None = None) -> Reply:
    zone = _zone(ctx)
    meetings = windows.open_meetings(ctx.session, now=ctx.now)
    if not meetings:
        raise UserError(
            ctx.t._(
                "No meeting is taking questions now. {cmd} meetings shows when the next "
                "window opens."
            ).format(cmd=ctx.t.cmd)
        )
    if meeting_id is None and ctx.channel is not None and ctx.channel.board_id is not None:
        meeting_id = next((m.id for m in meetings if m.board_id == ctx.channel.board_id), None)
    chosen = next((m for m in meetings if m.id == meeting_id), meetings[0])
    return Reply(
        "questions/ask_form",
        {
            "callback_id": ASK,
            "meetings": [MeetingInfo.of(m, ctx.now, zone) for m in meetings],
            "chosen": chosen.id,
            "draft": draft[:MAX_LENGTH],
            "themes": THEMES,
            "max_length": MAX_LENGTH,
            # Boards (by name) whose meetings here take anonymous questions: the form offers it.
            "anonymous_boards": sorted(
                {
                    m.board.name_cy if ctx.t.language == "cy" else m.board.name
                    for m in meetings
                    if m.board.anonymous_questions != AnonymousQuestions.NO.value
                }
            ),
        },
        surface="modal",
    )


def _submit(meeting: Meeting, draft: service.Draft, ctx: Context, *, force: bool) -> Reply:
    zone = _zone(ctx)
    result = service.submit(
        ctx.session,
        meeting,
        ctx.member,
        ctx.audience,
        draft,
        now=ctx.now,
        zone=zone,
        t=ctx.t,
        force=force,
    )
    if isinstance(result, Duplicate):
        value = json.dumps(
            {
                "m": meeting.id,
                "q": draft.text,
                "t": draft.theme,
                "l": list(draft.links),
                **({"a": True} if draft.anonymous else {}),
            },
            ensure_ascii=False,
        )
        theme = f" theme:{draft.theme}" if draft.theme else ""
        anon = "anon " if draft.anonymous else ""
        return Reply(
            "questions/duplicate",
            {
                "existing": result.existing,
                "meeting": result.meeting,
                "score": round(result.score),
                "anyway_value": value if len(value) <= BUTTON_VALUE_MAX else None,
                "anyway_command": f"ask! {anon}{result.meeting.spec} {draft.text}{theme}",
            },
        )
    return Reply("questions/submitted", {"question": _view(result, ctx)})


ANONYMOUS_WORDS = ("anon", "anonymous", "dienw")
"""`ask anon ...` (Welsh `gofyn dienw ...`): the asker chooses to be anonymous."""


def _ask(request: Request, ctx: Context, *, force: bool) -> Reply:
    text = request.text
    words = text.split()
    anonymous = bool(words) and words[0].lower() in ANONYMOUS_WORDS
    if anonymous:
        text = _after_words(text, 1)
        words = words[1:]
    if not words:
        if anonymous:
            raise UserError(
                ctx.t._("Give the question after “anon”, e.g. {cmd} ask anon How …?").format(
                    cmd=ctx.t.cmd
                )
            )
        return _ask_form(ctx)
    spec, rest = windows.read_meeting_words(
        words, ctx.t, bare=False, boards=windows.board_names(ctx.session)
    )
    draft = service.read_draft(_after_words(text, len(words) - len(rest)), ctx.t)
    draft = dataclasses.replace(draft, anonymous=anonymous)
    if spec is not None:
        meeting = windows.find_meeting(ctx.session, spec, now=ctx.now, zone=_zone(ctx), t=ctx.t)
    else:
        board_id = ctx.channel.board_id if ctx.channel is not None else None
        meeting = windows.meeting_for_question(
            ctx.session, now=ctx.now, zone=_zone(ctx), board_id=board_id, t=ctx.t
        )
    return _submit(meeting, draft, ctx, force=force)


@router.command(
    "ask",
    aliases=("gofyn",),
    summary=N_(
        "Put a question to the next board meeting (optionally theme:delivery and refs such as "
        "TP-014)."
    ),
    usage=N_(
        "ask [anon] [strategic 2026-12-03] QUESTION [theme:delivery] (or no words: a form); "
        "anon, where the board allows it, keeps your name (or partner) off the question"
    ),
    roles=ASKERS,
)
def ask(request: Request, ctx: Context) -> Reply:
    """Submit a question, or open the form when no words are given."""
    return _ask(request, ctx, force=False)


@router.command(
    "ask!",
    aliases=("gofyn!",),
    summary=N_("Submit a question even though a similar one has been asked."),
    usage=N_("ask! [anon] [strategic 2026-12-03] QUESTION"),
    roles=ASKERS,
)
def ask_anyway(request: Request, ctx: Context) -> Reply:
    """Submit without the near-duplicate check stopping it."""
    return _ask(request, ctx, force=True)


@router.action(ASK, roles=ASKERS)
def ask_submitted(request: Request, ctx: Context) -> Reply:
    """The question form was submitted: meeting (id), question, theme, link."""
    values = request.values
    try:
        meeting_id = whole_number(str(values.get("meeting") or "").strip())
        if meeting_id is None:
            raise QuestionError(ctx.t._("Choose the meeting the question is for."), "meeting")
        meeting = windows.find_meeting(
            ctx.session, ("id", meeting_id), now=ctx.now, zone=_zone(ctx), t=ctx.t
        )
        draft = service.read_draft(
            str(values.get("question") or ""),
            ctx.t,
            theme=str(values.get("theme") or ""),
            links=str(values.get("link") or ""),
        )
        anonymous = "anonymous" in str(values.get("anonymous") or "").split(",")
        return _submit(meeting, dataclasses.replace(draft, anonymous=anonymous), ctx, force=False)
    except QuestionError as problem:
        return _form_refused(problem)


@router.action(ASK_FORM, roles=ASKERS)
def open_ask_form(request: Request, ctx: Context) -> Reply:
    """The 'ask a question' button on a window announcement (value: the meeting id)."""
    value = str(request.values.get("value") or request.text).strip()
    return _ask_form(ctx, meeting_id=whole_number(value))


@router.action(DRAFT, roles=ASKERS)
def draft_from_message(request: Request, ctx: Context) -> Reply:
    """A chat message turned into a draft question: the form, filled with its words."""
    return _ask_form(ctx, draft=request.text.strip())


@router.action(ASK_ANYWAY, roles=ASKERS)
def ask_anyway_button(request: Request, ctx: Context) -> Reply:
    """'Submit mine anyway' on the near-duplicate reply."""
    try:
        data = json.loads(str(request.values.get("value") or request.text))
        meeting_id, text = int(data["m"]), str(data["q"])
        theme, links = str(data.get("t") or ""), " ".join(str(x) for x in data.get("l") or [])
    except (ValueError, KeyError, TypeError):
        raise UserError(ctx.t._("That button is no longer supported.")) from None
    meeting = windows.find_meeting(
        ctx.session, ("id", meeting_id), now=ctx.now, zone=_zone(ctx), t=ctx.t
    )
    draft = service.read_draft(text, ctx.t, theme=theme, links=links)
    draft = dataclasses.replace(draft, anonymous=data.get("a") is True)
    return _submit(meeting, draft, ctx, force=True)


# -- supporting, editing, withdrawing -------------------------------------------------------
def _support(ref: str, ctx: Context) -> Reply:
    question = service.support(ctx.session, ref, _asker(ctx))
    return Reply("questions/supported", {"question": _view(question, ctx)})


@router.command(
    "support",
    aliases=("cefnogi",),
    summary=N_("Support another member's question, so it is asked for your partner too."),
    usage=N_("support REF (e.g. support Q-SB-2026-12-003)"),
    roles=ASKERS,
)
def support(request: Request, ctx: Context) -> Reply:
    """Add the member's support to a question."""
    return _support(_one_ref(request.text.split(), ctx, "support Q-SB-2026-12-003"), ctx)


@router.action(SUPPORT, roles=ASKERS)
def support_button(request: Request, ctx: Context) -> Reply:
    """The 'support' button (value: the question ref)."""
    return _support(str(request.values.get("value") or request.text).strip(), ctx)


@router.command(
    "edit",
    aliases=("golygu",),
    summary=N_("Change the words of your own question while questions are open."),
    usage=N_("edit REF NEW WORDS"),
    roles=ASKERS,
)
def edit(request: Request, ctx: Context) -> Reply:
    """Replace the asker's question text (and theme, with theme:...)."""
    words = request.text.split()
    if not words:
        raise UserError(
            ctx.t._(
                "Name your question and give its new words, e.g. {cmd} edit "
                "Q-SB-2026-12-003 When will …?"
            ).format(cmd=ctx.t.cmd)
        )
    draft = service.read_draft(_after_words(request.text, 1), ctx.t)
    question = service.edit(ctx.session, words[0], _asker(ctx), draft)
    return Reply("questions/changed", {"verb": "edited", "questions": [_view(question, ctx)]})


@router.command(
    "withdraw",
    aliases=("tynnu-nol",),
    summary=N_("Withdraw your own question while questions are open."),
    usage=N_("withdraw REF"),
    roles=ASKERS,
)
def withdraw(request: Request, ctx: Context) -> Reply:
    """Withdraw the asker's own question (kept, marked withdrawn)."""
    ref = _one_ref(request.text.split(), ctx, "withdraw Q-SB-2026-12-003")
    question = service.withdraw(ctx.session, ref, _asker(ctx))
    return Reply("questions/changed", {"verb": "withdrawn", "questions": [_view(question, ctx)]})


# -- listing ----------------------------------------------------------------------------------
def _questions(
    ctx: Context,
    meeting: Meeting | None,
    *,
    states: tuple[QuestionState, ...] | None,
    sees_private: bool,
) -> service.QuestionList:
    """The questions this reader may see, as listed: for a listing and the merge form alike."""
    return service.list_questions(
        ctx.session,
        ctx.audience,
        ctx.member,
        now=ctx.now,
        zone=_zone(ctx),
        meeting=meeting,
        states=states,
        sees_private=sees_private,
    )


def _list(request: Request, ctx: Context, *, moderating: bool) -> Reply:
    words = request.text.split()
    meeting, rest = _meeting(words, ctx, required=False, example="questions strategic 2026-12-03")
    if rest:
        raise UserError(
            ctx.t._(
                "“{words}” is not a meeting; name one by board and date, e.g. "
                "strategic 2026-12-03, or leave it out."
            ).format(words=" ".join(rest))
        )
    secretariat = ctx.has_role(Role.SECRETARIAT)
    found = _questions(
        ctx,
        meeting,
        states=(QuestionState.SUBMITTED,) if moderating else None,
        sees_private=secretariat,
    )
    return Reply(
        "questions/list",
        {
            "found": found,
            "moderating": moderating,
            "secretariat": secretariat,
            "shared": not request.is_direct and request.channel_id is not None,
        },
    )


@router.command(
    "questions",
    aliases=("cwestiynau",),
    summary=N_("List the questions for coming meetings (or one meeting) with their state."),
    usage=N_("questions [strategic 2026-12-03]"),
)
def list_questions(request: Request, ctx: Context) -> Reply:
    """Questions this reader may see, by meeting."""
    return _list(request, ctx, moderating=False)


@router.command(
    "moderate",
    aliases=("cymedroli",),
    summary=N_(
        "Questions awaiting moderation, with accept, reject and merge buttons (secretariat)."
    ),
    usage=N_("moderate [strategic 2026-12-03]"),
    roles=SECRETARIAT,
)
def moderate(request: Request, ctx: Context) -> Reply:
    """Submitted questions still to be accepted, rejected or merged."""
    return _list(request, ctx, moderating=True)


# -- windows ----------------------------------------------------------------------------------
@router.command(
    "window",
    aliases=("ffenestr",),
    summary=N_("Open, close or extend a meeting's question window (secretariat)."),
    usage=N_("window open|close|extend strategic 2026-12-03 [until 2026-11-30 17:00]"),
    roles=SECRETARIAT,
)
def window(request: Request, ctx: Context) -> Reply:
    """Change a window and announce it in the partner channels."""
    words = request.text.split()
    verb = _WINDOW_VERBS.get(words[0].lower()) if words else None
    if verb is None:
        raise UserError(
            ctx.t._(
                "Say open, close or extend, e.g. {cmd} window open strategic 2026-12-03."
            ).format(cmd=ctx.t.cmd)
        )
    zone = _zone(ctx)
    meeting, rest = _meeting(
        words[1:], ctx, required=True, example=f"window {verb} strategic 2026-12-03"
    )
    assert meeting is not None
    until = windows.parse_until(rest, zone, ctx.t)
    if verb == "close" and until is not None:
        raise UserError(
            ctx.t._("A window closes now; to set a later time use {cmd} window extend.").format(
                cmd=ctx.t.cmd
            )
        )
    common: dict[str, Any] = {"now": ctx.now, "zone": zone, "actor": ctx.member.slug, "t": ctx.t}
    renderer = ctx.app.renderer
    announced: list[str] = []
    if verb == "open":
        change = windows.open_window(ctx.session, meeting, until=until, **common)
        announced = question_posts.announce_window(
            ctx.session, meeting, renderer, now=ctx.now, zone=zone
        )
        if not announced:
            # Announced before (a window reopened): tell them of the new closing time instead.
            announced = question_posts.announce_window(
                ctx.session, meeting, renderer, now=ctx.now, zone=zone, kind="extend"
            )
    elif verb == "close":
        change = windows.close_window(ctx.session, meeting, **common)
    else:
        change = windows.extend_window(ctx.session, meeting, until=until, **common)
        announced = question_posts.announce_window(
            ctx.session, meeting, renderer, now=ctx.now, zone=zone, kind="extend"
        )
    return Reply("questions/window", {"change": change, "announced": announced})


# -- moderation -------------------------------------------------------------------------------
def _accept(refs: list[str], ctx: Context) -> Reply:
    accepted = [
        service.accept(ctx.session, ref, ctx.audience, actor=ctx.member.slug, now=ctx.now, t=ctx.t)
        for ref in dict.fromkeys(refs)
    ]
    return Reply(
        "questions/changed", {"verb": "accepted", "questions": [_view(q, ctx) for q in accepted]}
    )


@router.command(
    "accept",
    aliases=("derbyn",),
    summary=N_("Accept questions for the pack (secretariat)."),
    usage=N_("accept REF [REF ...]"),
    roles=SECRETARIAT,
)
def accept(request: Request, ctx: Context) -> Reply:
    """Accept one or more questions; all or none."""
    refs = request.text.split()
    if not refs:
        raise UserError(
            ctx.t._("Name the questions to accept, e.g. {cmd} accept Q-SB-2026-12-003.").format(
                cmd=ctx.t.cmd
            )
        )
    return _accept(refs, ctx)


@router.action(ACCEPT, roles=SECRETARIAT)
def accept_button(request: Request, ctx: Context) -> Reply:
    """The 'accept' button (value: the question ref)."""
    return _accept([str(request.values.get("value") or request.text).strip()], ctx)


def _reject(ref: str, reason: str, ctx: Context) -> Reply:
    question = service.reject(
        ctx.session, ref, reason, ctx.audience, actor=ctx.member.slug, now=ctx.now, t=ctx.t
    )
    return Reply("questions/changed", {"verb": "rejected", "questions": [_view(question, ctx)]})


@router.command(
    "reject",
    aliases=("gwrthod",),
    summary=N_("Reject a question with the reason its asker will see (secretariat)."),
    usage=N_("reject REF REASON"),
    roles=SECRETARIAT,
)
def reject(request: Request, ctx: Context) -> Reply:
    """Reject with a reason."""
    words = request.text.split()
    if not words:
        raise UserError(
            ctx.t._(
                "Name the question and give a reason, e.g. {cmd} reject "
                "Q-SB-2026-12-003 Answered in the budget paper."
            ).format(cmd=ctx.t.cmd)
        )
    return _reject(words[0], _after_words(request.text, 1), ctx)


@router.action(REJECT_FORM, roles=SECRETARIAT)
def reject_form(request: Request, ctx: Context) -> Reply:
    """The 'reject' button: a form asking for the reason (metadata: the ref)."""
    ref = str(request.values.get("value") or request.text).strip()
    question = service.get_question(ctx.session, ref, ctx.audience, ctx.t)
    return Reply(
        "questions/reject_form",
        {"callback_id": REJECT, "question": _view(question, ctx), "limit": service.REASON_MAX},
        surface="modal",
    )


@router.action(REJECT, roles=SECRETARIAT)
def reject_submitted(request: Request, ctx: Context) -> Reply:
    """The reject form was submitted."""
    try:
        return _reject(
            str(request.values.get("metadata") or ""), str(request.values.get("reason") or ""), ctx
        )
    except QuestionError as problem:
        return _form_refused(problem)


@router.command(
    "merge",
    aliases=("cyfuno",),
    summary=N_("Merge a question into another, keeping every asker and partner (secretariat)."),
    usage=N_("merge REF into REF"),
    roles=SECRETARIAT,
)
def merge(request: Request, ctx: Context) -> Reply:
    """Merge the first question into the second."""
    refs = [w for w in request.text.split() if w.lower() not in ("into", "i", "to", "->")]
    if len(refs) != 2:
        raise UserError(
            ctx.t._(
                "Name two questions, e.g. {cmd} merge Q-SB-2026-12-004 into Q-SB-2026-12-001."
            ).format(cmd=ctx.t.cmd)
        )
    return _merge(refs[0], refs[1], ctx)


def _merge(source: str, target: str, ctx: Context) -> Reply:
    merged = service.merge(
        ctx.session, source, target, ctx.audience, actor=ctx.member.slug, now=ctx.now, t=ctx.t
    )
    return Reply(
        "questions/changed",
        {
            "verb": "merged",
            "questions": [_view(merged.source, ctx)],
            "target": _view(merged.target, ctx),
            "added": merged.added,
        },
    )


@router.action(MERGE_FORM, roles=SECRETARIAT)
def merge_form(request: Request, ctx: Context) -> Reply:
    """The 'merge' button: a form choosing the question of the same meeting to merge it into,
    among the open ones this member may see (metadata: the ref)."""
    ref = str(request.values.get("value") or request.text).strip()
    question = service.get_question(ctx.session, ref, ctx.audience, ctx.t)
    found = _questions(ctx, question.meeting, states=service.OPEN_STATES, sees_private=True)
    targets = [v for group in found.meetings for v in group.questions if v.ref != question.ref]
    if not targets:
        raise UserError(
            ctx.t._(
                "No other open question of this meeting that {ref} could be merged into."
            ).format(ref=question.ref)
        )
    return Reply(
        "questions/merge_form",
        {
            "callback_id": MERGE,
            "question": _view(question, ctx),
            "targets": targets[:MERGE_CHOICES_MAX],
        },
        surface="modal",
    )


@router.action(MERGE, roles=SECRETARIAT)
def merge_submitted(request: Request, ctx: Context) -> Reply:
    """The merge form was submitted: every refusal is shown under its one field, `into`."""
    try:
        into = str(request.values.get("into") or "").strip()
        if not into:
            raise QuestionError(ctx.t._("Choose the question to merge it into."), "into")
        return _merge(str(request.values.get("metadata") or ""), into, ctx)
    except QuestionError as problem:
        return _form_refused(problem, field="into")


# -- the pack and answers ---------------------------------------------------------------------
@router.command(
    "pack",
    aliases=("pecyn",),
    summary=N_("The question pack of a meeting, by theme (secretariat)."),
    usage=N_("pack strategic 2026-12-03"),
    roles=SECRETARIAT,
)
def pack(request: Request, ctx: Context) -> Reply:
    """The pack as this reader may see it; the Word file comes from the command line."""
    meeting, rest = _meeting(
        request.text.split(), ctx, required=True, example="pack strategic 2026-12-03"
    )
    assert meeting is not None
    if rest:
        raise UserError(
            ctx.t._("Name just the meeting, e.g. {cmd} pack strategic 2026-12-03.").format(
                cmd=ctx.t.cmd
            )
        )
    built = question_pack.build_pack(
        ctx.session, meeting, ctx.audience, now=ctx.now, zone=_zone(ctx)
    )
    return Reply("questions/pack", {"outline": question_pack.outline(built, ctx.t), "pack": built})


def _answer(ref: str, text: str, by: str, ctx: Context) -> Reply:
    question, posts = question_posts.answer_question(
        ctx.session,
        ref,
        text,
        by or ctx.member.name,
        actor=ctx.member.slug,
        renderer=ctx.app.renderer,
        now=ctx.now,
        zone=_zone(ctx),
        t=ctx.t,
        audience=ctx.audience,
    )
    return Reply("questions/answered", {"question": _view(question, ctx), "posts": posts})


def _answer_form(ref: str, ctx: Context) -> Reply:
    question = service.get_question(ctx.session, ref, ctx.audience, ctx.t)
    return Reply(
        "questions/answer_form",
        {"callback_id": ANSWER, "question": _view(question, ctx), "by": ctx.member.name},
        surface="modal",
    )


@router.command(
    "answer",
    aliases=("ateb",),
    summary=N_("Record the answer to a question and post it to its partners (secretariat)."),
    usage=N_('answer REF [by="NAME, ROLE"] ANSWER'),
    roles=SECRETARIAT,
)
def answer(request: Request, ctx: Context) -> Reply:
    """Record an answer; with only a ref, open the form."""
    words = request.text.split()
    if not words:
        raise UserError(
            ctx.t._(
                "Name the question and give the answer, e.g. {cmd} answer "
                'Q-SB-2026-12-003 by="Head of SRS" The move ends in March.'
            ).format(cmd=ctx.t.cmd)
        )
    rest = _after_words(request.text, 1)
    if not rest:
        return _answer_form(words[0], ctx)
    by = ""
    match = _BY.match(rest)
    if match:
        by = next(g for g in match.groups() if g is not None)
        rest = rest[match.end() :]
    return _answer(words[0], rest, by, ctx)


@router.action(ANSWER_FORM, roles=SECRETARIAT)
def answer_form(request: Request, ctx: Context) -> Reply:
    """The 'answer' button (value: the question ref)."""
    return _answer_form(str(request.values.get("value") or request.text).strip(), ctx)


@router.action(ANSWER, roles=SECRETARIAT)
def answer_submitted(request: Request, ctx: Context) -> Reply:
    """The answer form was submitted (metadata: the ref)."""
    try:
        return _answer(
            str(request.values.get("metadata") or ""),
            str(request.values.get("answer") or ""),
            str(request.values.get("answered_by") or ""),
            ctx,
        )
    except QuestionError as problem:
        return _form_refused(problem)
