"""The worker: APScheduler jobs built from the database, one leader, and the outbox sender.

The jobs are plain functions (`run_due_digests`, `run_due_reminders`, `run_meeting_reminders`,
`send_due`) that decide what is due from the database alone: the last run each channel had,
and the outbox keys already written. So a run missed while no worker was up is caught up once
when one starts, if it is still within the grace period; a run already done is never redone;
and tests call them directly at any instant.

APScheduler (3.x) fires them on time: every minute a sync job rebuilds the job list from the
channels' digest schedules and the active reminders (so changes apply without a restart) and
also runs the catch-up. Only the leader (see `bot.leader`) runs the scheduler; every worker
runs the sender, whose claims are safe to run side by side.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from bot import private_answers
from bot.db import unit_of_work
from bot.domain import Platform
from bot.leader import LeaderLock
from bot.models import Channel, Reminder
from bot.outbox import Messenger, Pacer, RetryPolicy, Sender, SendReport
from bot.runtime import Runtime
from bot.schedule_time import Schedule, ScheduleError
from bot.scheduled_units import UnitFailure, UnitGuard, report_failures
from bot.services import decision_alerts, digests, graph_sync, reminders
from bot.services.questions import posts as question_posts

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=1)
"""A run missed by more than this (the worker was down) is skipped, not posted late."""
FIRST_CHUNK = 10
FANOUT_CHUNK = 50
"""Channels whose digests are rendered and written per transaction; the sender is woken as
each commits, so the first posts go out while later chunks are still being built."""


# -- the jobs -----------------------------------------------------------------------------------
def due_digests(app: Runtime, now: datetime, grace: timedelta = DEFAULT_GRACE) -> list[digests.Due]:
    """Channels whose latest scheduled digest in (now - grace, now] has not run yet."""
    fires: dict[tuple[str, str, bool], Any] = {}
    due: list[digests.Due] = []
    with unit_of_work(app.sessions) as session:
        channels = session.scalars(
            select(Channel)
            .where(Channel.digest_cron.is_not(None))
            .options(joinedload(Channel.partner), joinedload(Channel.board))
            .order_by(Channel.id)
        ).all()
        for channel in channels:
            assert channel.digest_cron is not None
            key = (channel.digest_cron, channel.digest_timezone, channel.skip_bank_holidays)
            if key not in fires:
                try:
                    schedule = Schedule.parse(*key)
                except ScheduleError as problem:
                    log.warning("channel %s has a bad digest schedule: %s", channel.slug, problem)
                    fires[key] = None
                    continue
                runs = list(schedule.between(now - grace, now))
                fires[key] = runs[-1] if runs else None
            fire = fires[key]
            if fire is not None and (
                channel.last_digest_at is None or channel.last_digest_at < fire.at
            ):
                due.append(digests.Due(channel, fire.local, fire.at))
    return due


def run_due_digests(
    app: Runtime,
    now: datetime | None = None,
    *,
    grace: timedelta = DEFAULT_GRACE,
    failures: list[UnitFailure] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[digests.DigestResult]:
    """Write the digest of every channel that is due, each with its watermark, a chunk at a time.

    Shared data is read once for all of them; then each chunk of channels is rendered and
    written in one transaction (a digest row and its channel's watermark always together, so
    a crash leaves whole chunks written and the rest due) and this process's sender is woken,
    so the rate-limited posting of one chunk overlaps the building of the next. A digest that
    cannot be built or rendered is left out and added to `failures`; if a chunk fails to be
    written, it is written again digest by digest, each in its own savepoint. `progress` is
    told after each chunk how many of the due channels are done and how many there are.
    """
    now = now or app.clock.now()
    failures = failures if failures is not None else []
    due = due_digests(app, now, grace)
    if not due:
        return []
    with unit_of_work(app.sessions) as session:
        seq_to = digests.stamp_register(session, now)
    built = _build_contents(app, due, now, seq_to, failures)
    payloads = digests.Payloads(app.renderer)
    results: list[digests.DigestResult] = []
    for start, end in _chunk_bounds(len(built)):
        # Rendered outside the transaction: a chunk holds the write lock only to write.
        rendering = UnitGuard(None)
        chunk: list[digests.Planned] = []
        for item, content in built[start:end]:
            with rendering.unit(digests.digest_key(item.channel, item.local.date())):
                chunk.append(digests.render_planned(payloads, item, content))
        failures.extend(rendering.failures)
        results.extend(_write_chunk(app, chunk, seq_to, failures))
        app.outbox_bell.ring()
        if progress is not None:
            progress(end, len(built))
    log.info(
        "digests: %d due, %d written, %d empty, %d already done",
        len(due),
        sum(1 for r in results if r.delivery_id is not None),
        sum(1 for r in results if r.skipped_empty),
        sum(1 for r in results if r.already_done),
    )
    return results


def _chunk_bounds(count: int) -> Iterator[tuple[int, int]]:
    """Chunks of FIRST_CHUNK, then twice as many each time up to FANOUT_CHUNK: the sender
    starts on the first, and each is built while the one before is posted, so it is not left
    idle waiting for a big second chunk."""
    start, size = 0, FIRST_CHUNK
    while start < count:
        yield start, min(start + size, count)
        start, size = start + size, min(FANOUT_CHUNK, size * 2)


def _write_chunk(
    app: Runtime, chunk: list[digests.Planned], seq_to: int, failures: list[UnitFailure]
) -> list[digests.DigestResult]:
    """One chunk's digests and watermarks in one transaction; if that fails, one by one."""
    try:
        with unit_of_work(app.sessions) as session:
            return digests.write_digests(session, chunk, seq_to)
    except Exception:
        log.exception("writing %d digests together failed; writing them one by one", len(chunk))
    # Savepoints only on this slower path, so a normal cycle's statements stay constant.
    results = []
    with unit_of_work(app.sessions) as session:
        guard = UnitGuard(session)
        for item in chunk:
            with guard.unit(item.key):
                results.extend(digests.write_digests(session, [item], seq_to))
        failures.extend(guard.failures)
    return results


