"""The audit log and the delivery log read back: `scrutiny-bot audit`, `scrutiny-bot deliveries`,
and the secretariat's `/scrutiny history REF` and `/scrutiny deliveries` in chat, with the
visibility rule applied to what chat shows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.app import ScrutinyApp
from bot.cli import cli
from bot.domain import DeliveryState, Platform
from bot.models import AuditEvent, Channel, Delivery, Member
from bot.outbox import enqueue
from bot.services.history import VERB_LABELS
from tests.conftest import NOW
from tests.factories import Seed
from tests.test_handlers import TORFAEN_CHANNEL, ask

runner = CliRunner()


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SCRUTINY_LANGUAGE", "en")
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "TEAMS_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)


def _update_tp001(app: ScrutinyApp) -> None:
    out = ask(app, "ceri-morgan", 'update TP-001 status=blocked note="Waiting on the supplier"')
    assert "Updated TP-001" in out, out


def test_history_shows_who_changed_what_with_before_and_after(app: ScrutinyApp, seed: Seed) -> None:
    _update_tp001(app)
    out = ask(app, "ceri-morgan", "history tp-001")
    assert out.startswith("History of TP-001 (showing 1–1 of 1, newest first)"), out
    assert "Ceri Morgan · action TP-001: changed" in out
    assert "status: in progress → blocked" in out
    assert "update note: (blank) → Waiting on the supplier" in out


def test_history_is_for_the_secretariat_only(app: ScrutinyApp, seed: Seed) -> None:
    _update_tp001(app)
    out = ask(app, "sian-hughes", "history TP-001")
    assert "Only members with the role secretariat can do that." in out
    assert "blocked" not in out


def test_history_of_an_item_the_channel_may_not_see_is_withheld_without_content(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    # TP-003 is exempt under paragraph 14; the Torfaen channel has no exempt access.
    session.add(
        AuditEvent(
            at=NOW,
            actor="ceri-morgan",
            verb="update",
            entity="action",
            entity_ref="TP-003",
            before={"title": "Exempt contract renewal"},
            after={"title": "Exempt contract renewal with Croesyceiliog"},
        )
    )
    session.commit()
    in_channel = ask(app, "ceri-morgan", "history TP-003", channel=TORFAEN_CHANNEL)
    assert "TP-003 exists, but this channel is not cleared to see it." in in_channel
    assert "You are cleared for it: ask me in a direct message." in in_channel
    assert "Croesyceiliog" not in in_channel
    direct = ask(app, "ceri-morgan", "history TP-003")
    assert "title: Exempt contract renewal → Exempt contract renewal with Croesyceiliog" in direct


def test_history_of_a_police_only_item_is_withheld_from_the_secretariat_too(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    session.add(
        AuditEvent(
            at=NOW,
            actor="rhys-evans",
            verb="update",
            entity="action",
            entity_ref="TP-004",
            before={"status": "in-progress"},
            after={"status": "blocked"},
        )
    )
    session.commit()
    out = ask(app, "ceri-morgan", "history TP-004")
    assert "TP-004 exists, but you are not cleared to see it." in out
    assert "blocked" not in out


def test_history_pages_and_bounds_the_page_number(app: ScrutinyApp, seed: Seed) -> None:
    for note in ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"):
        ask(app, "ceri-morgan", f'update TP-002 note="{note}"')
    first = ask(app, "ceri-morgan", "history TP-002")
    assert "(showing 1–10 of 10, newest first)" in first
    assert "More:" not in first
    ask(app, "ceri-morgan", 'update TP-002 note="eleven"')
    first = ask(app, "ceri-morgan", "history TP-002")
    assert "More: /scrutiny history TP-002 page 2" in first
    second = ask(app, "ceri-morgan", "history TP-002 page 2")
    assert "(showing 11–11 of 11, newest first)" in second
    for bad in ("99999999999999999999", "²", "0"):
        out = ask(app, "ceri-morgan", f"history TP-002 page {bad}")
        assert "is not a page number; give a number from 1 to 1000." in out, out


def test_unknown_ref_says_nothing_is_recorded(app: ScrutinyApp, seed: Seed) -> None:
    out = ask(app, "ceri-morgan", "history TP-999")
    assert "Nothing is recorded about TP-999." in out


def test_every_verb_the_code_writes_has_words() -> None:
    # The verbs written across the code base, found by reading it: a new verb needs a label.
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "bot"
    written: set[str] = set()
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        written |= set(re.findall(r'verb="([a-z.\-]+)"', text))
        written |= set(re.findall(r'"verb": "([a-z.\-]+)"', text))
        written |= {f"window.{v}" for v in re.findall(r'_audit_window\([^)]*"(\w+)"', text)}
    assert written, "found no audit verbs: the pattern above is out of date"
    assert written <= set(VERB_LABELS), sorted(written - set(VERB_LABELS))


def _queue(
    session: Session, seed: Seed, channel: str, key: str, text: str, items: dict[str, list[str]]
) -> Delivery:
    delivery = enqueue(
        session,
        key=key,
        channel=seed.channels[channel],
        kind="digest",
        payload={"v": 1, "languages": ["en"], "text": text, "items": items},
        not_before=NOW,
    )
    assert delivery is not None
    session.commit()
    return delivery


def test_deliveries_in_chat_list_warn_and_show_what_a_post_said(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    first = _queue(session, seed, "srs-torfaen", "digest:srs-torfaen:2026-11-23", "Hello", {})
    police = _queue(
        session,
        seed,
        "srs-police",
        "digest:srs-police:2026-11-23",
        "Police-only network segregation is late",
        {"actions": ["TP-004"]},
    )
    out = ask(app, "ceri-morgan", "deliveries")
    # The seeded channels are Slack's and the test app has no Slack token.
    assert "Warning: 2 posts are waiting for slack, which has no credentials here" in out
    assert f"#{police.id}  pending  #srs-police  digest:srs-police:2026-11-23" in out
    assert "(showing 1–2 of 2, newest first)" in out

    shown = ask(app, "ceri-morgan", f"deliveries {first.id}")
    assert f"Post #{first.id} to #srs-torfaen" in shown
    assert shown.rstrip().endswith("Hello")
    # A post that shows a police-only action is not shown to the SRS secretariat.
    withheld = ask(app, "ceri-morgan", f"deliveries {police.id}")
    assert "Police-only" not in withheld
    assert f"#{police.id} exists, but you are not cleared to see it." in withheld

    only_failed = ask(app, "ceri-morgan", "deliveries failed srs-torfaen")
    assert "No posts match." in only_failed
    typo = ask(app, "ceri-morgan", "deliveries failed srs-torfean")
    assert "There is no channel “srs-torfean”. Did you mean: srs-torfaen?" in typo
    assert "There is no delivery 987654." in ask(app, "ceri-morgan", "deliveries 987654")
    refused = ask(app, "sian-hughes", "deliveries")
    assert "Only members with the role secretariat can do that." in refused


def test_cli_audit_prints_a_table_with_headers_and_filters(
    app: ScrutinyApp, seed: Seed, session: Session, cli_env: None
) -> None:
    _update_tp001(app)
    session.add(
        AuditEvent(
            at=NOW - timedelta(days=400),
            actor="operator",
            verb="retry",
            entity="delivery",
            entity_ref="digest:srs-torfaen:2025-10-20",
            before={"state": "failed", "attempts": 6},
            after={"state": "pending", "attempts": 0},
        )
    )
    session.commit()
    result = runner.invoke(cli, ["audit", "TP-001"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["WHEN", "(local)", "WHO", "WHAT", "ITEM"]
    assert "Ceri Morgan" in lines[1] and "changed" in lines[1] and "action TP-001" in lines[1]
    assert "    status: in progress → blocked" in lines

    by_actor = runner.invoke(cli, ["audit", "--actor", "OPERATOR"])
    assert "queued again" in by_actor.stdout and "attempts: 6 → 0" in by_actor.stdout
    recent = runner.invoke(cli, ["audit", "--actor", "operator", "--since", "2026-01-01"])
    assert recent.exit_code == 0 and "No changes match." in recent.stdout

    bad = runner.invoke(cli, ["audit", "--since", "31/12/2026"])
    assert bad.exit_code == 2
    assert "--since “31/12/2026” is not a date; use YYYY-MM-DD (e.g. 2026-12-31)." in bad.stderr


def test_cli_deliveries_has_headers_filters_show_and_a_credentials_warning(
    seed: Seed, session: Session, cli_env: None
) -> None:
    post = _queue(session, seed, "srs-torfaen", "digest:srs-torfaen:2026-11-23", "Digest body", {})
    sent = _queue(session, seed, "srs-secretariat", "notice:1", "Sent body", {})
    row = session.get(Delivery, sent.id)
    assert row is not None
    row.state = DeliveryState.SENT
    row.sent_at = NOW
    row.platform_message_id = "1700000000.000100"
    session.commit()

    listed = runner.invoke(cli, ["deliveries"])
    assert listed.exit_code == 0, listed.output
    header = listed.stdout.splitlines()[0].split()
    assert header == ["ID", "STATE", "TRIES", "CHANNEL", "WHEN", "(local)", "KEY"]
    assert "Warning: 2 posts are waiting for slack" not in listed.stderr
    assert "Warning: 1 post is waiting for slack, which has no credentials here" in listed.stderr

    only_sent = runner.invoke(cli, ["deliveries", "--state", "sent"])
    assert "notice:1" in only_sent.stdout and "digest:" not in only_sent.stdout
    by_channel = runner.invoke(cli, ["deliveries", "--channel", "srs-torfaen"])
    assert "digest:srs-torfaen:2026-11-23" in by_channel.stdout
    assert "notice:1" not in by_channel.stdout
    typo = runner.invoke(cli, ["deliveries", "--channel", "srs-torfean"])
    assert typo.exit_code == 2
    assert "There is no channel “srs-torfean”. Did you mean: srs-torfaen?" in typo.stderr
    bad_state = runner.invoke(cli, ["deliveries", "--state", "lost"])
    assert (
        bad_state.exit_code == 2 and "pending, sending, sent, failed, cancelled" in bad_state.stderr
    )

    shown = runner.invoke(cli, ["deliveries", "show", str(post.id)])
    assert shown.exit_code == 0, shown.output
    assert f"Delivery {post.id}: digest:srs-torfaen:2026-11-23" in shown.stdout
    assert "channel: #srs-torfaen (srs-torfaen, slack)" in shown.stdout
    assert shown.stdout.rstrip().endswith("Digest body")
    posted = runner.invoke(cli, ["deliveries", "show", str(sent.id)])
    assert "(message id 1700000000.000100)" in posted.stdout
    missing = runner.invoke(cli, ["deliveries", "show", "424242"])
    assert missing.exit_code == 1 and "There is no delivery 424242." in missing.stderr


def test_posting_platforms_follow_the_credentials(seed: Seed, session: Session) -> None:
    from bot.settings import load_settings

    bare = load_settings(slack_bot_token=None, teams_app_id=None, graph_tenant_id=None)
    assert bare.posting_platforms == {Platform.CONSOLE}
    slack = load_settings(slack_bot_token="xoxb-test", teams_app_id=None)
    assert Platform.SLACK in slack.posting_platforms
    channel = session.scalar(select(Channel).where(Channel.slug == "srs-torfaen"))
    assert channel is not None and channel.platform is Platform.SLACK


def test_history_says_statuses_and_markings_in_words_in_welsh_too(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    _update_tp001(app)
    member = session.scalar(select(Member).where(Member.slug == "ceri-morgan"))
    assert member is not None
    member.language = "cy"
    session.commit()
    out = ask(app, "ceri-morgan", "hanes TP-001")
    assert out.startswith("Hanes TP-001"), out
    assert "  statws: ar waith → wedi'i rwystro" in out.splitlines(), out


def test_the_delivery_log_shows_direct_messages_too(
    app: ScrutinyApp, seed: Seed, session: Session, cli_env: None
) -> None:
    from bot.services.direct_messages import direct_channel

    member = session.scalar(select(Member).where(Member.slug == "sian-hughes"))
    assert member is not None
    channel = direct_channel(session, member)
    assert channel is not None
    delivery = enqueue(
        session,
        key="notify:Q-SB-2026-12-001:accepted:sian-hughes",
        channel=channel,
        kind="notice",
        payload={"v": 1, "languages": ["en"], "text": "Your question was accepted", "items": {}},
        not_before=NOW,
    )
    assert delivery is not None
    session.commit()
    listed = runner.invoke(cli, ["deliveries"])
    assert "notify:Q-SB-2026-12-001:accepted:sian-hughes" in listed.stdout
    shown = runner.invoke(cli, ["deliveries", "show", str(delivery.id)])
    assert shown.stdout.rstrip().endswith("Your question was accepted")
    in_chat = ask(app, "ceri-morgan", "deliveries")
    assert "notify:Q-SB-2026-12-001:accepted:sian-hughes" in in_chat
