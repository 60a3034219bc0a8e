"""Replies say how to type a command on the reader's platform: `/scrutiny ...` in Slack and the
console, `@Scrutiny ...` (the bot's name in Teams) in a Teams channel."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.domain import Platform
from bot.messages import Request
from bot.models import Delivery
from bot.services.digests import run_digest
from tests.conftest import NOW
from tests.factories import Seed, add_decision

SIAN_TEAMS = "00000000-0000-0000-0000-000000R00001"
ELERI_TEAMS = "00000000-0000-0000-0000-000000N00001"
CERI_TEAMS = "00000000-0000-0000-0000-000000C00001"
NOTHING_FOUND = "find zzqx wibble"


def _teams(app: ScrutinyApp, user: str, text: str, fmt: str = "txt") -> str:
    outcome = app.dispatch(Request(Platform.TEAMS, user, text, now=NOW), fmt)
    return "\n".join([*outcome.bodies, outcome.text])


def test_teams_help_and_nothing_found_tell_members_to_mention_the_bot(
    app: ScrutinyApp, seed: Seed
) -> None:
    help_text = _teams(app, SIAN_TEAMS, "help")
    assert "@Scrutiny actions" in help_text and "@Scrutiny help" in help_text
    assert "/scrutiny" not in help_text
    nothing = _teams(app, SIAN_TEAMS, NOTHING_FOUND)
    assert "@Scrutiny actions overdue torfaen" in nothing
    assert "/scrutiny" not in nothing
    card = _teams(app, SIAN_TEAMS, NOTHING_FOUND, "teams.json")
    assert "@Scrutiny actions overdue torfaen" in card and "/scrutiny" not in card


def test_slack_and_the_console_keep_the_slash_command(app: ScrutinyApp, seed: Seed) -> None:
    for platform, user in ((Platform.SLACK, "U0TOR00001"), (Platform.CONSOLE, "sian-hughes")):
        outcome = app.dispatch(Request(platform, user, NOTHING_FOUND, now=NOW))
        assert "/scrutiny actions overdue torfaen" in outcome.text, platform
        assert "@Scrutiny" not in outcome.text


def test_the_teams_bot_name_is_a_setting(app: ScrutinyApp, seed: Seed) -> None:
    app.renderer.teams_bot_name = "SRS Bot"
    text = _teams(app, SIAN_TEAMS, NOTHING_FOUND)
    assert "@SRS Bot actions overdue torfaen" in text and "/scrutiny" not in text


def test_welsh_teams_replies_and_errors_use_the_mention_too(app: ScrutinyApp, seed: Seed) -> None:
    welsh = _teams(app, ELERI_TEAMS, NOTHING_FOUND)
    assert "@Scrutiny camau hwyr torfaen, @Scrutiny penderfyniadau strategol" in welsh
    assert "/scrutiny" not in welsh
    welsh_help = _teams(app, ELERI_TEAMS, "help")
    assert "@Scrutiny cymorth [gorchymyn]" in welsh_help and "/scrutiny" not in welsh_help
    # An error raised by a handler in Python code, not a template.
    error = _teams(app, CERI_TEAMS, "remind cancel")
    assert "@Scrutiny remind cancel ID" in error and "/scrutiny" not in error


def test_a_digest_posted_to_a_teams_channel_through_the_outbox_says_mention(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    decided = date(2026, 11, 20)
    for ref in (f"SB-2026-{n}" for n in range(100, 130)):
        add_decision(session, seed, ref, "strategic", decided, recorded_at=NOW - timedelta(days=1))
    torfaen = seed.channels["srs-torfaen"]
    torfaen.platform = Platform.TEAMS
    session.commit()
    delivery_id = run_digest(session, app.renderer, torfaen, now=NOW).delivery_id
    session.commit()
    delivery = session.get(Delivery, delivery_id)
    assert delivery is not None
    text, card = delivery.payload["text"], json.dumps(delivery.payload["teams"])
    assert "@Scrutiny decisions" in text and "@Scrutiny decisions" in card
    assert "/scrutiny" not in text and "/scrutiny" not in card
