"""Repeating reminders skip England-and-Wales bank holidays by default, as digests can: set in
chat (English and Welsh words), the Slack form and the CLI, shown by `remind list`, and
checked across the 2026 bank holidays (Monday 28 December is the Boxing Day substitute)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.app import ScrutinyApp
from bot.cli import cli
from bot.clock import Clock
from bot.domain import ChannelLanguage, Platform
from bot.messages import Request
from bot.models import AuditEvent, Delivery, Reminder
from bot.schedule_time import ScheduleError, is_bank_holiday, parse_when
from bot.scheduler import run_due_reminders
from bot.services import reminders
from tests.conftest import NOW
from tests.factories import Seed
from tests.test_reminders import SECRETARY, say

BANK_HOLIDAYS_2026 = [
    date(2026, 1, 1),
    date(2026, 4, 3),
    date(2026, 4, 6),
    date(2026, 5, 4),
    date(2026, 5, 25),
    date(2026, 8, 31),
    date(2026, 12, 25),
    date(2026, 12, 26),  # Boxing Day falls on a Saturday ...
    date(2026, 12, 28),  # ... so Monday 28 December is its substitute.
]
WEEKDAY_BANK_HOLIDAYS_2026 = [day for day in BANK_HOLIDAYS_2026 if day.weekday() < 5]
BEFORE_2026 = datetime(2025, 12, 1, 9, 0, tzinfo=UTC)


def _only(session: Session) -> Reminder:
    session.expire_all()
    found = session.scalars(select(Reminder)).all()
    assert len(found) == 1
    return found[0]


def _runs_in_2026(reminder: Reminder) -> list[date]:
    """Every local date `reminder` posts on in 2026, by following `next_run` as the bot does."""
    days: list[date] = []
    moment = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    while (upcoming := reminders.next_run(reminder, moment)) is not None:
        day = upcoming.astimezone(ZoneInfo(reminder.timezone)).date()
        if day.year > 2026:
            break
        days.append(day)
        moment = upcoming
    return days


def _weekdays_2026() -> list[date]:
    day, days = date(2026, 1, 1), []
    while day.year == 2026:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def test_the_package_knows_the_2026_bank_holidays() -> None:
    every_day = [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]
    assert [day for day in every_day if is_bank_holiday(day)] == BANK_HOLIDAYS_2026


def test_a_new_weekday_reminder_skips_every_2026_bank_holiday(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    out = say(app, 'remind #srs-torfaen "Stand-up notes" every weekday 9am', now=BEFORE_2026)
    assert "Skips England and Wales bank holidays" in out
    reminder = _only(session)
    assert reminder.skip_bank_holidays
    posted = _runs_in_2026(reminder)
    assert sorted(set(_weekdays_2026()) - set(posted)) == WEEKDAY_BANK_HOLIDAYS_2026
    assert len(posted) == len(_weekdays_2026()) - len(WEEKDAY_BANK_HOLIDAYS_2026) == 253


def test_including_bank_holidays_posts_on_every_weekday(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    out = say(
        app,
        'remind #srs-torfaen "Stand-up notes" every weekday 9am including bank holidays',
        now=BEFORE_2026,
    )
    assert "Posts on bank holidays too." in out
    reminder = _only(session)
    assert not reminder.skip_bank_holidays and reminder.cron == "0 9 * * 1-5"
    assert _runs_in_2026(reminder) == _weekdays_2026()


def test_the_boxing_day_substitute_monday_gets_no_reminder_post(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    say(app, 'remind #srs-torfaen "Papers for F&G due" every monday 9am')
    say(app, 'remind #srs-police "Rota" every monday 9am including bank holidays')
    # Monday 28 December 2026, 9am (GMT): the worker runs at the time and a few minutes later.
    boxing_day_substitute = datetime(2026, 12, 28, 9, 0, tzinfo=UTC)
    for minutes in (0, 5):
        run_due_reminders(app, boxing_day_substitute + timedelta(minutes=minutes))
    next_monday = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    run_due_reminders(app, next_monday)
    session.expire_all()
    keys = sorted(
        key
        for key in session.scalars(select(Delivery.idempotency_key))
        if key.startswith("reminder:")
    )
    assert keys == [
        "reminder:1:2027-01-04T09:00",
        "reminder:2:2026-12-28T09:00",
        "reminder:2:2027-01-04T09:00",
    ]
    skipping = session.get(Reminder, 1)
    assert skipping is not None
    # Asked on Christmas Eve, the next run is after the holidays.
    christmas_eve = datetime(2026, 12, 24, 12, 0, tzinfo=UTC)
    assert reminders.next_run(skipping, christmas_eve) == next_monday


@pytest.mark.parametrize(
    ("words", "skips"),
    [
        ("every monday 9am", True),
        ("every monday 9am including bank holidays", False),
        ("every monday 9am, including the bank holidays", False),
        ("every monday 9am skipping bank holidays", True),
        ("every monday 9am except bank holidays", True),
        ("cron 0 9 * * 1 including bank holidays", False),
        ("bob dydd llun 9yb gan gynnwys gwyliau banc", False),
        ("bob dydd llun 9yb ac eithrio gwyliau banc", True),
        ("bob dydd llun 9yb heblaw am wyliau banc", True),
        ("bob dydd llun 9yb", True),
    ],
)
def test_chat_words_choose_in_english_and_welsh(
    app: ScrutinyApp, session: Session, seed: Seed, words: str, skips: bool
) -> None:
    out = say(app, f'remind #srs-torfaen "Papers due" {words}')
    assert "Reminder 1 set" in out or "Nodyn atgoffa 1" in out, out
    reminder = _only(session)
    assert reminder.cron == "0 9 * * 1"
    assert reminder.skip_bank_holidays is skips


def test_a_one_off_reminder_ignores_bank_holidays_and_refuses_words_about_them(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    say(app, 'remind #srs-torfaen "Office closed" on 2026-12-28 09:00')
    reminder = _only(session)
    assert reminder.run_at is not None and not reminder.skip_bank_holidays
    run_due_reminders(app, datetime(2026, 12, 28, 9, 0, tzinfo=UTC))
    session.expire_all()
    assert session.scalar(
        select(Delivery).where(Delivery.idempotency_key == "reminder:1:2026-12-28T09:00")
    )
    with pytest.raises(ScheduleError, match="only to repeating reminders"):
        parse_when("on 2026-12-28 09:00 skipping bank holidays", now=NOW)
    with pytest.raises(ScheduleError, match="not both"):
        parse_when("every monday 9am including bank holidays skipping bank holidays", now=NOW)


def test_remind_list_shows_which_reminders_skip_bank_holidays(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    say(app, 'remind #srs-torfaen "Papers" every monday 9am')
    say(app, 'remind #srs-torfaen "Rota" every monday 9am including bank holidays')
    say(app, 'remind #srs-torfaen "Budget" on 2026-12-01 09:30')
    listed = say(app, "remind list")
    lines = {line.split()[0]: line for line in listed.splitlines() if line.startswith("  ")}
    assert "every Monday at 9:00am · skips bank holidays" in lines["1"]
    assert "every Monday at 9:00am · including bank holidays" in lines["2"]
    assert "bank holidays" not in lines["3"]
    seed.members["ceri-morgan"].language = "cy"
    seed.channels["srs-secretariat"].language = ChannelLanguage.CY
    session.commit()
    welsh = say(app, "atgoffa rhestr")
    assert "yn hepgor gwyliau banc" in welsh and "gan gynnwys gwyliau banc" in welsh
    events = session.scalars(select(AuditEvent).where(AuditEvent.entity == "reminder")).all()
    assert [e.after["skip_bank_holidays"] for e in events] == [True, False, False]


def test_the_slack_form_offers_the_choice_and_skipping_is_the_default(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    form = app.dispatch(
        Request(platform=Platform.SLACK, user_id=SECRETARY, text="remind", now=NOW), "slack.json"
    )
    assert '"block_id": "bank_holidays"' in form.bodies[0]
    assert '"initial_option"' in form.bodies[0]
    values = {"channel": "srs-torfaen", "text": "Rota", "when": "every monday 9am"}
    included = app.interact(
        "remind.add",
        Request(
            Platform.SLACK, SECRETARY, "", now=NOW, values={**values, "bank_holidays": "include"}
        ),
    )
    assert "Posts on bank holidays too." in included.text
    skipped = app.interact(
        "remind.add",
        Request(Platform.SLACK, SECRETARY, "", now=NOW, values={**values, "bank_holidays": "skip"}),
    )
    assert "Skips England and Wales bank holidays" in skipped.text
    unanswered = app.interact(
        "remind.add", Request(Platform.SLACK, SECRETARY, "", now=NOW, values=values)
    )
    assert "Skips" in unanswered.text
    session.expire_all()
    flags = [r.skip_bank_holidays for r in session.scalars(select(Reminder).order_by(Reminder.id))]
    assert flags == [False, True, True]


def test_the_cli_sets_and_lists_the_choice(database_url: str, seed: Seed, clock: Clock) -> None:
    runner, env = CliRunner(), {"DATABASE_URL": database_url, "SCRUTINY_LANGUAGE": "en"}
    # 23 December 2026: the next Monday, 28 December, is a bank holiday.
    with clock.frozen(datetime(2026, 12, 23, 12, 0, tzinfo=UTC)):
        skipping = runner.invoke(
            cli, ["remind", "add", "srs-torfaen", "Papers", "every", "monday", "9am"], env=env
        )
        assert skipping.exit_code == 0, skipping.output
        assert "next on 2027-01-04 09:00" in skipping.output
        rota = ["srs-torfaen", "Rota", "--include-bank-holidays", "every", "monday", "9am"]
        including = runner.invoke(cli, ["remind", "add", *rota], env=env)
        assert including.exit_code == 0, including.output
        assert "next on 2026-12-28 09:00" in including.output
        listed = runner.invoke(cli, ["remind", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = [line.split(None, 1) for line in listed.output.splitlines() if line.strip()]
    by_id = {number: rest for number, rest in rows}
    assert "skips bank holidays" in by_id["1"] and "2027-01-04 09:00" in by_id["1"]
    assert "including bank holidays" in by_id["2"] and "2026-12-28 09:00" in by_id["2"]
