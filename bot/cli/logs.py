"""`scrutiny-bot deliveries` and `scrutiny-bot audit`: the delivery log and the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer

from bot.cli.output import echo
from bot.cli.startup import settings_or_exit
from bot.i18n import _, ngettext
from bot.settings import Settings

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session


deliveries_cli = typer.Typer(
    help="The delivery log: what was posted where, what waits, what failed.",
    invoke_without_command=True,
)


def aligned_columns(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A header line and one line per row, each column padded to its widest cell."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (headers, *rows)
    ]


def _since_option(value: str | None, settings: Settings) -> datetime | None:
    """`--since YYYY-MM-DD` as midnight in the collaboration's time zone (exit 2 if bad)."""
    from datetime import date as date_type
    from datetime import time as time_type

    from bot.fields import date_example
    from bot.imports.cells import at_local

    if value is None:
        return None
    try:
        day = date_type.fromisoformat(value.strip())
    except ValueError:
        echo(
            _("--since “{value}” is not a date; use YYYY-MM-DD (e.g. {example}).").format(
                value=value, example=date_example(value).isoformat()
            ),
            err=True,
        )
        raise typer.Exit(2) from None
    return at_local(day, time_type(0, 0), settings.timezone)


@deliveries_cli.callback()
def deliveries(
    ctx: typer.Context,
    failed: bool = typer.Option(False, "--failed", help=_("Only deliveries that failed.")),
    state: str | None = typer.Option(
        None,
        "--state",
        help=_("Only this state: pending, sending, sent, failed or cancelled."),
        show_default=False,
    ),
    channel: str | None = typer.Option(
        None, "--channel", help=_("Only this channel (its slug)."), show_default=False
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        help=_("Only posts queued on or after this date (YYYY-MM-DD)."),
        show_default=False,
    ),
    retry: int | None = typer.Option(
        None, "--retry", help=_("Queue this failed delivery again."), show_default=False
    ),
    limit: int = typer.Option(50, min=1, max=10_000, help=_("How many to list, newest first.")),
) -> None:
    """List the outbox (scheduled posts) with headers and filters, or queue a failed post again;
    `deliveries show ID` prints one post as it was posted."""
    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.domain import DeliveryState
    from bot.outbox import retry_failed
    from bot.services import delivery_log

    if ctx.invoked_subcommand is not None:
        return
    settings = settings_or_exit()
    sessions = make_session_factory(make_engine(settings.database_url))
    if retry is not None:
        with unit_of_work(sessions) as session:
            delivery = retry_failed(session, retry)
            if delivery is None:
                echo(
                    _(
                        "There is no failed or cancelled delivery {id}; "
                        "scrutiny-bot deliveries --failed lists them."
                    ).format(id=retry),
                    err=True,
                )
                raise typer.Exit(1)
            echo(
                _("Delivery {id} ({key}) is queued again; the worker sends it shortly.").format(
                    id=delivery.id, key=delivery.idempotency_key
                )
            )
        return
    wanted: DeliveryState | None = DeliveryState.FAILED if failed else None
    if state is not None:
        try:
            wanted = DeliveryState(state.strip().lower())
        except ValueError:
            echo(
                _("--state “{value}” is not a state; use one of: {states}.").format(
                    value=state, states=", ".join(s.value for s in DeliveryState)
                ),
                err=True,
            )
            raise typer.Exit(2) from None
    query = delivery_log.DeliveryFilter(
        channel=channel, state=wanted, since=_since_option(since, settings), limit=limit
    )
    with unit_of_work(sessions) as session:
        _warn_waiting(session, settings)
        try:
            rows = delivery_log.list_deliveries(session, query)
        except delivery_log.UnknownChannel as unknown:
            hint = (
                _(" Did you mean: {suggestions}?").format(
                    suggestions=", ".join(unknown.suggestions)
                )
                if unknown.suggestions
                else ""
            )
            echo(_("There is no channel “{slug}”.").format(slug=unknown.slug) + hint, err=True)
            raise typer.Exit(2) from None
        total = delivery_log.count_deliveries(session, query)
    if not rows:
        if wanted is DeliveryState.FAILED and not (query.channel or query.since):
            echo(_("No failed deliveries."))
        elif query.channel or wanted or query.since:
            echo(_("No deliveries match."))
        else:
            echo(_("The outbox is empty."))
        return
    zone = settings.timezone
    headers = (_("ID"), _("STATE"), _("TRIES"), _("CHANNEL"), _("WHEN (local)"), _("KEY"))
    table = [
        (
            str(row.id),
            row.state.value,
            str(row.attempts),
            row.channel,
            f"{row.when.astimezone(zone):%Y-%m-%d %H:%M}",
            row.key,
        )
        for row in rows
    ]
    heading, *lines = aligned_columns(headers, table)
    echo(heading)
    for row, line in zip(rows, lines, strict=True):
        echo(line)
        if row.last_error:
            echo("    " + _("error: {error}").format(error=row.last_error[:200]))
    if total > len(rows):
        echo(
            _("Showing {shown} of {total}, newest first; --limit shows more.").format(
                shown=len(rows), total=total
            )
        )


