"""`/scrutiny attendance`: who attended the board meetings. Anyone reads the report (per
partner, board and year) or one meeting's record; the secretariat records a meeting's
attendance with `partner=present|absent|apologies` words, through the same service as the
register's web form and the `attendance` import."""

from __future__ import annotations

from bot.context import Context, UserError
from bot.domain import Role
from bot.i18n import N_
from bot.messages import Reply, Request
from bot.router import Router
from bot.services import attendance as service
from bot.services.plain_words import Lexicon, tokens
from bot.services.queries import MeetingView, board_views, partner_views
from bot.services.questions.windows import find_meeting, read_meeting_words
from handlers.listing import lexicon
from handlers.register import parse_words

router = Router("attendance")


def _named(word: str, kind: str, words: Lexicon) -> str | None:
    """The slug one word names as a `kind` ("partner" or "board"), if it names one."""
    found = tokens(word)
    matched = words.match(found, 0) if len(found) == 1 else None
    return matched[0][1] if matched is not None and matched[0][0] == kind else None


def _partner_key(key: str, words: Lexicon) -> str:
    # parse_words writes keys with "_" for "-"; a partner may also be named by a known word.
    slug = key.replace("_", "-")
    return _named(slug, "partner", words) or slug


@router.command(
    "attendance",
    summary=N_(
        "Partners' attendance at board meetings: the report by partner, board and year, one "
        "meeting's record, or record it (secretariat)."
    ),
    usage=N_("attendance [board] [partner] [year] | attendance MEETING [torfaen=present ...]"),
    aliases=("presenoldeb",),
)
def attendance_command(request: Request, ctx: Context) -> Reply:
    """The report, one meeting's attendance, or (secretariat) record a meeting's attendance."""
    plain, values = parse_words(request.text, ctx)
    words = lexicon(ctx)
    spec, rest = read_meeting_words(plain, ctx.t, bare=False, boards=words)
    if spec is None:
        if values:
            raise UserError(
                ctx.t._(
                    "Name the meeting before the attendance, by its board and date, e.g. "
                    "{cmd} attendance strategic 2026-12-03 torfaen=present newport=apologies."
                ).format(cmd=ctx.t.cmd)
            )
        return _report(plain, ctx, words)
    if rest:
        raise UserError(
            ctx.t._(
                "“{word}” is not partner=status; give each partner's attendance as "
                "partner=present, partner=absent or partner=apologies."
            ).format(word=rest[0])
        )
    meeting = find_meeting(ctx.session, spec, now=ctx.now, zone=ctx.app.settings.timezone, t=ctx.t)
    changed: dict[str, str] = {}
    if values:
        if not ctx.has_role(Role.SECRETARIAT):
            raise UserError(
                ctx.t._(
                    "Only the secretariat records attendance; anyone can read it with "
                    "{cmd} attendance."
                ).format(cmd=ctx.t.cmd)
            )
        statuses = {_partner_key(key, words): value for key, value in values.items()}
        try:
            checked = service.check_statuses(ctx.session, statuses, ctx.t)
        except service.AttendanceInvalid as refused:
            raise UserError(
                "\n".join(refused.errors.values()) + "\n" + ctx.t._("Nothing was recorded.")
            ) from None
        changed = service.record_attendance(ctx.session, meeting, checked, actor=ctx.member.slug)
    return Reply(
        "attendance/meeting",
        {
            "meeting": MeetingView.of(meeting, ctx.now),
            "attendance": service.attendance_of(ctx.session, meeting),
            "partners": partner_views(ctx.session),
            "labels": service.STATUS_LABELS,
            "recorded": bool(values),
            "changed": sorted(changed),
        },
    )


def _report(plain: list[str], ctx: Context, words: Lexicon) -> Reply:
    board: str | None = None
    partner: str | None = None
    year = ctx.today.year
    for word in plain:
        if word.isdigit() and len(word) == 4:
            year = int(word)
        elif _named(word, "board", words):
            board = _named(word, "board", words)
        elif _named(word, "partner", words):
            partner = _named(word, "partner", words)
        else:
            raise UserError(
                ctx.t._(
                    "“{word}” is not a board, a partner or a year; e.g. {cmd} attendance "
                    "strategic 2026, or {cmd} attendance strategic 2026-12-03 for one meeting."
                ).format(word=word, cmd=ctx.t.cmd)
            )
    figures = service.attendance_report(
        ctx.session, ctx.app.settings.timezone, year=year, board=board
    )
    if partner:
        figures = [f for f in figures if f.partner == partner]
    return Reply(
        "attendance/report",
        {
            "figures": figures,
            "year": year,
            "board": board_views(ctx.session).get(board) if board else None,
            "partner": partner_views(ctx.session).get(partner) if partner else None,
            "boards": board_views(ctx.session),
            "partners": partner_views(ctx.session),
        },
    )
