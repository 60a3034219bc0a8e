"""`scrutiny-bot digest`: a channel's next digest, previewed."""

from __future__ import annotations

import typer

from bot.cli.output import echo
from bot.cli.startup import app_or_exit
from bot.clock import CLOCK
from bot.i18n import _

digest_cli = typer.Typer(help="Channel digests.", no_args_is_help=True)


@digest_cli.command("preview")
def digest_preview(
    channel: str = typer.Option(..., "--channel", help=_("Channel slug.")),
    at: str | None = typer.Option(
        None,
        "--at",
        help=_("Local date and time, YYYY-MM-DD HH:MM (default: now)."),
        show_default=False,
    ),
) -> None:
    """Show a channel's next digest as text, without posting or recording anything."""
    from datetime import datetime

    from sqlalchemy import select

    from bot.db import unit_of_work
    from bot.domain import Platform
    from bot.i18n import N_
    from bot.messages import Reply
    from bot.models import Channel
    from bot.schedule_time import ScheduleError, exists, parse_clock, parse_day, to_utc
    from bot.services.digests import TEMPLATE, build_digest

    app = app_or_exit()
    settings = app.settings
    now = CLOCK.now()
    if at is not None:
        try:
            day_text, _sep, clock_text = at.strip().partition(" ")
            local = datetime.combine(parse_day(day_text), parse_clock(clock_text or "09:00"))
            if not exists(local, settings.timezone):
                raise ScheduleError(
                    N_("{when} does not exist in UK time (the clocks go forward); pick another."),
                    when=at,
                )
        except ScheduleError as problem:
            echo(f"--at: {problem}", err=True)
            raise typer.Exit(2) from None
        now = to_utc(local, settings.timezone)
    with unit_of_work(app.sessions) as session:
        found = session.scalar(select(Channel).where(Channel.slug == channel))
        if found is None:
            slugs = ", ".join(session.scalars(select(Channel.slug).order_by(Channel.slug)))
            echo(
                _("There is no channel {slug}; the channels are: {slugs}.").format(
                    slug=channel, slugs=slugs or "-"
                ),
                err=True,
            )
            raise typer.Exit(2)
        content = build_digest(
            session, found, now=now, first_digest_days=settings.scrutiny_first_digest_days
        )
        text = app.renderer.render_text(
            Reply(TEMPLATE, content.context()),
            found.language.languages,
            Platform(found.platform),
        )
    echo(text)
    if content.is_empty:
        echo(
            "\n"
            + (
                _("(Nothing new: this channel posts “nothing new”.)")
                if found.post_empty_digest
                else _(
                    "(Nothing new: this channel skips empty digests, so nothing would be posted.)"
                )
            )
        )