def _warn_waiting(session: Session, settings: Settings) -> None:
    """Warn on stderr about posts that wait for a platform with no credentials here."""
    from bot.services.delivery_log import waiting_without_credentials

    for platform, count in sorted(
        waiting_without_credentials(session, settings.posting_platforms).items()
    ):
        echo(
            ngettext(
                "Warning: {count} post is waiting for {platform}, which has no credentials "
                "here; it will not be sent until they are set.",
                "Warning: {count} posts are waiting for {platform}, which has no credentials "
                "here; they will not be sent until they are set.",
                count,
            ).format(count=count, platform=platform.value),
            err=True,
        )


@deliveries_cli.command("show")
def deliveries_show(
    delivery_id: int = typer.Argument(..., help=_("The delivery's ID (first column).")),
) -> None:
    """Print one post: where, when, its state and the message as posted."""
    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.services.delivery_log import get_delivery

    settings = settings_or_exit()
    with unit_of_work(make_session_factory(make_engine(settings.database_url))) as session:
        detail = get_delivery(session, delivery_id)
    if detail is None:
        echo(_("There is no delivery {id}.").format(id=delivery_id), err=True)
        raise typer.Exit(1)
    row = detail.row
    zone = settings.timezone
    lines = [
        _("Delivery {id}: {key}").format(id=row.id, key=row.key),
        _("channel: {name} ({slug}, {platform})").format(
            name=row.channel_name, slug=row.channel, platform=row.platform.value
        ),
        ngettext(
            "state: {state}, {count} try", "state: {state}, {count} tries", row.attempts
        ).format(state=row.state.value, count=row.attempts),
        _("queued: {when}").format(when=f"{row.created_at.astimezone(zone):%Y-%m-%d %H:%M %Z}"),
    ]
    if row.sent_at:
        lines.append(
            _("posted: {when} (message id {id})").format(
                when=f"{row.sent_at.astimezone(zone):%Y-%m-%d %H:%M %Z}",
                id=row.platform_message_id or "-",
            )
        )
    else:
        lines.append(
            _("next try: {when}").format(
                when=f"{row.next_try_at.astimezone(zone):%Y-%m-%d %H:%M %Z}"
            )
        )
    if row.last_error:
        lines.append(_("last error: {error}").format(error=row.last_error))
    lines += ["", detail.text]
    echo("\n".join(lines))


def audit_log(
    ref: str | None = typer.Argument(
        None,
        help=_("Only this item (e.g. TP-014, SB-2026-014, a member's slug)."),
        show_default=False,
    ),
    actor: str | None = typer.Option(
        None,
        "--actor",
        help=_("Only changes made by this member (slug) or process."),
        show_default=False,
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        help=_("Only changes on or after this date (YYYY-MM-DD)."),
        show_default=False,
    ),
    limit: int = typer.Option(50, min=1, max=200, help=_("How many to show, newest first.")),
) -> None:
    """Who changed what and when, with before and after in words (the audit log)."""
    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.i18n import Translator
    from bot.services.history import HistoryFilter, count_history, read_history

    settings = settings_or_exit()
    query = HistoryFilter(ref=ref, actor=actor, since=_since_option(since, settings), limit=limit)
    t = Translator(settings.scrutiny_language, settings.timezone)
    with unit_of_work(make_session_factory(make_engine(settings.database_url))) as session:
        entries = read_history(session, query, t)
        total = count_history(session, query)
    if not entries:
        echo(_("No changes match."))
        return
    headers = (_("WHEN (local)"), _("WHO"), _("WHAT"), _("ITEM"))
    table = [
        (
            f"{e.at.astimezone(settings.timezone):%Y-%m-%d %H:%M}",
            e.actor,
            e.verb,
            f"{e.entity} {e.ref}",
        )
        for e in entries
    ]
    heading, *lines = aligned_columns(headers, table)
    echo(heading)
    for entry, line in zip(entries, lines, strict=True):
        echo(line)
        for change in entry.changes:
            if change.before is None:
                echo(f"    {change.field}: {change.after}")
            else:
                after = change.after if change.after is not None else _("(removed)")
                echo(f"    {change.field}: {change.before} → {after}")
    if total > len(entries):
        echo(
            _("Showing {shown} of {total}, newest first; --limit shows more.").format(
                shown=len(entries), total=total
            )
        )
