"""The worker: one leader (advisory lock or lock file), a standby that takes over, jobs built
from the database, and a worker process killed mid-post that loses and duplicates nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.app import ScrutinyApp
from bot.cli import cli
from bot.clock import Clock
from bot.domain import DeliveryState, Platform
from bot.leader import FileLeaderLock, leader_lock_for
from bot.models import Channel, Delivery, Reminder
from bot.outbox import RetryPolicy
from bot.platforms.console.messenger import ConsoleMessenger
from bot.schedule_time import Schedule
from bot.scheduler import LocalCronTrigger, Worker, job_specs, make_worker, run_schedules
from tests.conftest import NOW
from tests.factories import Seed
from tests.outbox_support import (
    TOKEN,
    add_post,
    reload,
    sender_for,
    slack_with_events,
)

PROJECT = Path(__file__).resolve().parent.parent


def test_the_trigger_fires_at_9am_london_time_either_side_of_the_clock_changes() -> None:
    trigger = LocalCronTrigger(Schedule.parse("0 9 * * mon"))
    first = trigger.get_next_fire_time(None, datetime(2026, 3, 24, tzinfo=UTC))
    assert first == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    assert trigger.get_next_fire_time(first, first) == datetime(2026, 4, 6, 8, 0, tzinfo=UTC)
    autumn = trigger.get_next_fire_time(None, datetime(2026, 10, 20, tzinfo=UTC))
    assert autumn == datetime(2026, 10, 26, 9, 0, tzinfo=UTC)


def test_jobs_are_built_from_the_database(app: ScrutinyApp, session: Session, seed: Seed) -> None:
    session.add(Reminder(text="Papers", channel=seed.channels["srs-torfaen"], cron="30 8 * * 1-5"))
    session.add(
        Reminder(text="Once", channel=seed.channels["srs-torfaen"], run_at=NOW + timedelta(days=1))
    )
    session.add(
        Reminder(text="Gone", channel=seed.channels["srs-torfaen"], run_at=NOW - timedelta(days=1))
    )
    session.commit()
    specs = {s.id: s.signature for s in job_specs(app, NOW)}
    assert specs == {
        "digests:0 9 * * mon|Europe/London|0": "0 9 * * mon|Europe/London|0",
        "reminder:1": "30 8 * * 1-5|Europe/London",
        "reminder:2": (NOW + timedelta(days=1)).isoformat(),
    }


def _worker(app: ScrutinyApp, poll: float = 0.05) -> Worker:
    worker = make_worker(
        app, {Platform.CONSOLE: ConsoleMessenger()}, leader_lock_for(app.engine), poll_seconds=poll
    )
    return worker


def test_a_change_in_the_database_changes_the_jobs_without_a_restart(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    worker = _worker(app)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        _wait(
            lambda: (
                worker.leading
                and worker.scheduler is not None
                and worker.scheduler.get_job("sync") is not None
                # The first sync (run at once) has added the digest job and finished.
                and worker.scheduler.get_job("digests:0 9 * * mon|Europe/London|0") is not None
                and not worker.busy
            )
        )
        worker.sync()
        assert worker.scheduler is not None
        ids = {job.id for job in worker.scheduler.get_jobs()}
        assert ids == {"sync", "digests:0 9 * * mon|Europe/London|0"}
        seed.channels["srs-torfaen"].digest_cron = "0 8 * * tue"
        session.commit()
        worker.sync()
        ids = {job.id for job in worker.scheduler.get_jobs()}
        assert ids == {"sync", "digests:0 8 * * tue|Europe/London|0"}
        job = worker.scheduler.get_job("digests:0 8 * * tue|Europe/London|0")
        assert job.trigger.schedule.cron.source == "0 8 * * tue"
        assert job.misfire_grace_time == 3600 and job.coalesce
    finally:
        stop.set()
        thread.join(10)


def _wait(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_one_worker_leads_and_a_standby_takes_over_when_it_stops(
    app: ScrutinyApp, seed: Seed
) -> None:
    first, second = _worker(app), _worker(app)
    stops = [threading.Event(), threading.Event()]
    threads = [
        threading.Thread(target=w.run, args=(s,))
        for w, s in zip((first, second), stops, strict=True)
    ]
    threads[0].start()
    _wait(lambda: first.leading)
    threads[1].start()
    time.sleep(0.3)
    assert first.leading and not second.leading
    stops[0].set()
    threads[0].join(10)
    _wait(lambda: second.leading)
    stops[1].set()
    threads[1].join(10)


def test_a_killed_leader_is_replaced(database_url: str, app: ScrutinyApp) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from bot.db import make_engine\n"
            "from bot.leader import leader_lock_for\n"
            "lock = leader_lock_for(make_engine(sys.argv[1]))\n"
            "assert lock.acquire()\n"
            "print('leading', flush=True)\n"
            "time.sleep(60)\n",
            database_url,
        ],
        stdout=subprocess.PIPE,
        cwd=PROJECT,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "leading"
        standby = leader_lock_for(app.engine)
        assert not standby.acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        _wait(standby.acquire)
        assert standby.held()
        standby.release()
    finally:
        holder.kill()
        holder.wait(10)


def test_the_lock_file_is_exclusive(tmp_path: Path) -> None:
    one, two = (
        FileLeaderLock(tmp_path / "db.leader.lock"),
        FileLeaderLock(tmp_path / "db.leader.lock"),
    )
    assert one.acquire() and not two.acquire()
    one.release()
    assert two.acquire() and two.held()
    two.release()


def test_a_worker_process_killed_after_posting_is_not_posted_twice(
    database_url: str, app: ScrutinyApp, session: Session, engine: Engine, clock: Clock
) -> None:
    channel = Channel(
        slug="srs-board", name="#srs-board", platform=Platform.SLACK, external_id="C0BRD00001"
    )
    session.add(channel)
    session.commit()
    delivery = add_post(session, app, channel, "reminder:9:2026-11-23T09:00")
    with slack_with_events(engine, database_url) as fake:
        fake.hang_after_post(60.0)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_API_URL": fake.url,
            "LOG_LEVEL": "WARNING",
        }
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "scrutiny-bot"), "worker", "--once"],
            env=env,
            cwd=PROJECT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            fake.wait_until(lambda: len(fake.posted) == 1, timeout=30)
            process.send_signal(signal.SIGKILL)  # posted, not yet recorded
            process.wait(10)
        finally:
            process.kill()
        claimed = reload(session, delivery.id)
        fake.wait_for_events()  # Slack reported the post that landed
        assert claimed.state is DeliveryState.SENDING and claimed.claimed_at is not None
        # The dead process stamped its claim with the machine's clock; this one is set from
        # that stamp. Its lease (a minute) runs out unrenewed, then the post is picked up.
        lease = RetryPolicy().lease
        restarted = sender_for(app, fake, worker_id="restarted", policy=RetryPolicy())
        clock.set(claimed.claimed_at + lease - timedelta(seconds=1))
        assert restarted.send_due().handled == 0
        clock.set(claimed.claimed_at + lease + timedelta(seconds=1))
        report = restarted.send_due()
        assert report.found_already_posted == 1
        assert fake.keys()["reminder:9:2026-11-23T09:00"] == 1
    row = reload(session, delivery.id)
    assert row.state is DeliveryState.SENT and row.platform_message_id == fake.posted[0].ts


def test_worker_once_posts_to_console_channels(
    database_url: str, app: ScrutinyApp, session: Session
) -> None:
    channel = Channel(
        slug="console-board",
        name="#console-board",
        platform=Platform.CONSOLE,
        external_id="console",
    )
    session.add(channel)
    session.commit()
    add_post(session, app, channel, "console-key", text="Papers for F&G due")
    result = CliRunner().invoke(cli, ["worker", "--once"], env={"DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    assert "Papers for F&G due" in result.output and "#console-board" in result.output
    assert "Sent 1" in result.output
    assert session.scalars(select(Delivery.state)).all() == [DeliveryState.SENT]


def test_operators_list_failed_deliveries_and_queue_them_again(
    database_url: str, app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    delivery = add_post(session, app, seed.channels["srs-torfaen"], "k-operator")
    delivery.state = DeliveryState.FAILED
    delivery.last_error = "Slack error not_in_channel"
    session.commit()
    runner, env = CliRunner(), {"DATABASE_URL": database_url}
    listed = runner.invoke(cli, ["deliveries", "--failed"], env=env)
    assert (
        listed.exit_code == 0
        and "k-operator" in listed.output
        and "not_in_channel" in listed.output
    )
    retried = runner.invoke(cli, ["deliveries", "--retry", str(delivery.id)], env=env)
    assert retried.exit_code == 0 and "queued again" in retried.output
    assert reload(session, delivery.id).state is DeliveryState.PENDING
    again = runner.invoke(cli, ["deliveries", "--retry", str(delivery.id)], env=env)
    assert again.exit_code == 1 and "no failed or cancelled delivery" in again.output
    none_failed = runner.invoke(cli, ["deliveries", "--failed"], env=env)
    assert none_failed.stdout.strip() == "No failed deliveries."
    # The re-queued post waits for Slack, which this process has no token for.
    assert "Warning: 1 post is waiting for slack" in none_failed.stderr


def test_one_pass_runs_digests_reminders_and_question_posts(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    run_schedules(app, NOW)
    kinds = set(session.scalars(select(Delivery.kind)))
    assert "digest" in kinds
    assert any(kind.startswith("question") for kind in kinds), kinds
    before = len(session.scalars(select(Delivery)).all())
    run_schedules(app, NOW + timedelta(seconds=30))
    assert len(session.scalars(select(Delivery)).all()) == before
