"""The outbox: every scheduled post is a Delivery row, sent at most once by its idempotency key.

Writers call `enqueue` in the same transaction as the state the post reports (a digest
watermark, a reminder's run), so either both happen or neither. The `Sender` claims due rows
(`FOR UPDATE SKIP LOCKED` on PostgreSQL; the same single-statement conditional UPDATE is atomic
on SQLite), checks visibility again, posts through a platform `Messenger`, records the platform
message id, and retries with backoff and jitter. A failure that may have reached the platform
(a timeout, a 5xx, a worker that died holding a claim) sets `maybe_posted`: the row then waits
a settle delay (`RetryPolicy.settle`, well past the client's timeout and the platform's report
of the post), and before posting again the sender looks for the key among the channel's posts
and marks the row sent if it is there, so an ambiguous failure never becomes a second post.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NotRequired, Protocol, TypedDict, Unpack

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import CLOCK
from bot.db import unit_of_work
from bot.domain import DeliveryState, Platform
from bot.messages import Reply
from bot.models import DIRECT_CHANNELS, Channel, Delivery, Partner
from bot.rendering import Renderer, render_payload
from bot.services import audit
from bot.services.post_items import classified_items, still_visible
from bot.visibility import audience_of_channel

log = logging.getLogger(__name__)

NOTICE_KIND = "notice"
"""Failure notices to the secretariat; one that fails itself is only logged (no loops)."""


THREAD_OF = "thread_of"
"""Payload field: the key of an earlier delivery whose thread this post replies in (a
messenger that can reply in threads does so when it knows that post; others ignore it)."""
UPDATE_OF = "update_of"
"""Payload field: the key of an earlier delivery whose message this one replaces in place."""
THREAD_ID = "thread_id"
UPDATE_ID = "update_id"
"""What the sender adds for the messenger: the platform message id of the post named by
`thread_of` (when it was sent) and of the one named by `update_of`."""


# -- what messengers raise ------------------------------------------------------------------
class SendError(Exception):
    """A post did not go through; subclasses say whether and when to try again."""


class RateLimited(SendError):
    """The platform said 429: wait `retry_after` seconds before posting to it again."""

    def __init__(self, retry_after: float, detail: str = "rate limited") -> None:
        super().__init__(detail)
        self.retry_after = max(0.0, retry_after)


class TransientError(SendError):
    """A 5xx, a timeout or a dropped connection; `maybe_posted` when it may have been delivered."""

    def __init__(self, detail: str, *, maybe_posted: bool) -> None:
        super().__init__(detail)
        self.maybe_posted = maybe_posted


class PermanentError(SendError):
    """Retrying cannot help (unknown channel, bot removed, malformed message)."""


@dataclass(frozen=True)
class Target:
    """Where a post goes, detached from the database session."""

    platform: Platform
    external_id: str
    slug: str
    name: str

    @classmethod
    def of(cls, channel: Channel) -> Target:
        """The target of a loaded channel row."""
        return cls(
            Platform(channel.platform),
            channel.external_id,
            channel.slug,
            channel.name,
        )


class Messenger(Protocol):
    """Posts rendered payloads to one platform. Implementations live in `bot/platforms/`.

    One that calls a remote API may say how long it waits for an answer (`client_timeout`,
    seconds): a post whose answer never came settles well past that before it is looked up.
    """

    platform: Platform

    def post(self, target: Target, payload: Mapping[str, Any], *, key: str) -> str:
        """Post the payload, carrying `key` where the platform can keep it; the message id.

        Raises RateLimited, TransientError or PermanentError.
        """
        ...

    def find_posted(self, target: Target, key: str, *, since: datetime) -> str | None:
        """The id of a message carrying `key` posted to `target` since `since`, if any."""
        ...


# -- writing rows -----------------------------------------------------------------------------
def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert the rows in one statement, skipping keys that exist; the new ids by key."""
    if not rows:
        return {}
    table = Delivery.__table__
    assert isinstance(table, Table)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[table.c.idempotency_key])
        .returning(table.c.idempotency_key, table.c.id)
    )
    return {key: new_id for key, new_id in session.execute(statement)}