def _build_contents(
    app: Runtime,
    due: list[digests.Due],
    now: datetime,
    seq_to: int,
    failures: list[UnitFailure],
) -> list[tuple[digests.Due, digests.DigestContent]]:
    """All due digests' contents built together (shared reads once); if that fails, channel
    by channel, so only the digests that cannot be built are left out."""
    days = app.settings.scrutiny_first_digest_days
    try:
        with unit_of_work(app.sessions, writes=False) as session:
            session.add_all([d.channel for d in due])
            contents = digests.build_contents(
                session, due, now=now, seq_to=seq_to, first_digest_days=days
            )
        return list(zip(due, contents, strict=True))
    except Exception:
        log.exception("building %d digests together failed; building them one by one", len(due))
    built: list[tuple[digests.Due, digests.DigestContent]] = []
    for item in due:
        with unit_of_work(app.sessions, writes=False) as session:
            guard = UnitGuard(session)
            session.add(item.channel)
            with guard.unit(digests.digest_key(item.channel, item.local.date())):
                [content] = digests.build_contents(
                    session, [item], now=now, seq_to=seq_to, first_digest_days=days
                )
                built.append((item, content))
            failures.extend(guard.failures)
    return built


def run_due_reminders(
    app: Runtime,
    now: datetime | None = None,
    *,
    grace: timedelta = DEFAULT_GRACE,
    failures: list[UnitFailure] | None = None,
) -> list[reminders.ReminderRun]:
    """Write the reminder runs due within the grace period, and meeting reminders; a run
    that cannot be written is left out and added to `failures`."""
    now = now or app.clock.now()
    with unit_of_work(app.sessions) as session:
        guard = UnitGuard(session)
        runs = reminders.run_due_reminders(session, app.renderer, now=now, grace=grace, guard=guard)
    with unit_of_work(app.sessions) as session:
        meeting_guard = UnitGuard(session)
        runs += reminders.run_meeting_reminders(
            session, app.renderer, now=now, tz=app.settings.timezone, guard=meeting_guard
        )
    if failures is not None:
        failures.extend(guard.failures + meeting_guard.failures)
    return runs


