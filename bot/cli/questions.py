"""`scrutiny-bot questions`: a meeting's joint-scrutiny questions and their pack."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

from bot.cli.output import echo
from bot.cli.startup import settings_or_exit
from bot.clock import CLOCK
from bot.i18n import _

questions_cli = typer.Typer(
    help="Joint-scrutiny questions: a meeting's pack and its questions.", no_args_is_help=True
)

_MEETING_HELP = 'The meeting: its number, or board and date ("strategic 2026-12-03").'


def _questions_problem(problem: Exception) -> NoReturn:
    echo(str(problem), err=True)
    raise typer.Exit(1)


@questions_cli.command("pack")
def questions_pack(
    meeting: str = typer.Option(..., "--meeting", help=_MEETING_HELP),
    fmt: str = typer.Option("md", "--format", help="md or docx"),
    out: Path | None = typer.Option(
        None, "--out", help="File to write (Markdown goes to the terminal without it)."
    ),
    language: str | None = typer.Option(
        None,
        "--language",
        help=_("en, cy or cy+en (bilingual, Welsh first); default: SCRUTINY_LANGUAGE"),
        show_default=False,
    ),
) -> None:
    """Write a meeting's question pack as Markdown or Word, for the secretariat's readers."""

    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.domain import ChannelLanguage
    from bot.i18n import Translator, default_language
    from bot.services.questions import pack as question_pack
    from bot.services.questions.windows import QuestionError, meeting_named

    if fmt not in ("md", "docx"):
        echo(_('Unknown format "{fmt}": use md or docx.').format(fmt=fmt), err=True)
        raise typer.Exit(2)
    chosen = language if language is not None else default_language()
    if chosen not in {choice.value for choice in ChannelLanguage}:
        echo(
            _('Unknown language "{language}": use en, cy or cy+en.').format(language=chosen),
            err=True,
        )
        raise typer.Exit(2)
    settings = settings_or_exit()
    t = Translator(default_language(), settings.timezone)
    languages = [Translator(code, settings.timezone) for code in ChannelLanguage(chosen).languages]
    now = CLOCK.now()
    sessions = make_session_factory(make_engine(settings.database_url))
    try:
        with unit_of_work(sessions) as session:
            found = meeting_named(session, meeting, now=now, zone=settings.timezone, t=t)
            audience = question_pack.secretariat_audience(session)
            pack = question_pack.build_pack(
                session, found, audience, now=now, zone=settings.timezone
            )
    except QuestionError as problem:
        _questions_problem(problem)
    if fmt == "md":
        text = question_pack.to_markdown(pack, languages)
        if out is None:
            echo(text)
            return
        out.write_text(text, encoding="utf-8")
    else:
        out = out or Path(question_pack.file_name(pack, "docx"))
        out.write_bytes(question_pack.to_docx(pack, languages))
    echo(
        _("Wrote {file}: {count} questions.").format(file=out, count=len(pack.questions)),
        err=True,
    )


@questions_cli.command("list")
def questions_list(meeting: str = typer.Option(..., "--meeting", help=_MEETING_HELP)) -> None:
    """List every question of a meeting with its state and partners (secretariat's view)."""

    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.i18n import Translator, default_language
    from bot.services.questions import pack as question_pack
    from bot.services.questions.core import STATE_LABELS, list_questions
    from bot.services.questions.windows import QuestionError, meeting_named

    settings = settings_or_exit()
    t = Translator(default_language(), settings.timezone)
    now = CLOCK.now()
    sessions = make_session_factory(make_engine(settings.database_url))
    try:
        with unit_of_work(sessions) as session:
            found = meeting_named(session, meeting, now=now, zone=settings.timezone, t=t)
            listed = list_questions(
                session,
                question_pack.secretariat_audience(session),
                None,
                now=now,
                zone=settings.timezone,
                meeting=found,
                sees_private=True,
            )
    except QuestionError as problem:
        _questions_problem(problem)
    for group in listed.meetings:
        if not group.questions:
            echo(_("No questions for {meeting}.").format(meeting=group.meeting.spec))
        for q in group.questions:
            partners = ", ".join(p.slug for p in (*q.askers, *q.supporters))
            state = t._(STATE_LABELS[q.state])
            echo(f"{q.ref:<20} {state:<20} {partners:<40} {q.text[:70]}")
    if listed.withheld_total:
        echo(
            _("{count} more not shown: above the secretariat channel's clearance.").format(
                count=listed.withheld_total
            )
        )
