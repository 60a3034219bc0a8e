"""One set of rules for a send to the Bot Connector that failed, for the outbox's posts and the
bot's direct replies alike: `classify` names the kind of failure (429 → RateLimited with the
connector's Retry-After; 5xx, timeouts and dropped connections → transient; other 4xx →
permanent), and `send_direct` applies it to a reply sent while the member waits (a message's
answer, a dialog's confirmation, the welcome), which has no outbox to try again later.

**Double posting.** The connector takes no idempotency key and cannot be searched, so an
earlier attempt can only be known by the activity id in its answer. The outbox's way of
finding an earlier post (the id recorded under its delivery key, `bot.posted_messages`) cannot
help when the answer was lost, which is the only case where a retry could post twice: nothing
was recorded. So the rule is by failure:

- refused before sending (ConnectError: no connection was made) or throttled (429, which the
  connector answers without posting): nothing was posted, and a retry is safe;
- 5xx, a timeout, or a connection dropped after the request was written (ReadError,
  RemoteProtocolError): `maybe_posted`. Most of these never reached the connector (an idle
  connection closed under the client, a front end's 502/503), but the connector may have
  taken the activity and lost the answer. A direct reply is retried anyway: it answers a
  member who is waiting, and a lost answer leaves them with nothing and no sign, where the
  rare duplicate is a second copy of the same read-only card (its buttons run their
  interactions again, each checking the state afresh). The outbox accepts the same window
  (docs/teams.md, "Exactly once"). Each retry is logged, saying whether the first may have
  arrived, so a duplicate can be traced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from bot.outbox import PermanentError, RateLimited, SendError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 3
"""A direct reply is sent at most this many times: once, then again on a transient failure."""
BACKOFF = 0.25
"""Seconds before a direct reply's first retry after a transient failure, doubled each time."""
MAX_RETRY_AFTER = 5.0
"""The longest 429 Retry-After a direct reply waits out; a longer one gives up at once (a
dialog's confirmation is sent inside Teams' invoke, which is given about 15 seconds)."""


def _retry_after(response: httpx.Response) -> float:
    try:
        return float(response.headers.get("Retry-After", "1"))
    except ValueError:
        return 1.0


def classify(error: Exception) -> SendError:
    """The kind of failure of an error from the Teams SDK's API client (others are raised)."""
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        if status == 429:
            return RateLimited(_retry_after(error.response), "Bot Connector rate limit (429)")
        if status >= 500:
            return TransientError(f"Bot Connector error {status}", maybe_posted=True)
        return PermanentError(f"Bot Connector refused the post ({status})")
    if isinstance(error, httpx.ConnectError):
        return TransientError(f"Bot Connector unreachable: {error}", maybe_posted=False)
    if isinstance(error, httpx.TransportError | TimeoutError):
        detail = str(error) or "no answer"
        return TransientError(f"{type(error).__name__}: {detail}", maybe_posted=True)
    raise error


async def send_direct(
    send: Callable[[], Awaitable[T]],
    what: str,
    *,
    attempts: int = ATTEMPTS,
    backoff: float = BACKOFF,
    max_retry_after: float = MAX_RETRY_AFTER,
) -> T:
    """`send()`'s result, trying again after a transient failure (with backoff) or a 429 (after
    its Retry-After, up to `max_retry_after`), never after a permanent one; the SendError of
    the last failure when it gives up, logged with `what` was not sent."""
    attempt = 1
    while True:
        try:
            return await send()
        except (httpx.HTTPError, TimeoutError) as error:
            failure = classify(error)
            if isinstance(failure, RateLimited):
                wait = failure.retry_after
            else:
                wait = backoff * 2 ** (attempt - 1)
            if isinstance(failure, PermanentError) or attempt >= attempts or wait > max_retry_after:
                log.error(
                    "Teams: %s was not sent, giving up after %d attempt(s): %s",
                    what,
                    attempt,
                    failure,
                )
                raise failure from error
            maybe = isinstance(failure, TransientError) and failure.maybe_posted
            log.warning(
                "Teams: sending %s failed (%s%s); trying again in %gs",
                what,
                failure,
                ", it may have arrived" if maybe else "",
                wait,
            )
            await asyncio.sleep(wait)
            attempt += 1