def make_sender(app: Runtime, messengers: Mapping[Platform, Messenger], **options: Any) -> Sender:
    """A sender for this app, able to re-render digests and question packs whose items may
    no longer be shown."""
    options.setdefault("clock", app.clock.now)
    return Sender(
        sessions=app.sessions,
        messengers=messengers,
        renderer=app.renderer,
        rebuilders={
            digests.DIGEST_KIND: digests.rebuild_payload,
            question_posts.KIND_PACK: question_posts.rebuild_pack,
        },
        **options,
    )


def send_due(
    app: Runtime,
    now: datetime | None = None,
    *,
    messengers: Mapping[Platform, Messenger] | None = None,
    sender: Sender | None = None,
) -> SendReport:
    """Post every delivery due at `now` through `sender`, or a sender for `messengers` (the
    entry point builds them: `bot.platforms.registry.messengers`)."""
    if sender is None:
        if messengers is None:
            raise ValueError("send_due needs the messengers or a sender")
        sender = make_sender(app, messengers)
    return sender.send_due(now)


def run_question_posts(
    app: Runtime, now: datetime | None = None, *, failures: list[UnitFailure] | None = None
) -> question_posts.DueReport:
    """Question-window announcements and reminders, packs, carry-forwards and answers that
    are due, each in its own savepoint; the ones that fail are added to `failures`."""
    with unit_of_work(app.sessions) as session:
        guard = UnitGuard(session)
        report = question_posts.run_due(
            session,
            app.renderer,
            now=now or app.clock.now(),
            zone=app.settings.timezone,
            guard=guard,
        )
    if failures is not None:
        failures.extend(guard.failures)
    return report


def run_decision_alerts(
    app: Runtime, now: datetime, *, failures: list[UnitFailure] | None = None
) -> int:
    """Alerts of new decisions to the channels that asked for them, each in its own
    savepoint; the number queued."""
    with unit_of_work(app.sessions) as session:
        guard = UnitGuard(session)
        queued = decision_alerts.run_due(session, app.renderer, now=now, guard=guard)
    if failures is not None:
        failures.extend(guard.failures)
    return queued


def prune_private_answers(app: Runtime, now: datetime | None = None) -> int:
    """Delete the private answers stored longer than `PRIVATE_ANSWER_DAYS`; how many."""
    now = now or app.clock.now()
    with unit_of_work(app.sessions) as session:
        days = app.settings.private_answer_days
        pruned = private_answers.prune(session, now=now, days=days)
    if pruned:
        log.info("private answers: %d older than %d days pruned", pruned, days)
    return pruned


def run_graph_sync(app: Runtime, now: datetime | None = None) -> graph_sync.SyncReport | None:
    """The Microsoft 365 sync, once per 30-minute slot, when Graph and a `graph:` section are
    configured; its failures are logged (the next slot tries again)."""
    now = now or app.clock.now()
    if not app.settings.graph_ready:
        return None
    if not graph_sync.claim_slot(app.sessions, now):
        return None
    from bot.microsoft365.graph import sync_from_settings

    try:
        config = graph_sync.graph_config(app.settings.scrutiny_config)
        if config is None:
            return None
        report = sync_from_settings(app.settings, app.sessions, config, now=now)
    except Exception:
        log.exception("Microsoft 365 sync failed; nothing was written, the next slot tries again")
        return None
    for kind, problems in report.refused.items():
        log.warning("Microsoft 365 sync refused %s: %s", kind, "; ".join(map(str, problems[:5])))
    return report


