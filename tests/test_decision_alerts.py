"""Channels that ask for them (`alerts: [decisions]`) get a post as soon as a decision they
may see enters the register: recorded in chat, imported or synced; once per channel, in the
channel's languages, through the outbox to the fake Slack Web API."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.app import ScrutinyApp
from bot.cli import cli
from bot.collaboration import apply_collaboration, load_collaboration
from bot.domain import ChannelLanguage, Marking
from bot.models import Channel, Decision
from bot.scheduler import run_schedules, send_due
from tests.conftest import NOW
from tests.factories import Seed, add_decision
from tests.fakes.slack_api import SlackSender
from tests.fakes.slack_limits import LimitedSlackApi
from tests.outbox_support import sender_for
from tests.test_collaboration import BASE, line_of, mutate, problems_in, write
from tests.test_slack_http import texts
from tests.test_slack_questions import (
    POLICE_CHANNEL,
    SECRETARIAT_CHANNEL,
    SECRETARY,
    TORFAEN_CHANNEL,
    command,
    db,
    fake,
    platform,
    posts_by_key,
    slack,
    slack_app,
    worker,
)

__all__ = ["db", "fake", "platform", "slack", "slack_app"]  # fixtures used by name

TORFAEN_ALERTS = "C0TORF0001\n    partner: torfaen"


def test_alerts_are_read_from_the_collaboration_file(tmp_path: Path, session: Session) -> None:
    text = mutate(BASE, TORFAEN_ALERTS, TORFAEN_ALERTS + "\n    alerts: [decisions]")
    collaboration = load_collaboration(write(tmp_path, text))
    apply_collaboration(session, collaboration)
    channel = session.scalar(select(Channel).where(Channel.external_id == "C0TORF0001"))
    assert channel is not None
    assert channel.alerts == ["decisions"]


def test_an_unknown_alert_is_refused_with_its_line_and_the_choices(tmp_path: Path) -> None:
    text = mutate(BASE, TORFAEN_ALERTS, TORFAEN_ALERTS + "\n    alerts: [decision]")
    [problem] = problems_in(tmp_path, text)
    assert problem.line == line_of(text, "alerts: [decision]")
    assert problem.key.endswith(".alerts[0]")
    assert "use one of: decisions" in problem.hint


@pytest.fixture
def alerting(session: Session, seed: Seed) -> Seed:
    """Torfaen's channel (bilingual, not cleared for exempt items) and the police channel
    (cleared) ask for decision alerts; the strategic board's channel does not."""
    torfaen, police = seed.channels["srs-torfaen"], seed.channels["srs-police"]
    torfaen.alerts = ["decisions"]
    torfaen.language = ChannelLanguage.CY_EN
    police.alerts = ["decisions"]
    session.commit()
    return seed


def test_a_decision_is_alerted_once_to_each_channel_that_may_see_it(
    slack: SlackSender,
    fake: LimitedSlackApi,
    slack_app: ScrutinyApp,
    alerting: Seed,
    session: Session,
    db: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorded = command(
        slack,
        SECRETARY,
        'record-decision board=strategic decided_on=2026-11-19 title="Approved the roadmap" '
        'title_cy="Cymeradwywyd y map ffordd"',
        channel=SECRETARIAT_CHANNEL,
    )
    assert "Approved the roadmap" in texts(recorded.body)
    roadmap = db.scalar(select(Decision.ref).where(Decision.title == "Approved the roadmap"))
    exempt = add_decision(
        session,
        alerting,
        "SB-2026-090",
        "strategic",
        date(2026, 11, 19),
        title="Terminated the network contract",
        exempt_paragraph=14,
        recorded_at=NOW - timedelta(minutes=5),
    )
    session.commit()
    worker(slack_app, fake, NOW)
    worker(slack_app, fake, NOW + timedelta(minutes=1))
    assert posts_by_key(fake, "alert:") == Counter(
        {
            (TORFAEN_CHANNEL, f"alert:{roadmap}:srs-torfaen"): 1,
            (POLICE_CHANNEL, f"alert:{roadmap}:srs-police"): 1,
            (POLICE_CHANNEL, f"alert:{exempt.ref}:srs-police"): 1,
        }
    )
    [bilingual] = [
        m for m in fake.messages_in(TORFAEN_CHANNEL) if m.key == f"alert:{roadmap}:srs-torfaen"
    ]
    welsh, english = (
        bilingual.text.index("Cymeradwywyd y map ffordd"),
        bilingual.text.index("Approved the roadmap"),
    )
    assert welsh < english  # Welsh first, then English, in one message
    assert "Penderfyniad newydd" in bilingual.text and "New decision" in bilingual.text

    # An import is alerted the same way; importing it again alerts nothing more.
    monkeypatch.setenv("DATABASE_URL", slack_app.settings.database_url)
    monkeypatch.setenv("SCRUTINY_LANGUAGE", "en")
    csv = tmp_path / "decisions.csv"
    csv.write_text(
        "ref,board,decided_on,title,marking,restricted_to\n"
        "FG-2026-050,finance-governance,2026-11-20,Set the 2027/28 budget,official,\n"
        "FG-2026-051,finance-governance,2026-11-20,Police radio costs,official,gwent-police\n",
        encoding="utf-8",
    )
    for minutes in (2, 3):
        result = CliRunner().invoke(cli, ["import", "decisions", str(csv)])
        assert result.exit_code == 0, result.output
        worker(slack_app, fake, NOW + timedelta(minutes=minutes))
    imported = posts_by_key(fake, "alert:FG-")
    assert imported == Counter(
        {
            (TORFAEN_CHANNEL, "alert:FG-2026-050:srs-torfaen"): 1,
            (POLICE_CHANNEL, "alert:FG-2026-050:srs-police"): 1,
            (POLICE_CHANNEL, "alert:FG-2026-051:srs-police"): 1,
        }
    )
    assert fake.duplicates() == {}


def test_an_alert_no_longer_allowed_at_send_time_is_cancelled(
    fake: LimitedSlackApi, slack_app: ScrutinyApp, alerting: Seed, session: Session
) -> None:
    decision = add_decision(
        session, alerting, "SB-2026-091", "strategic", date(2026, 11, 19), recorded_at=NOW
    )
    session.commit()
    run_schedules(slack_app, NOW)
    decision.marking = Marking.OFFICIAL_SENSITIVE
    session.commit()
    send_due(slack_app, sender=sender_for(slack_app, fake))
    # Torfaen's channel is cleared for OFFICIAL only; the police channel still gets it.
    assert set(posts_by_key(fake, "alert:")) == {(POLICE_CHANNEL, "alert:SB-2026-091:srs-police")}
