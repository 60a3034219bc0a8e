"""Digests: the right content for each channel's readers, at the right local time, each decision
announced exactly once, within Block Kit limits however much there is."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.app import ScrutinyApp
from bot.cli import cli
from bot.clock import Clock
from bot.domain import ActionStatus, ChannelLanguage, DeliveryState, Marking, Platform
from bot.leader import leader_lock_for
from bot.models import Action, Channel, Decision, Delivery, RegisterEntry
from bot.outbox import Pacer
from bot.scheduler import Worker, make_worker, run_due_digests
from bot.services.digests import build_digest, run_digest
from tests.conftest import NOW
from tests.factories import Seed, add_action, add_decision, add_digest_channels
from tests.fakes.slack_api import message_problems
from tests.fakes.slack_limits import LimitedSlackApi
from tests.outbox_support import (
    add_post,
    fake_slack,
    quick_policy,
    seconds_of,
    sender_for,
    slack_messenger,
)
from tests.support.statements import counting

LONDON_9AM_MONDAYS = [
    # (local Monday, the UTC instant of 9am): GMT, BST after 29 March, GMT after 25 October.
    (date(2026, 3, 23), datetime(2026, 3, 23, 9, 0, tzinfo=UTC)),
    (date(2026, 3, 30), datetime(2026, 3, 30, 8, 0, tzinfo=UTC)),
    (date(2026, 10, 19), datetime(2026, 10, 19, 8, 0, tzinfo=UTC)),
    (date(2026, 10, 26), datetime(2026, 10, 26, 9, 0, tzinfo=UTC)),
]


def _deliveries(session: Session) -> list[Delivery]:
    session.expire_all()
    return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def _decision_refs(delivery: Delivery) -> list[str]:
    return list(delivery.payload["items"]["decisions"])


def test_a_partner_channel_sees_its_own_overdue_first_and_only_what_it_is_cleared_for(
    session: Session, seed: Seed
) -> None:
    content = build_digest(session, seed.channels["srs-torfaen"], now=NOW)
    assert [d.ref for d in content.decisions.items] == ["FG-2026-044", "SB-2026-031"]
    # SB-2026-032 is exempt, BC-2026-010 police-only (and recorded long ago): counts, no content.
    assert content.decisions.withheld == {"exempt": 1}
    assert content.overdue_own is not None
    assert [a.ref for a in content.overdue_own.items] == ["TP-001"]
    assert content.overdue_own.withheld == {"exempt": 1}
    assert [a.ref for a in content.overdue_other.items] == []
    assert content.overdue_other.withheld_total == 2
    assert [a.ref for a in content.due_soon.items] == ["TP-002"]
    assert [m.board.slug for m in content.meetings] == ["strategic", "finance-governance"]
    police = build_digest(session, seed.channels["srs-police"], now=NOW)
    assert police.overdue_own is not None and [a.ref for a in police.overdue_own.items] == [
        "TP-004"
    ]
    assert [a.ref for a in police.overdue_other.items] == ["TP-001", "TP-003", "TP-006"]


def test_consecutive_digests_repeat_nothing_and_miss_nothing(
    session: Session, app: ScrutinyApp, seed: Seed
) -> None:
    channel = seed.channels["srs-police"]
    first = run_digest(session, app.renderer, channel, now=NOW)
    session.commit()
    # Between digests: a new decision, one backdated to June, and one whose transaction began
    # before the first digest (its recorded_at is earlier) but committed after it.
    add_decision(
        session,
        seed,
        "SB-2026-040",
        "strategic",
        date(2026, 11, 26),
        recorded_at=NOW + timedelta(days=3),
    )
    add_decision(
        session,
        seed,
        "FG-2026-020",
        "finance-governance",
        date(2026, 6, 1),
        recorded_at=NOW + timedelta(days=4),
    )
    add_decision(
        session,
        seed,
        "BC-2026-011",
        "business-collaboration",
        date(2026, 11, 20),
        recorded_at=NOW - timedelta(minutes=5),
    )
    session.commit()
    second = run_digest(session, app.renderer, channel, now=NOW + timedelta(days=7))
    session.commit()
    third = run_digest(session, app.renderer, channel, now=NOW + timedelta(days=14))
    session.commit()
    by_id = {d.id: d for d in _deliveries(session)}
    refs = [_decision_refs(by_id[r.delivery_id]) for r in (first, second, third) if r.delivery_id]
    assert refs[0] == ["FG-2026-044", "SB-2026-032", "SB-2026-031"]
    assert sorted(refs[1]) == ["BC-2026-011", "FG-2026-020", "SB-2026-040"]
    assert refs[2] == []
    every = Counter(ref for group in refs for ref in group)
    assert all(n == 1 for n in every.values())


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (concurrent writers)"
)
def test_a_decision_committed_while_a_digest_runs_goes_in_the_next_one(
    session: Session, app: ScrutinyApp, seed: Seed, engine: Engine
) -> None:
    channel = seed.channels["srs-police"]
    run_digest(session, app.renderer, channel, now=NOW)
    session.commit()
    with engine.connect() as slow:
        # A long import: its row carries an early recorded_at and commits only later.
        slow.execute(
            Decision.__table__.insert().values(
                ref="SB-2026-050",
                board_id=seed.boards["strategic"].id,
                decided_on=date(2026, 11, 27),
                title="Slow import",
                summary="",
                partners=[],
                link="",
                marking=Marking.OFFICIAL,
                restricted_to=[],
                recorded_at=NOW + timedelta(days=1),
                updated_at=NOW + timedelta(days=1),
            )
        )
        second = run_digest(session, app.renderer, channel, now=NOW + timedelta(days=7))
        session.commit()
        slow.commit()
    third = run_digest(session, app.renderer, channel, now=NOW + timedelta(days=14))
    session.commit()
    by_id = {d.id: d for d in _deliveries(session)}
    assert "SB-2026-050" not in (
        _decision_refs(by_id[second.delivery_id]) if second.delivery_id else []
    )
    assert third.delivery_id is not None
    assert _decision_refs(by_id[third.delivery_id]) == ["SB-2026-050"]


@pytest.mark.parametrize(("monday", "nine_am"), LONDON_9AM_MONDAYS)
def test_a_monday_9am_digest_runs_at_9am_london_time_across_the_clock_changes(
    app: ScrutinyApp, session: Session, seed: Seed, monday: date, nine_am: datetime, clock: Clock
) -> None:
    with clock.frozen(nine_am - timedelta(minutes=1)):
        assert run_due_digests(app) == []
    with clock.frozen(nine_am):
        [result] = run_due_digests(app)
        assert result.key == f"digest:srs-torfaen:{monday.isoformat()}"
        assert result.delivery_id is not None
    with clock.frozen(nine_am + timedelta(minutes=1)):
        assert run_due_digests(app) == []
    session.expire_all()
    assert session.get(Channel, seed.channels["srs-torfaen"].id).last_digest_at == nine_am  # type: ignore[union-attr]


def test_bank_holidays_are_skipped_and_nothing_is_lost(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> None:
    channel = seed.channels["srs-torfaen"]
    channel.skip_bank_holidays = True
    session.commit()
    with clock.frozen(datetime(2026, 8, 24, 8, 0, tzinfo=UTC)):
        [first] = run_due_digests(app)
    add_decision(
        session,
        seed,
        "SB-2026-060",
        "strategic",
        date(2026, 8, 27),
        recorded_at=datetime(2026, 8, 28, 12, 0, tzinfo=UTC),
    )
    session.commit()
    # Monday 31 August 2026 is the late summer bank holiday.
    with clock.frozen(datetime(2026, 8, 31, 8, 0, tzinfo=UTC)):
        assert run_due_digests(app) == []
    with clock.frozen(datetime(2026, 9, 7, 8, 0, tzinfo=UTC)):
        [second] = run_due_digests(app)
    assert first.key.endswith("2026-08-24") and second.key.endswith("2026-09-07")
    by_key = {d.idempotency_key: d for d in _deliveries(session)}
    assert _decision_refs(by_key[second.key]) == ["SB-2026-060"]


def test_a_run_missed_while_down_is_caught_up_once_within_the_grace_period(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> None:
    with clock.frozen(datetime(2026, 11, 16, 9, 0, tzinfo=UTC)):
        assert len(run_due_digests(app)) == 1
    # Down over 9am on the 23rd; back at 9:40, within the hour's grace.
    with clock.frozen(NOW + timedelta(minutes=40)):
        [caught_up] = run_due_digests(app, grace=timedelta(hours=1))
        assert caught_up.key == "digest:srs-torfaen:2026-11-23" and caught_up.delivery_id
    with clock.frozen(NOW + timedelta(minutes=41)):
        assert run_due_digests(app, grace=timedelta(hours=1)) == []
    assert [d.idempotency_key for d in _deliveries(session)] == [
        "digest:srs-torfaen:2026-11-16",
        "digest:srs-torfaen:2026-11-23",
    ]


def test_a_run_missed_by_more_than_the_grace_period_is_skipped_but_its_news_is_kept(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> None:
    with clock.frozen(datetime(2026, 11, 9, 9, 0, tzinfo=UTC)):
        run_due_digests(app)
    recorded = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    add_decision(
        session, seed, "SB-2026-070", "strategic", date(2026, 11, 19), recorded_at=recorded
    )
    session.commit()
    with clock.frozen(NOW + timedelta(hours=2)):
        assert run_due_digests(app, grace=timedelta(hours=1)) == []
    with clock.frozen(NOW + timedelta(days=7)):
        [late] = run_due_digests(app, grace=timedelta(hours=1))
    by_key = {d.idempotency_key: d for d in _deliveries(session)}
    assert late.key == "digest:srs-torfaen:2026-11-30"
    assert _decision_refs(by_key[late.key]) == ["SB-2026-070"]


def test_an_empty_digest_is_skipped_or_says_nothing_new(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    session.execute(update(Action).values(status=ActionStatus.DONE))
    quiet, chatty = seed.channels["srs-torfaen"], seed.channels["srs-police"]
    chatty.post_empty_digest = True
    session.commit()
    for channel in (quiet, chatty):
        run_digest(session, app.renderer, channel, now=NOW)
    session.commit()
    later = NOW + timedelta(days=7)  # question windows closed on the 27th; nothing new since
    skipped = run_digest(session, app.renderer, quiet, now=later)
    posted = run_digest(session, app.renderer, chatty, now=later)
    session.commit()
    assert skipped.skipped_empty and skipped.delivery_id is None
    assert posted.delivery_id is not None
    delivery = session.get(Delivery, posted.delivery_id)
    assert delivery is not None and "Nothing new since the last digest." in delivery.payload["text"]
    session.refresh(quiet)
    assert quiet.last_digest_at == later


def test_a_bilingual_channel_gets_welsh_then_english_in_one_message(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    channel = seed.channels["srs-torfaen"]
    channel.language = ChannelLanguage.CY_EN
    session.commit()
    result = run_digest(session, app.renderer, channel, now=NOW)
    session.commit()
    [delivery] = _deliveries(session)
    assert delivery.id == result.delivery_id
    text = delivery.payload["text"]
    assert text.index("Dydd Llun 23 Tachwedd 2026") < text.index("Monday 23 November 2026")
    blocks = delivery.payload["slack"]["blocks"]
    assert {"type": "divider"} in blocks
    assert message_problems(delivery.payload["slack"]) == []


def test_a_huge_digest_stays_within_block_kit_limits(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> None:
    long_title = "Replace <legacy> & obsolete systems " * 14
    for n in range(300):
        add_decision(
            session,
            seed,
            f"SB-2026-{100 + n}",
            "strategic",
            date(2026, 11, 20),
            title=f"{n} {long_title}"[:500],
            recorded_at=NOW - timedelta(days=1),
        )
        add_action(
            session,
            seed,
            f"TP-{100 + n}",
            "torfaen",
            date(2026, 10, 1),
            title=f"{n} {long_title}"[:500],
        )
    channel = seed.channels["srs-torfaen"]
    channel.language = ChannelLanguage.CY_EN
    session.commit()
    result = run_digest(session, app.renderer, channel, now=NOW)
    session.commit()
    delivery = session.get(Delivery, result.delivery_id)
    assert delivery is not None
    slack = delivery.payload["slack"]
    assert message_problems(slack) == [] and len(slack["blocks"]) <= 50
    assert "+ 292 more: /scrutiny decisions" in delivery.payload["text"]
    with fake_slack() as fake, clock.frozen(NOW):
        assert sender_for(app, fake).send_due().sent == 1
        assert fake.violations == []


def test_statements_per_cycle_do_not_grow_with_channels(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> None:
    # 10 more channels due on Monday (with srs-torfaen, 11), 100 due on Tuesday, half of them
    # with exempt access: more channels and more audiences, the same statements.
    add_digest_channels(session, seed, 110)
    session.execute(
        update(Channel)
        .where(Channel.slug.in_([f"fan-{n}" for n in range(10, 110)]))
        .values(digest_cron="0 9 * * tue")
    )
    session.execute(
        update(Channel)
        .where(Channel.slug.in_([f"fan-{n}" for n in range(60, 110)]))
        .values(exempt_access=True)
    )
    session.commit()
    reads: dict[int, int] = {}
    for at in (NOW, NOW + timedelta(days=1)):
        chunks: list[int] = []

        def chunk_done(done: int, total: int, chunks: list[int] = chunks) -> None:
            chunks.append(done)

        with clock.frozen(at), counting(app.engine) as statements:
            results = run_due_digests(app, progress=chunk_done)
        written = sum(1 for r in results if r.delivery_id is not None)
        assert written == len(results)
        writes = [
            s
            for s in statements
            if s.lstrip().upper().startswith(("INSERT INTO DELIVERIES", "UPDATE CHANNELS"))
        ]
        # One watermark update and one insert per chunk of channels, whatever its size.
        assert chunks[-1] == written and len(chunks) < written / 5
        assert len(writes) == 2 * len(chunks), writes
        reads[written] = sum(1 for s in statements if s.lstrip().upper().startswith("SELECT"))
    assert sorted(reads) == [11, 100]
    assert reads[11] == reads[100], reads


def test_preview_shows_the_digest_and_writes_nothing(
    database_url: str, session: Session, seed: Seed
) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    result = runner.invoke(
        cli, ["digest", "preview", "--channel", "srs-torfaen", "--at", "2026-11-23 09:00"], env=env
    )
    assert result.exit_code == 0, result.output
    assert (
        "SRS boards — digest for Torfaen County Borough Council · Monday 23 November 2026"
        in result.output
    )
    assert "SB-2026-031" in result.output
    assert session.scalars(select(Delivery)).all() == []
    assert session.scalars(select(RegisterEntry)).all() == []
    bad = runner.invoke(
        cli, ["digest", "preview", "--channel", "srs-torfaen", "--at", "2026-03-29 01:30"], env=env
    )
    assert bad.exit_code == 2 and "does not exist" in bad.output
    unknown = runner.invoke(cli, ["digest", "preview", "--channel", "nowhere"], env=env)
    assert unknown.exit_code == 2 and "srs-torfaen" in unknown.output


def test_a_new_channels_first_digest_covers_the_last_30_days_not_the_whole_register(
    session: Session, seed: Seed, app: ScrutinyApp
) -> None:
    # A register imported in one go: every decision recorded today, decided over two years.
    for number, days_ago in enumerate((3, 29, 31, 200, 700)):
        add_decision(
            session,
            seed,
            f"FG-2026-{100 + number}",
            "finance-governance",
            NOW.date() - timedelta(days=days_ago),
            recorded_at=NOW,
        )
    session.commit()
    channel = seed.channels["srs-torfaen"]
    assert channel.digest_register_seq is None
    first = build_digest(session, channel, now=NOW)
    refs = [d.ref for d in first.decisions.items]
    assert {"FG-2026-100", "FG-2026-101"} <= set(refs)
    assert not {"FG-2026-102", "FG-2026-103", "FG-2026-104"} & set(refs)
    wider = build_digest(session, channel, now=NOW, first_digest_days=365)
    assert "FG-2026-103" in [d.ref for d in wider.decisions.items]
    assert "FG-2026-104" not in [d.ref for d in wider.decisions.items]
    # After the first digest, everything recorded since is new, whenever it was decided.
    run_digest(session, app.renderer, channel, now=NOW)
    session.commit()
    add_decision(session, seed, "FG-2025-001", "finance-governance", date(2025, 1, 9))
    session.commit()
    second = build_digest(session, channel, now=NOW + timedelta(days=7))
    assert [d.ref for d in second.decisions.items] == ["FG-2025-001"]


# -- fan-out: sending overlaps building, exactly once ------------------------------------------
FANOUT_CHANNELS = 120
"""With srs-torfaen, 121 digests: chunks of 10, 50, 50 and 11."""


class _Crash(BaseException):
    """The process dying at this point (not an error the cycle may catch and work around)."""


@contextmanager
def _standby_worker(app: ScrutinyApp, fake: LimitedSlackApi) -> Iterator[Worker]:
    """A worker that only sends (another holds the leader lock), polling rarely: only the
    doorbell can get it posting while a cycle is still building."""
    holder = leader_lock_for(app.engine)
    assert holder.acquire()
    worker = make_worker(
        app,
        # A generous client timeout: an answer slow on a loaded machine is not a lost post.
        {Platform.SLACK: slack_messenger(fake, app.sessions, timeout=60)},
        leader_lock_for(app.engine),
        policy=quick_policy(),
        pacer=Pacer(per_channel=0, per_second=0, clock=seconds_of(app)),
        poll_seconds=600,
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name="standby")
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(30)
        holder.release()
    assert not thread.is_alive()


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Whether `condition` came true within `timeout` seconds (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _sent_exactly_once(session: Session, fake: LimitedSlackApi) -> list[str]:
    """Every delivery's key, after checking each was posted once and is marked sent."""
    rows = _deliveries(session)
    assert fake.duplicates() == {}
    assert Counter(k for k in fake.keys().elements()) == Counter(r.idempotency_key for r in rows)
    assert {r.state for r in rows} == {DeliveryState.SENT}
    return [r.idempotency_key for r in rows]