def run_schedules(
    app: Runtime,
    now: datetime | None = None,
    *,
    grace: timedelta = DEFAULT_GRACE,
    stop: threading.Event | None = None,
) -> list[UnitFailure]:
    """Everything the leader does each minute: digests, reminders and question posts due,
    old private answers pruned, and the Microsoft 365 sync every half hour. Each post is
    prepared on its own: the ones that fail are logged, reported once to the secretariat, and
    returned; the rest are queued.

    Once `stop` is set no further stage starts (each stage is its own transactions, so what
    is left undone is simply due again at the next run, on this worker or another).
    """
    now = now or app.clock.now()
    failures: list[UnitFailure] = []
    stages: list[tuple[str, Callable[[], object]]] = [
        ("digests", lambda: run_due_digests(app, now, grace=grace, failures=failures)),
        ("reminders", lambda: run_due_reminders(app, now, grace=grace, failures=failures)),
        ("question posts", lambda: run_question_posts(app, now, failures=failures)),
        ("decision alerts", lambda: run_decision_alerts(app, now, failures=failures)),
        ("private answers", lambda: prune_private_answers(app, now)),
    ]
    for name, stage in stages:
        if stop is not None and stop.is_set():
            log.info("stopping: %s and what follows wait for the next run", name)
            break
        # A stage that breaks outside any one unit (the database, say) still lets the others run.
        try:
            stage()
        except Exception as error:
            log.exception("scheduled %s failed as a whole", name)
            # Once a day at most: a stage failing as a whole is the same problem each minute.
            ref = f"scheduled-{name.replace(' ', '-')}:{now.date().isoformat()}"
            failures.append(UnitFailure(ref, repr(error)[:500]))
        app.outbox_bell.ring()
    if stop is None or not stop.is_set():
        run_graph_sync(app, now)
    if failures:
        try:
            with unit_of_work(app.sessions) as session:
                report_failures(session, app.renderer, failures)
        except Exception:
            log.exception("could not queue the notices of %d failed units", len(failures))
    return failures


# -- APScheduler wiring -------------------------------------------------------------------------
class LocalCronTrigger(BaseTrigger):  # type: ignore[misc]
    """An APScheduler trigger following `bot.schedule_time` (wall-clock, DST, bank holidays)."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The next run after the previous one, or the first at or after `now`."""
        start = (
            previous_fire_time
            if previous_fire_time is not None
            else now - timedelta(microseconds=1)
        )
        fire = self.schedule.next_after(start)
        return fire.at if fire else None

    def __str__(self) -> str:
        return f"local cron[{self.schedule.cron.source} {self.schedule.tz.key}]"


@dataclass
class JobSpec:
    """A job the database asks for: its id, what identifies its trigger, the trigger."""

    id: str
    signature: str
    trigger: BaseTrigger


def job_specs(app: Runtime, now: datetime) -> list[JobSpec]:
    """The digest schedules and active reminders in the database, as APScheduler jobs."""
    specs: dict[str, JobSpec] = {}
    with unit_of_work(app.sessions) as session:
        for cron, zone, skip in session.execute(
            select(Channel.digest_cron, Channel.digest_timezone, Channel.skip_bank_holidays)
            .where(Channel.digest_cron.is_not(None))
            .distinct()
        ):
            if cron is None:
                continue
            signature = f"{cron}|{zone}|{int(skip)}"
            try:
                schedule = Schedule.parse(cron, zone, skip)
            except ScheduleError:
                continue
            specs[f"digests:{signature}"] = JobSpec(
                f"digests:{signature}", signature, LocalCronTrigger(schedule)
            )
        for reminder in session.scalars(select(Reminder).where(Reminder.active.is_(True))):
            job_id = f"reminder:{reminder.id}"
            if reminder.cron:
                try:
                    schedule = Schedule.parse(reminder.cron, reminder.timezone)
                except ScheduleError:
                    continue
                specs[job_id] = JobSpec(
                    job_id, f"{reminder.cron}|{reminder.timezone}", LocalCronTrigger(schedule)
                )
            elif reminder.run_at is not None and reminder.run_at > now:
                specs[job_id] = JobSpec(
                    job_id, reminder.run_at.isoformat(), DateTrigger(run_date=reminder.run_at)
                )
    return list(specs.values())