class Post(TypedDict):
    """What a writer queues: where, under which key, what kind and what to post."""

    key: str
    channel: Channel
    kind: str
    payload: Mapping[str, Any]
    not_before: NotRequired[datetime | None]


def _row(post: Post, now: datetime) -> dict[str, Any]:
    return {
        "idempotency_key": post["key"],
        "channel_id": post["channel"].id,
        "kind": post["kind"],
        "payload": dict(post["payload"]),
        "state": DeliveryState.PENDING,
        "attempts": 0,
        "next_try_at": post.get("not_before") or now,
        "created_at": now,
        "last_error": "",
        "maybe_posted": False,
    }


def enqueue_id(session: Session, **post: Unpack[Post]) -> int | None:
    """Add a pending post in the caller's transaction; its id, or None if `key` already exists."""
    return enqueue_many(session, [post]).get(post["key"])


def enqueue_many(session: Session, posts: Sequence[Post]) -> dict[str, int]:
    """Add pending posts in the caller's transaction, in one statement; the new ids by key
    (a key that already exists is left alone and missing from the answer)."""
    now = CLOCK.now()
    return _insert_ignoring_duplicates(session, [_row(post, now) for post in posts])


def enqueue(session: Session, **post: Unpack[Post]) -> Delivery | None:
    """Add a pending post in the caller's transaction; None (and no change) if `key` exists.

    The insert is `INSERT ... ON CONFLICT DO NOTHING`, so two writers racing on one key
    cannot both succeed and neither fails.
    """
    new_id = enqueue_id(session, **post)
    return session.get(Delivery, new_id) if new_id is not None else None


# -- policy -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently the sender tries."""

    max_attempts: int = 6
    """Failures (not rate limits) before a row is marked failed and the secretariat told."""
    base_delay: float = 5.0
    max_delay: float = 900.0
    lease: timedelta = timedelta(minutes=1)
    """A claim not renewed for this long belongs to a dead worker and may be taken over."""
    renew_seconds: float = 15.0
    """How often a live worker renews the claims it holds (well inside the lease)."""
    history_lookback: timedelta = timedelta(minutes=10)
    """How far before the row's creation a platform that lists channel messages (Graph) looks."""
    settle: timedelta = timedelta(seconds=60)
    """After an attempt whose outcome is unknown (a timeout, a 5xx), the least wait before
    looking for the post and retrying: past the time the platform takes to report a post
    (Slack's metadata event), so a post that landed late is found rather than posted again.
    A messenger with a longer client timeout waits `settle_factor` times that instead."""
    settle_factor: float = 3.0

    def settle_for(self, messenger: object) -> float:
        """Seconds an uncertain post to `messenger` settles before it is looked up again:
        well past its client timeout (`client_timeout`, seconds, when it has one)."""
        timeout = float(getattr(messenger, "client_timeout", 0.0) or 0.0)
        return max(self.settle.total_seconds(), self.settle_factor * timeout)

    max_wait: float = 2.0
    """Longer pacing or Retry-After waits defer the row instead of holding a thread."""

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Exponential backoff with jitter: between half and all of base * 2^(failures-1)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(0, failures - 1))
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