def test_the_first_chunks_are_posted_while_the_last_is_still_being_built(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> None:
    add_digest_channels(session, seed, FANOUT_CHANNELS)
    seen: dict[int, list[str | None]] = {}

    def before_next_chunk(done: int, total: int) -> None:
        seen[done] = [p.key for p in fake.posted[1:]]
        if 0 < total - done <= 50:
            # The last chunk is not built until a digest has gone (or 20 s have passed).
            _wait_for(lambda: len(fake.posted) > 1)
            seen[done] = [p.key for p in fake.posted[1:]]

    with fake_slack() as fake, clock.frozen(NOW), _standby_worker(app, fake):
        # Once this is sent the worker has nothing to do and sleeps until it is woken.
        add_post(session, app, seed.channels["srs-police"], "k-before")
        app.outbox_bell.ring()
        assert _wait_for(lambda: _deliveries(session)[0].state is DeliveryState.SENT)
        results = run_due_digests(app, progress=before_next_chunk)
        assert _wait_for(lambda: len(fake.posted) == len(results) + 1)
    keys = _sent_exactly_once(session, fake)[1:]
    assert len(keys) == FANOUT_CHANNELS + 1
    *_, before_last, _ = sorted(seen)
    posted_early = seen[before_last]
    assert posted_early, "nothing was posted before the last chunk was built"
    # Only digests of chunks already committed: the last chunk's come after.
    assert set(posted_early) <= set(keys[:before_last])


def test_a_429_in_the_middle_of_a_fan_out_loses_and_duplicates_nothing(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> None:
    add_digest_channels(session, seed, FANOUT_CHANNELS)
    with fake_slack() as fake, clock.frozen(NOW) as traveller:
        fake.answer_randomly(14, rate_limited=0.15, retry_after=1)
        with _standby_worker(app, fake) as worker:
            results = run_due_digests(app)
            assert _wait_for(lambda: fake.outcomes["429"] + len(fake.posted) >= len(results))
        assert fake.outcomes["429"] > 0
        # What the 429s held back goes once its Retry-After has passed.
        for _ in range(10):
            traveller.advance(timedelta(seconds=2))
            worker.sender.send_due()
    assert len(_sent_exactly_once(session, fake)) == FANOUT_CHANNELS + 1


def test_a_crash_in_the_middle_of_a_chunk_leaves_no_half_written_chunk(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> None:
    add_digest_channels(session, seed, FANOUT_CHANNELS)
    inserts = []

    def crash_on_second_insert(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO DELIVERIES"):
            inserts.append(statement)
            if len(inserts) == 2:
                # The second chunk's watermarks are updated; its digests are being written.
                raise _Crash

    event.listen(app.engine, "before_cursor_execute", crash_on_second_insert)
    with clock.frozen(NOW), pytest.raises(_Crash):
        run_due_digests(app)
    event.remove(app.engine, "before_cursor_execute", crash_on_second_insert)
    session.expire_all()
    done = session.scalars(select(Channel.slug).where(Channel.last_digest_at.is_not(None))).all()
    first_chunk = sorted(done)
    assert len(first_chunk) == 10
    assert sorted(d.channel.slug for d in _deliveries(session)) == first_chunk
    # The next run writes the rest, once each.
    with clock.frozen(NOW):
        assert len(run_due_digests(app)) == FANOUT_CHANNELS + 1 - 10
    session.expire_all()
    rows = _deliveries(session)
    assert len({r.idempotency_key for r in rows}) == len(rows) == FANOUT_CHANNELS + 1
    waiting = select(func.count()).where(
        Channel.digest_cron.is_not(None), Channel.last_digest_at.is_(None)
    )
    assert session.scalar(waiting) == 0