class DaemonJobExecutor(BaseExecutor):  # type: ignore[misc]
    """Runs each APScheduler job in a daemon thread of its own.

    APScheduler's `shutdown(wait=True)` waits for running jobs while holding its job-store
    lock, which a running sync needs to update the job list: a stop during a sync never ended.
    This executor has nothing to wait for, so the scheduler shuts down at once and the worker
    waits for its jobs itself, holding no lock and for a bounded time; a job still running
    after that is abandoned and, being a daemon, cannot keep the process alive.
    """

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def work() -> None:
            try:
                events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
            except BaseException as problem:
                self._run_job_error(job.id, problem, problem.__traceback__)
            else:
                self._run_job_success(job.id, events)

        threading.Thread(target=work, name=f"scheduled:{job.id}", daemon=True).start()


class _RunningJobs:
    """Counts the scheduled runs in progress, so a stop can wait for them (with a timeout)."""

    def __init__(self) -> None:
        self._done = threading.Condition()
        self._count = 0

    @contextmanager
    def running(self) -> Iterator[None]:
        with self._done:
            self._count += 1
        try:
            yield
        finally:
            with self._done:
                self._count -= 1
                self._done.notify_all()

    @property
    def busy(self) -> bool:
        """Whether a run is in progress."""
        return self._count > 0

    def wait_idle(self, timeout: float) -> bool:
        """Whether every run ended within `timeout` seconds."""
        with self._done:
            return self._done.wait_for(lambda: self._count == 0, timeout)


@dataclass
class PassReport:
    """What one `Worker.run_once` did: the sending, and the scheduled units that failed."""

    sent: SendReport
    failures: list[UnitFailure]