class Pacer:
    """Spaces posts: at most one per `per_channel` seconds per channel, and across a platform
    `per_second` on average with bursts of at most `burst` posts.

    The platform-wide limit is a token bucket kept as GCRA (a theoretical arrival time per
    platform): a post may go `burst - 1` intervals ahead of the steady rate, no more. So after a
    stall (a slow answer, a GC pause, a busy machine) the posts that fell behind go out in a
    bounded burst and the fan-out catches up, where a fixed spacing would lose the stalled time
    for good; and in any interval of length L at most `burst + per_second * L` posts go out,
    whatever order threads reserve in. `burst=1` is plain spacing.

    Thread-safe. `reserve` takes a channel's next slot and a platform slot at or after it and
    says how long to wait; a caller that would wait for the channel first (`channel_delay`)
    should sleep that, then reserve, so a slot far ahead for one channel does not hold the
    platform's bucket back for the others.
    """

    def __init__(
        self,
        per_channel: float = 1.0,
        per_second: float = 50.0,
        clock: Callable[[], float] = time.monotonic,
        burst: float = 10.0,
    ) -> None:
        if burst < 1:
            raise ValueError(f"Pacer burst must be at least 1 post, not {burst}")
        self.per_channel = per_channel
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.burst = burst
        self.clock = clock
        self._lock = threading.Lock()
        self._channel_next: dict[tuple[Platform, str], float] = {}
        self._arrival: dict[Platform, float] = {}
        """Per platform: the GCRA theoretical arrival time of the next post."""

    @property
    def _tolerance(self) -> float:
        return (self.burst - 1) * self.interval

    def _platform_slot(self, platform: Platform, at: float) -> float:
        if not self.interval:
            return at
        return max(at, self._arrival.get(platform, at) - self._tolerance)

    def _channel_slot(self, platform: Platform, channel: str, now: float) -> float:
        return max(now, self._channel_next.get((platform, channel), now))

    def channel_delay(self, platform: Platform, channel: str) -> float:
        """Seconds until this channel may be posted to, by its own limit (or a Retry-After)."""
        with self._lock:
            now = self.clock()
            return self._channel_slot(platform, channel, now) - now

    def delay(self, platform: Platform, channel: str) -> float:
        """Seconds until this channel may be posted to (without reserving a slot)."""
        with self._lock:
            now = self.clock()
            return self._platform_slot(platform, self._channel_slot(platform, channel, now)) - now

    def reserve(self, platform: Platform, channel: str) -> float:
        """Reserve the next slot for a post to `channel`; seconds to wait before posting."""
        with self._lock:
            now = self.clock()
            slot = self._platform_slot(platform, self._channel_slot(platform, channel, now))
            self._channel_next[(platform, channel)] = slot + self.per_channel
            if self.interval:
                arrival = self._arrival.get(platform, slot)
                self._arrival[platform] = max(arrival, slot) + self.interval
            return slot - now

    def hold(self, platform: Platform, channel: str, seconds: float) -> None:
        """Keep posts to `channel` back for `seconds` (the platform's Retry-After)."""
        with self._lock:
            until = self.clock() + seconds
            key = (platform, channel)
            self._channel_next[key] = max(self._channel_next.get(key, until), until)


