"""Reminders: created by the secretariat in chat, the form or the CLI, with friendly errors;
posted once per scheduled run; meeting reminders N days before each meeting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.app import ScrutinyApp
from bot.cli import cli
from bot.clock import Clock
from bot.domain import ChannelLanguage, Platform
from bot.messages import Request
from bot.models import Delivery, Reminder
from bot.schedule_time import Schedule, ScheduleError, parse_cron, parse_when
from bot.scheduler import run_due_reminders
from tests.conftest import NOW
from tests.factories import Seed

SECRETARY = "U0SEC00001"


def say(app: ScrutinyApp, text: str, user: str = SECRETARY, now: datetime = NOW) -> str:
    request = Request(
        platform=Platform.SLACK, user_id=user, text=text, channel_id="C0SEC00001", now=now
    )
    return app.dispatch(request).text


def _keys(session: Session) -> list[str]:
    session.expire_all()
    return list(session.scalars(select(Delivery.idempotency_key).order_by(Delivery.id)))


def test_the_secretariat_sets_a_weekly_reminder_in_chat(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    out = say(app, 'remind #srs-torfaen "Papers for F&G due" every monday 9am')
    assert "Reminder 1 set for #srs-torfaen: “Papers for F&G due”" in out
    assert "Monday 30 November 2026, 9:00am" in out
    reminder = session.scalar(select(Reminder))
    assert (
        reminder is not None
        and reminder.cron == "0 9 * * 1"
        and reminder.channel.slug == "srs-torfaen"
    )


def test_smart_quotes_and_slack_channel_mentions_work(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    out = say(app, "remind <#C0POL00001|srs-police> “Budget returns” on 2026-12-01 09:30")
    assert "Posts once, on Tuesday 1 December 2026, 9:30am" in out
    reminder = session.scalar(select(Reminder))
    assert reminder is not None and reminder.run_at == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ('#srs-torfaen "Papers" on 2026-03-29 01:30', "does not exist in UK time"),
        ('#srs-torfaen "Papers" on 2026-11-20 09:00', "has already passed"),
        ('#nowhere "Papers" every monday 9am', "I don't know the channel “#nowhere”"),
        ('#srs-torfaen "Papers" every monday 25pm', "“25pm” is not a time"),
        ('#srs-torfaen "Papers" every funday 9am', "I can't read “funday” as days"),
        ('#srs-torfaen "Papers" on 2026-02-30 09:00', "“2026-02-30” is not a date; use YYYY-MM-DD"),
        ('#srs-torfaen "Papers', "A quote is not closed"),
        ('#srs-torfaen "Papers" tomorrow', "Start with “every” (repeating) or “on” (once)"),
    ],
)
def test_bad_reminders_are_refused_with_what_to_fix(
    app: ScrutinyApp, session: Session, seed: Seed, words: str, expected: str
) -> None:
    out = say(app, f"remind {words}")
    assert expected in out
    assert session.scalars(select(Reminder)).all() == []


def test_only_the_secretariat_may_set_reminders(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    out = say(app, 'remind #srs-torfaen "x" every monday 9am', user="U0TOR00001")
    assert "Only members with the role secretariat can do that." in out
    assert session.scalars(select(Reminder)).all() == []


def test_list_and_cancel(app: ScrutinyApp, session: Session, seed: Seed) -> None:
    say(app, 'remind #srs-torfaen "Papers for F&G due" every monday 9am')
    listed = say(app, "remind list")
    assert "1 active reminder" in listed and "every Monday at 9:00am" in listed
    assert "Reminder 1 for #srs-torfaen is cancelled" in say(app, "remind cancel 1")
    assert "There is no active reminder 1" in say(app, "remind cancel 1")
    assert "There are no active reminders" in say(app, "remind list")


def test_the_form_is_offered_and_its_errors_name_the_field(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    form = app.dispatch(
        Request(platform=Platform.SLACK, user_id=SECRETARY, text="remind", now=NOW), "slack.json"
    )
    assert form.reply.surface == "modal" and "remind.add" in form.bodies[0]
    values = {"channel": "nowhere", "text": "Papers", "when": "every monday 9am"}
    refused = app.interact(
        "remind.add", Request(Platform.SLACK, SECRETARY, "", now=NOW, values=values)
    )
    assert set(refused.reply.field_errors) == {"channel"}
    values["channel"] = "srs-torfaen"
    accepted = app.interact(
        "remind.add", Request(Platform.SLACK, SECRETARY, "", now=NOW, values=values)
    )
    assert "Reminder 1 set" in accepted.text


def test_each_run_is_posted_once_and_a_one_off_retires(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> None:
    say(app, 'remind #srs-torfaen "Papers for F&G due" every monday 9am')
    say(app, 'remind #srs-torfaen "Budget returns" on 2026-12-01 09:30')
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    with clock.frozen(monday - timedelta(minutes=1)):
        assert [r.key for r in run_due_reminders(app)] == []
    with clock.frozen(monday):
        runs = run_due_reminders(app)
    with clock.frozen(monday + timedelta(minutes=5)):
        runs += run_due_reminders(app)
    with clock.frozen(datetime(2026, 12, 1, 9, 30, tzinfo=UTC)):
        runs += run_due_reminders(app)
    with clock.frozen(datetime(2026, 12, 1, 9, 31, tzinfo=UTC)):
        runs += run_due_reminders(app)
    reminder_keys = [k for k in _keys(session) if k.startswith("reminder:")]
    assert reminder_keys == ["reminder:1:2026-11-30T09:00", "reminder:2:2026-12-01T09:30"]
    one_off = session.get(Reminder, 2)
    assert one_off is not None and not one_off.active
    post = session.scalar(select(Delivery).where(Delivery.idempotency_key == reminder_keys[0]))
    assert post is not None and "Reminder: Papers for F&G due" in post.payload["text"]


def test_a_reminder_set_after_its_time_today_waits_for_next_week(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> None:
    say(app, 'remind #srs-torfaen "Papers" every monday 9am', now=NOW + timedelta(minutes=10))
    with clock.frozen(NOW + timedelta(minutes=11)):
        assert run_due_reminders(app) == []
    assert [k for k in _keys(session) if k.startswith("reminder:")] == []


def test_a_bilingual_channel_gets_the_reminder_text_once(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> None:
    seed.channels["srs-torfaen"].language = ChannelLanguage.CY_EN
    session.commit()
    say(app, 'remind #srs-torfaen "Papers for F&G due" every monday 9am')
    with clock.frozen(datetime(2026, 11, 30, 9, 0, tzinfo=UTC)):
        run_due_reminders(app)
    post = session.scalar(select(Delivery).where(Delivery.kind == "reminder"))
    assert post is not None and post.payload["text"].count("Papers for F&G due") == 1
    assert post.payload["languages"] == ["cy", "en"]


def test_meeting_reminders_go_three_days_before_to_the_board_and_partners(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> None:
    # The Strategic Board meets Thursday 3 December 2026, 10am: reminder Monday 30 November, 9am.
    with clock.frozen(datetime(2026, 11, 30, 8, 59, tzinfo=UTC)):
        assert run_due_reminders(app) == []
    with clock.frozen(datetime(2026, 11, 30, 9, 0, tzinfo=UTC)):
        first = [r.key for r in run_due_reminders(app)]
        again = [r.key for r in run_due_reminders(app)]
    assert sorted(first) == [
        "meeting:1:2026-12-03:srs-police",
        "meeting:1:2026-12-03:srs-strategic-board",
        "meeting:1:2026-12-03:srs-torfaen",
    ]
    assert again == []
    post = session.scalar(select(Delivery).where(Delivery.idempotency_key == first[0]))
    assert post is not None and "meets on Thursday 3 December 2026, 10:00am" in post.payload["text"]
    # A board can ask for another number of days, or none.
    seed.boards["finance-governance"].meeting_reminder_days = 0
    session.commit()
    with clock.frozen(datetime(2026, 12, 7, 9, 0, tzinfo=UTC)):
        assert run_due_reminders(app) == []


def test_the_cli_adds_lists_and_cancels(
    database_url: str, session: Session, seed: Seed, clock: Clock
) -> None:
    runner, env = CliRunner(), {"DATABASE_URL": database_url}
    with clock.frozen(NOW):
        added = runner.invoke(
            cli, ["remind", "add", "#srs-torfaen", "Papers due", "every", "monday", "9am"], env=env
        )
        assert added.exit_code == 0, added.output
        assert "Reminder 1 set for #srs-torfaen; next on 2026-11-30 09:00." in added.output
        past = runner.invoke(
            cli, ["remind", "add", "srs-torfaen", "Late", "on", "2026-01-01", "09:00"], env=env
        )
        assert past.exit_code == 2 and "already passed" in past.output
        listed = runner.invoke(cli, ["remind", "list"], env=env)
        assert "0 9 * * 1" in listed.output and "Papers due" in listed.output
        assert "is cancelled" in runner.invoke(cli, ["remind", "cancel", "1"], env=env).output
        missing = runner.invoke(cli, ["remind", "cancel", "1"], env=env)
        assert missing.exit_code == 2 and "There is no active reminder 1" in missing.output


def test_cron_and_time_parsing() -> None:
    assert parse_cron("0 9 * * mon-fri").weekdays == frozenset({1, 2, 3, 4, 5})
    assert parse_cron("@weekly").weekdays == frozenset({0})
    with pytest.raises(ScheduleError, match="hour 25 is out of range 0–23"):
        parse_cron("0 25 * * *")
    with pytest.raises(ScheduleError, match="needs five fields"):
        parse_cron("0 9 * *")
    assert parse_when("every weekday 17:30", now=NOW).cron == "30 17 * * 1-5"
    assert parse_when("bob dydd llun 9yb", now=NOW).cron == "0 9 * * 1"
    # A daily 01:30 run keeps its local date and time across both clock changes.
    daily = Schedule.parse("30 1 * * *")
    spring = list(
        daily.between(datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 3, 30, 12, tzinfo=UTC))
    )
    assert [f.key for f in spring] == ["2026-03-28T01:30", "2026-03-29T01:30", "2026-03-30T01:30"]
    autumn = list(
        daily.between(
            datetime(2026, 10, 24, 12, tzinfo=UTC), datetime(2026, 10, 26, 12, tzinfo=UTC)
        )
    )
    assert [f.key for f in autumn] == ["2026-10-25T01:30", "2026-10-26T01:30"]
    assert autumn[0].at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first of the two 01:30s