@dataclass
class Worker:
    """One worker process: the sender always; the scheduler while it holds the leader lock."""

    app: Runtime
    sender: Sender
    lock: LeaderLock
    grace: timedelta = DEFAULT_GRACE
    poll_seconds: float = 2.0
    """How often the sender looks for due deliveries, and a standby for the lock."""
    sync_seconds: float = 60.0
    stop_seconds: float = 30.0
    """How long a stop waits for a scheduled run in progress before abandoning it."""
    scheduler: BackgroundScheduler | None = field(default=None, init=False)
    _signatures: dict[str, str] = field(default_factory=dict, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)
    _jobs: _RunningJobs = field(default_factory=_RunningJobs, init=False)
    _syncing: threading.Lock = field(default_factory=threading.Lock, init=False)

    @property
    def leading(self) -> bool:
        """Whether this worker runs the scheduler now."""
        return self.scheduler is not None

    @property
    def busy(self) -> bool:
        """Whether a scheduled run (the sync or a timed job) is in progress."""
        return self._jobs.busy

    def run(self, stop: threading.Event) -> None:
        """Send and (when leading) schedule until `stop` is set."""
        bell = self.app.outbox_bell

        # The sender sleeps on the doorbell (rung as deliveries are committed here, and by the
        # stop), so it starts on a digest chunk at once rather than at the next poll.
        def ring_on_stop() -> None:
            stop.wait()
            bell.ring()

        threading.Thread(target=ring_on_stop, name="worker-stop", daemon=True).start()
        try:
            while not stop.is_set():
                self._keep_leadership()
                try:
                    self.sender.send_due(stop=stop)
                except Exception:
                    log.exception("sending deliveries failed; trying again shortly")
                bell.wait(self.poll_seconds)
        finally:
            self._stand_down()

    def run_once(self) -> PassReport:
        """One pass for cron-style use: if leader, run what is due; then send everything that
        can go (the failure notices included), whatever failed to be prepared."""
        failures: list[UnitFailure] = []
        if self.lock.acquire():
            try:
                failures = run_schedules(self.app, self.app.clock.now(), grace=self.grace)
            finally:
                self.lock.release()
        else:
            log.info("another worker leads (%s); only sending", self.lock.describe())
        return PassReport(self.sender.send_due(), failures)

    # -- leadership -------------------------------------------------------------------------
    def _keep_leadership(self) -> None:
        if self.scheduler is not None:
            if not self.lock.held():
                log.warning("lost the leader lock (%s); the scheduler stops", self.lock.describe())
                self._stand_down()
            return
        if self.lock.acquire():
            log.info("leading the scheduler (%s)", self.lock.describe())
            self._start_scheduler()

    def _start_scheduler(self) -> None:
        self._stopping = threading.Event()
        scheduler = BackgroundScheduler(
            timezone="UTC",
            executors={"default": DaemonJobExecutor()},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(self.grace.total_seconds()),
            },
        )
        # The first sync runs at once (a trigger without a date fires on APScheduler's own
        # clock, the one its timers follow), then every `sync_seconds`.
        scheduler.add_job(self.sync, id="sync-now")
        scheduler.add_job(self.sync, IntervalTrigger(seconds=self.sync_seconds), id="sync")
        scheduler.start()
        self.scheduler = scheduler

    def _stand_down(self) -> None:
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None:
            self._stopping.set()
            scheduler.shutdown(wait=False)
            if not self._jobs.wait_idle(self.stop_seconds):
                log.warning(
                    "a scheduled run was still going %.0f s after the stop; abandoning it "
                    "(it starts nothing more, and what it left undone is due at the next run)",
                    self.stop_seconds,
                )
        self._signatures.clear()
        self.lock.release()

    def sync(self) -> None:
        """Catch up anything due, then make the job list match the database."""
        if self._stopping.is_set():
            return
        # The first sync and the interval's can meet when a sync runs long; one is enough.
        if not self._syncing.acquire(blocking=False):
            return
        try:
            with self._jobs.running():
                self._sync()
        finally:
            self._syncing.release()

    def _sync(self) -> None:
        now = self.app.clock.now()
        try:
            run_schedules(self.app, now, grace=self.grace, stop=self._stopping)
        except Exception:
            log.exception("running due schedules failed; the next sync tries again")
        scheduler = self.scheduler
        if scheduler is None or self._stopping.is_set():
            return
        wanted = {spec.id: spec for spec in job_specs(self.app, now)}
        for job_id in list(self._signatures):
            if job_id not in wanted:
                scheduler.remove_job(job_id)
                del self._signatures[job_id]
        for spec in wanted.values():
            if self._signatures.get(spec.id) == spec.signature:
                continue
            scheduler.add_job(
                self._run_job,
                spec.trigger,
                id=spec.id,
                name=spec.id,
                replace_existing=True,
            )
            self._signatures[spec.id] = spec.signature

    def _run_job(self) -> None:
        if self._stopping.is_set():
            return
        with self._jobs.running():
            try:
                run_schedules(self.app, self.app.clock.now(), grace=self.grace, stop=self._stopping)
            except Exception:
                log.exception("a scheduled run failed; the next sync catches up")


def make_worker(
    app: Runtime,
    messengers: Mapping[Platform, Messenger],
    lock: LeaderLock,
    *,
    grace: timedelta = DEFAULT_GRACE,
    policy: RetryPolicy | None = None,
    pacer: Pacer | None = None,
    poll_seconds: float = 2.0,
) -> Worker:
    """A worker with a sender for these messengers."""
    options: dict[str, Any] = {}
    if policy is not None:
        options["policy"] = policy
    if pacer is not None:
        options["pacer"] = pacer
    sender = make_sender(app, messengers, **options)
    return Worker(app, sender, lock, grace=grace, poll_seconds=poll_seconds)