class Doorbell:
    """Wakes a sender waiting for work when deliveries are committed in this process.

    A writer rings after committing rows (a digest cycle after each chunk), so sending starts
    while later rows are still being built rather than at the sender's next poll. A ring with
    nobody waiting is kept until the next wait, so a wake-up between two waits is never lost.
    Other processes' senders still find the rows at their next poll.
    """

    def __init__(self) -> None:
        self._rung = threading.Condition()
        self._pending = False

    def ring(self) -> None:
        """Wake the waiting sender (or the next one to wait)."""
        with self._rung:
            self._pending = True
            self._rung.notify_all()

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a ring; whether one came (and take it)."""
        with self._rung:
            rung = self._rung.wait_for(lambda: self._pending, timeout)
            self._pending = False
            return rung


# -- the sender -------------------------------------------------------------------------------
Rebuilder = Callable[[Session, Delivery, Renderer], dict[str, Any] | None]
"""Renders a post afresh with what may be shown now; None when nothing may be posted."""


@dataclass
class SendReport:
    """What one `send_due` call did."""

    sent: int = 0
    found_already_posted: int = 0
    deferred: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0

    def add(self, other: SendReport) -> None:
        """Accumulate another report into this one."""
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def handled(self) -> int:
        """Rows this call dealt with, whatever the outcome."""
        return sum(vars(self).values())


@dataclass
class _Claimed:
    id: int
    key: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    maybe_posted: bool
    created_at: datetime
    target: Target
    channel_id: int


def default_worker_id() -> str:
    """host:pid, so an operator can tell which worker holds a claim."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Sender:
    """Claims due deliveries and posts them through the messengers, one platform each."""

    sessions: sessionmaker[Session]
    messengers: Mapping[Platform, Messenger]
    renderer: Renderer
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    pacer: Pacer = field(default_factory=Pacer)
    worker_id: str = field(default_factory=default_worker_id)
    batch_size: int = 100
    concurrency: int = 4
    record_batch: int = 50
    """Posts recorded as sent per transaction, once that many are waiting (see `_mark_sent`)."""
    record_seconds: float = 0.5
    """A finished post waits at most about this long to be recorded (while others finish)."""
    rebuilders: Mapping[str, Rebuilder] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], datetime] = CLOCK.now
    _held: set[int] = field(default_factory=set, init=False, repr=False)
    _held_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _sent: list[tuple[_Claimed, str, bool, datetime]] = field(
        default_factory=list, init=False, repr=False
    )
    _sent_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _recording: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _oldest_unrecorded: float = field(default=0.0, init=False, repr=False)

    # -- claiming ---------------------------------------------------------------------------
    def claim(self, now: datetime | None = None, limit: int | None = None) -> list[_Claimed]:
        """Take up to `limit` due rows for this worker (pending and due, or stale claims)."""
        now = now or self.clock()
        platforms = list(self.messengers)
        if not platforms:
            return []
        stale = now - self.policy.lease
        with unit_of_work(self.sessions) as session:
            due = (
                select(Delivery.id)
                .join(Channel, Channel.id == Delivery.channel_id)
                .where(
                    Channel.platform.in_(platforms),
                    or_(
                        and_(Delivery.state == DeliveryState.PENDING, Delivery.next_try_at <= now),
                        and_(Delivery.state == DeliveryState.SENDING, Delivery.claimed_at < stale),
                    ),
                )
                .order_by(Delivery.next_try_at, Delivery.id)
                .limit(limit or self.batch_size)
                .with_for_update(skip_locked=True, of=Delivery)
                .cte("due")
            )
            # A row reclaimed from `sending` was held by a worker that may have posted it.
            statement = (
                update(Delivery)
                .where(Delivery.id.in_(select(due.c.id)))
                .values(
                    state=DeliveryState.SENDING,
                    claimed_by=self.worker_id,
                    claimed_at=now,
                    maybe_posted=or_(
                        Delivery.maybe_posted, Delivery.state == DeliveryState.SENDING
                    ),
                )
                .returning(
                    Delivery.id,
                    Delivery.idempotency_key,
                    Delivery.kind,
                    Delivery.payload,
                    Delivery.attempts,
                    Delivery.maybe_posted,
                    Delivery.created_at,
                    Delivery.channel_id,
                )
                .execution_options(synchronize_session=False)
            )
            rows = session.execute(statement).all()
            if not rows:
                return []
            channels = {
                c.id: Target.of(c)
                for c in session.scalars(
                    select(Channel)
                    .where(Channel.id.in_({r.channel_id for r in rows}))
                    .execution_options(**{DIRECT_CHANNELS: True})
                )
            }
        with self._held_lock:
            self._held.update(r.id for r in rows)
        claimed = [
            _Claimed(
                id=r.id,
                key=r.idempotency_key,
                kind=r.kind,
                payload=r.payload,
                attempts=r.attempts,
                maybe_posted=r.maybe_posted,
                created_at=r.created_at,
                target=channels[r.channel_id],
                channel_id=r.channel_id,
            )
            for r in rows
        ]
        return sorted(claimed, key=lambda c: (c.created_at, c.id))

    # -- sending ----------------------------------------------------------------------------
    def send_due(
        self,
        now: datetime | None = None,
        *,
        max_batches: int | None = None,
        stop: threading.Event | None = None,
    ) -> SendReport:
        """Claim and send batches until nothing is due at `now` (or `max_batches` were done).

        Once `stop` is set nothing more is claimed and claimed rows not yet started go back to
        the queue, so a stopping worker only finishes the posts in flight. While this runs,
        the claims it holds are renewed, so only a dead worker's claims run out.
        """
        report = SendReport()
        batches = 0
        stopping = stop or threading.Event()

        def next_batch() -> list[_Claimed]:
            if stopping.is_set() or (max_batches is not None and batches >= max_batches):
                return []
            return self._recheck_visibility(self.claim(now), report)

        with self._renewing_claims(), ThreadPoolExecutor(max(1, self.concurrency)) as pool:
            # Each channel's latest posting: a channel's rows from a later batch go after it.
            posting: dict[int, Future[SendReport]] = {}

            def collect(block: bool) -> None:
                """Add finished postings to the report; with `block`, wait for them all."""
                if block:
                    wait(posting.values())
                for channel_id, done in list(posting.items()):
                    if done.done():
                        report.add(done.result())
                        del posting[channel_id]

            try:
                claimed = next_batch()
                while claimed:
                    batches += 1
                    by_channel: dict[int, list[_Claimed]] = defaultdict(list)
                    for row in claimed:
                        by_channel[row.channel_id].append(row)
                    for channel_id, rows in by_channel.items():
                        posting[channel_id] = pool.submit(
                            self._send_channel, rows, stopping, posting.get(channel_id)
                        )
                    # The next batch is claimed and checked while this one posts, so the posts
                    # (paced, mostly waiting) never wait for the database between batches.
                    claimed = next_batch()
                    # It is queued once this one's posts have all started: a slow answer holds
                    # up its own channel, not the fan-out behind it.
                    running = [f for f in posting.values() if not f.done()]
                    while len(running) > self.concurrency:
                        wait(running, self.record_seconds, return_when=FIRST_COMPLETED)
                        running = [f for f in running if not f.done()]
                        self._record_due()
                    collect(block=not claimed)
                    self._record_sent()
                    if not claimed:
                        # Rows queued by this batch (failure notices) or committed meanwhile.
                        claimed = next_batch()
                collect(block=True)
            finally:
                self._record_sent()
        return report

    # -- the lease --------------------------------------------------------------------------
    @contextmanager
    def _renewing_claims(self) -> Iterator[None]:
        """Renew this worker's claims every `renew_seconds` until the block ends."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self.policy.renew_seconds):
                try:
                    self.renew_claims()
                except Exception:
                    # The next renewal tries again; a claim lost meanwhile is looked up
                    # before it is posted again, so nothing goes out twice.
                    log.exception("renewing the outbox claims of %s failed", self.worker_id)

        renewer = threading.Thread(target=renew, name="outbox-lease", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join(self.policy.renew_seconds)

    def renew_claims(self) -> int:
        """Stamp the claims this sender still holds as fresh; how many were renewed."""
        with self._held_lock:
            held = sorted(self._held)
        if not held:
            return 0
        with unit_of_work(self.sessions) as session:
            result = session.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(held),
                    Delivery.claimed_by == self.worker_id,
                    Delivery.state == DeliveryState.SENDING,
                )
                .values(claimed_at=self.clock())
                .execution_options(synchronize_session=False)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    def _send_channel(
        self,
        rows: list[_Claimed],
        stop: threading.Event,
        after: Future[SendReport] | None = None,
    ) -> SendReport:
        report = SendReport()
        if after is not None:
            # The channel's rows from the batch before: already running (see send_due), so
            # this wait cannot deadlock the pool.
            wait([after])
        for index, row in enumerate(rows):
            if stop.is_set():
                for left in rows[index:]:
                    self._release(left, self.clock(), "the worker stopped before posting it")
                    report.deferred += 1
                break
            try:
                self._send_one(row, report)
            except Exception:
                # A bug must not leave the rest of the channel's rows claimed until the lease ends.
                log.exception("sending delivery %s failed unexpectedly", row.key)
                self._retry_later(
                    row, TransientError("unexpected error", maybe_posted=True), report
                )
            if index + 1 < len(rows) and self._deferred_rest(rows[index + 1 :], report):
                break
        return report

    def _deferred_rest(self, rows: list[_Claimed], report: SendReport) -> bool:
        """After a 429, release the channel's other rows rather than wait in this thread."""
        wait = self.pacer.delay(rows[0].target.platform, rows[0].target.external_id)
        if wait <= self.policy.max_wait:
            return False
        for row in rows:
            self._release(
                row, self.clock() + timedelta(seconds=wait), "waiting for the channel's rate limit"
            )
            report.deferred += 1
        return True

    def _earlier_ids(self, row: _Claimed) -> dict[str, Any] | None:
        """The payload with the message ids of the posts it replies to or updates; None
        while a post to update has not been sent."""
        named = {f: str(row.payload[f]) for f in (THREAD_OF, UPDATE_OF) if f in row.payload}
        if not named:
            return row.payload
        self._record_sent()  # the earlier post may have gone out moments ago
        with unit_of_work(self.sessions) as session:
            rows = session.execute(
                select(Delivery.idempotency_key, Delivery.platform_message_id).where(
                    Delivery.idempotency_key.in_(list(named.values())),
                    Delivery.state == DeliveryState.SENT,
                )
            )
            sent = {key: message_id for key, message_id in rows}
        payload = dict(row.payload)
        for field_name, id_name in ((THREAD_OF, THREAD_ID), (UPDATE_OF, UPDATE_ID)):
            if sent.get(named.get(field_name, "")):
                payload[id_name] = sent[named[field_name]]
        if UPDATE_OF in named and UPDATE_ID not in payload:
            return None
        return payload

    def _send_one(self, row: _Claimed, report: SendReport) -> None:
        messenger = self.messengers[row.target.platform]
        payload = self._earlier_ids(row)
        if payload is None:
            # Retried with backoff; after max_attempts the secretariat is told.
            problem = TransientError("the post to update is not sent", maybe_posted=False)
            self._retry_later(row, problem, report)
            return
        if row.maybe_posted:
            since = row.created_at - self.policy.history_lookback
            try:
                found = messenger.find_posted(row.target, row.key, since=since)
            except SendError as problem:
                # Without the history we cannot rule out a duplicate: wait rather than guess.
                self._retry_later(row, problem, report)
                return
            if found is not None:
                self._mark_sent(row, found, already=True)
                report.found_already_posted += 1
                return
        wait = self.pacer.delay(row.target.platform, row.target.external_id)
        if wait > self.policy.max_wait:
            self._release(
                row, self.clock() + timedelta(seconds=wait), "waiting for the channel's rate limit"
            )
            report.deferred += 1
            return
        # The channel's own wait first (a post just before, to the same channel), then a
        # platform slot: reserved ahead, it would hold the other channels' posts back too.
        wait = self.pacer.channel_delay(row.target.platform, row.target.external_id)
        if wait > 0:
            self.sleep(wait)
        wait = self.pacer.reserve(row.target.platform, row.target.external_id)
        if wait > 0:
            self.sleep(wait)
        try:
            message_id = messenger.post(row.target, payload, key=row.key)
        except RateLimited as limited:
            self.pacer.hold(row.target.platform, row.target.external_id, limited.retry_after)
            self._release(
                row, self.clock() + timedelta(seconds=limited.retry_after), f"429: {limited}"
            )
            report.deferred += 1
            return
        except PermanentError as problem:
            self._fail(row, f"{problem}", attempts=row.attempts + 1)
            report.failed += 1
            return
        except TransientError as problem:
            self._retry_later(row, problem, report)
            return
        self._mark_sent(row, message_id, already=False)
        report.sent += 1

    # -- recording outcomes -----------------------------------------------------------------
    def _record(
        self,
        row: _Claimed,
        *,
        mine_only: bool = False,
        audit_verb: str | None = None,
        audit_after: dict[str, Any] | None = None,
        then: Callable[[Session], None] | None = None,
        **values: Any,
    ) -> None:
        """Write the row's new state, an audit event and `then`'s writes in one transaction.

        `mine_only` leaves a row alone that another worker has reclaimed meanwhile.
        """
        conditions = [Delivery.id == row.id]
        if mine_only:
            conditions.append(Delivery.claimed_by == self.worker_id)
        with self._held_lock:
            self._held.discard(row.id)
        with unit_of_work(self.sessions) as session:
            session.execute(
                update(Delivery)
                .where(*conditions)
                .values(claimed_by=None, **values)
                .execution_options(synchronize_session=False)
            )
            if audit_verb is not None:
                audit.record(
                    session,
                    actor=self.worker_id,
                    verb=audit_verb,
                    entity="delivery",
                    ref=row.key,
                    after={"channel": row.target.slug, **(audit_after or {})},
                )
            if then is not None:
                then(session)

    def _mark_sent(self, row: _Claimed, message_id: str, *, already: bool) -> None:
        """Queue the post to be recorded as sent, with its audit event.

        `send_due`'s own thread records the queued posts in batches (`_record_due`), all before
        it returns: one transaction per post cost more CPU than the post itself, and a posting
        thread that waited for the database (SQLite's writer lock, while a digest chunk is
        written) held up the posts behind it. Until it is recorded the row stays claimed (its
        claim renewed); if the worker dies first, the row is reclaimed past the lease as "maybe
        posted" and found by its key, not posted again.
        """
        with self._sent_lock:
            if not self._sent:
                self._oldest_unrecorded = time.monotonic()
            self._sent.append((row, message_id, already, self.clock()))

    def _record_due(self) -> None:
        """Record the queued posts if there are `record_batch` of them or the oldest has
        waited `record_seconds`."""
        with self._sent_lock:
            due = bool(self._sent) and (
                len(self._sent) >= self.record_batch
                or time.monotonic() - self._oldest_unrecorded >= self.record_seconds
            )
        if due:
            self._record_sent()

    def _record_sent(self) -> None:
        """Record every post queued by `_mark_sent` (one transaction), waiting for a thread
        that is recording already rather than writing beside it."""
        with self._recording:
            with self._sent_lock:
                batch, self._sent = self._sent, []
            if not batch:
                return  # recorded by the thread before
            with unit_of_work(self.sessions) as session:
                session.execute(
                    update(Delivery),
                    [
                        {
                            "id": r.id,
                            "claimed_by": None,
                            "state": DeliveryState.SENT,
                            "platform_message_id": message_id,
                            "sent_at": at,
                            "maybe_posted": False,
                            "last_error": (
                                "found in the channel after an uncertain attempt" if already else ""
                            ),
                        }
                        for r, message_id, already, at in batch
                    ],
                )
                audit.record_many(
                    session,
                    [
                        {
                            "actor": self.worker_id,
                            "verb": "post",
                            "entity": "delivery",
                            "entity_ref": r.key,
                            "before": None,
                            "after": {
                                "channel": r.target.slug,
                                "message_id": message_id,
                                "kind": r.kind,
                                "found": already,
                            },
                        }
                        for r, message_id, already, _ in batch
                    ],
                )
            # Only once recorded: until then the lease must keep being renewed.
            with self._held_lock:
                self._held.difference_update(r.id for r, *_ in batch)

    def _release(self, row: _Claimed, next_try: datetime, reason: str) -> None:
        self._record(
            row,
            mine_only=True,
            state=DeliveryState.PENDING,
            next_try_at=next_try,
            last_error=reason,
        )

    def _retry_later(self, row: _Claimed, problem: SendError, report: SendReport) -> None:
        attempts = row.attempts + 1
        maybe = row.maybe_posted or (isinstance(problem, TransientError) and problem.maybe_posted)
        if isinstance(problem, RateLimited):
            self._release(
                row, self.clock() + timedelta(seconds=problem.retry_after), f"429: {problem}"
            )
            report.deferred += 1
            return
        if attempts >= self.policy.max_attempts:
            self._fail(row, str(problem), attempts=attempts, maybe_posted=maybe)
            report.failed += 1
            return
        delay = self.policy.backoff(attempts, self.rng)
        if maybe:
            messenger = self.messengers.get(row.target.platform)
            delay = max(delay, self.policy.settle_for(messenger))
        self._record(
            row,
            mine_only=True,
            state=DeliveryState.PENDING,
            attempts=attempts,
            maybe_posted=maybe,
            next_try_at=self.clock() + timedelta(seconds=delay),
            last_error=str(problem)[:2000],
        )
        report.retrying += 1

    def _fail(
        self, row: _Claimed, reason: str, *, attempts: int, maybe_posted: bool = False
    ) -> None:
        def tell_secretariat(session: Session) -> None:
            if row.kind == NOTICE_KIND:
                log.error("failure notice %s could not be posted: %s", row.key, reason)
            else:
                notify_failure(
                    session, self.renderer, row.id, row.key, row.target, reason, attempts
                )

        # The notice is queued in the same transaction that marks the row failed.
        self._record(
            row,
            state=DeliveryState.FAILED,
            attempts=attempts,
            maybe_posted=maybe_posted,
            last_error=reason[:2000],
            audit_verb="fail",
            audit_after={"error": reason[:500], "attempts": attempts},
            then=tell_secretariat,
        )

    def _cancel(self, row: _Claimed, reason: str) -> None:
        self._record(
            row,
            state=DeliveryState.CANCELLED,
            last_error=reason,
            audit_verb="cancel",
            audit_after={"reason": reason},
        )

    # -- visibility at send time ------------------------------------------------------------
    def _recheck_visibility(self, rows: list[_Claimed], report: SendReport) -> list[_Claimed]:
        """Rows whose items this channel may still see; others are re-rendered or cancelled."""
        checked = [r for r in rows if any(r.payload.get("items", {}).values())]
        checked_ids = {r.id for r in checked}
        if not checked:
            return rows
        refs: dict[str, set[str]] = defaultdict(set)
        for row in checked:
            for kind, kind_refs in row.payload["items"].items():
                refs[kind].update(kind_refs)
        keep: list[_Claimed] = []
        with unit_of_work(self.sessions) as session:
            items = classified_items(session, refs)
            partners = [p for p in session.scalars(select(Partner.slug))]
            channels = {
                c.id: c
                for c in session.scalars(
                    select(Channel)
                    .where(Channel.id.in_({r.channel_id for r in checked}))
                    .execution_options(**{DIRECT_CHANNELS: True})
                )
            }
            audiences = {cid: audience_of_channel(c, partners) for cid, c in channels.items()}
            for row in rows:
                if row.id not in checked_ids or still_visible(
                    row.payload["items"], items, audiences[row.channel_id]
                ):
                    keep.append(row)
                    continue
                rebuilt = self._rebuild(session, row)
                if rebuilt is not None:
                    row.payload = rebuilt
                    keep.append(row)
        kept_ids = {r.id for r in keep}
        for row in rows:
            if row.id not in kept_ids:
                self._cancel(row, "an item in it may no longer be shown in this channel")
                report.cancelled += 1
        return keep

    def _rebuild(self, session: Session, row: _Claimed) -> dict[str, Any] | None:
        rebuilder = self.rebuilders.get(str(row.payload.get("rebuild", {}).get("kind", "")))
        if rebuilder is None:
            return None
        delivery = session.get(Delivery, row.id)
        if delivery is None:
            return None
        payload = rebuilder(session, delivery, self.renderer)
        if payload is not None:
            delivery.payload = payload
        return payload


# -- failure notices --------------------------------------------------------------------------
def notify_failure(
    session: Session,
    renderer: Renderer,
    delivery_id: int,
    key: str,
    target: Target,
    reason: str,
    attempts: int,
) -> None:
    """Tell the secretariat channel(s) a post failed, once per failed delivery."""
    secretariat = session.scalars(
        select(Channel)
        .where(Channel.secretariat.is_(True), Channel.slug != target.slug)
        .order_by(Channel.id)
    ).all()
    if not secretariat:
        log.error(
            "delivery %s to %s failed and there is no secretariat channel to tell", key, target.slug
        )
        return
    reply = Reply(
        "outbox/failed",
        {
            "key": key,
            "channel": target.name,
            "reason": reason[:300],
            "attempts": attempts,
            "delivery_id": delivery_id,
        },
    )
    for channel in secretariat:
        payload = render_payload(
            renderer, reply, Platform(channel.platform), channel.language.languages
        )
        enqueue_id(
            session,
            key=f"failed:{delivery_id}:{channel.slug}",
            channel=channel,
            kind=NOTICE_KIND,
            payload=payload,
        )


def retry_failed(
    session: Session, delivery_id: int, *, now: datetime | None = None
) -> Delivery | None:
    """Put a failed or cancelled delivery back in the queue (operator's `deliveries --retry`)."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.state not in (DeliveryState.FAILED, DeliveryState.CANCELLED):
        return None
    before = audit.snapshot(delivery, ("state", "attempts"))
    delivery.state = DeliveryState.PENDING
    delivery.attempts = 0
    delivery.next_try_at = now or CLOCK.now()
    delivery.claimed_by = None
    # A failed attempt may still have reached the channel: look before posting again.
    delivery.maybe_posted = True
    audit.record(
        session,
        actor="operator",
        verb="retry",
        entity="delivery",
        ref=delivery.idempotency_key,
        before=before,
        after=audit.snapshot(delivery, ("state", "attempts")),
    )
    return delivery
