"""What Slack sends the bot, checked before anything trusts it.

`POST /slack/events` takes a request in three steps, and stops at the first that fails:
1. the signature (`signature_problem`): `X-Slack-Request-Timestamp` is a whole number of
   seconds within five minutes of now, and `X-Slack-Signature` is `v0=` and the HMAC-SHA256
   of `v0:{timestamp}:{body}` keyed with the signing secret, compared in constant time
   (refused: 401);
2. the body (`decode_body`): JSON, or a form whose `payload` field holds JSON, decoding to an
   object (refused: 400);
3. the shape (`parse_inbound`): one of the kinds of request the bot handles, with exactly the
   fields its listeners read, each of the right type (refused: 400).
Bolt is handed only what passed, re-encoded from the shape, so neither Bolt nor a listener
ever sees a field that was not checked. The listeners parse their body with the same shapes,
which covers Socket Mode too (its requests never pass the HTTP endpoint).

A new listener brings its shape: an event's shape subclasses `SlackEvent` and is registered
with its listener in `SlackPlatform` (the endpoint refuses events whose shape does not fit).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar
from urllib.parse import parse_qsl

from pydantic import Field, StringConstraints

from bot.platforms.inbound import Shape, ShapeError, load_json

SIGNATURE_MAX_AGE = 5 * 60
"""Seconds a request's timestamp may differ from now (Slack's own rule)."""
MAX_BODY_BYTES = 1024 * 1024
"""Largest request body read. Slack's biggest (a submitted form echoing its view) stay far below."""
LATEST_STAMP = 253_402_300_799
"""31 December 9999, the last second a date-time picker can name."""

Id = Annotated[str, StringConstraints(min_length=1, max_length=255)]
"""A user, channel or view id (Slack's are a dozen characters or so)."""
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=4096)]
"""A response_url: where Slack takes a command's or a button's reply."""
_E = TypeVar("_E", bound="SlackEvent")


# -- 1. the signature ---------------------------------------------------------------------------
def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Slack-Signature` Slack sends for `body` at `timestamp`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signature_problem(
    secret: str, body: bytes, timestamp: str | None, signature: str | None, now: datetime
) -> str | None:
    """Why a request is not Slack's, or None when its signature and timestamp hold."""
    if not timestamp or not signature:
        return "unsigned"
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return "timestamp is not a whole number of seconds"
    if abs(now.timestamp() - int(timestamp)) > SIGNATURE_MAX_AGE:
        return "timestamp more than five minutes from now"
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return "signature does not match"
    return None


# -- 2. the body ----------------------------------------------------------------------------------
def _kind(value: Any) -> str:
    names = {list: "a list", str: "a string", type(None): "null", bool: "true or false"}
    return names.get(type(value), "a number")


def decode_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The request body as an object: JSON (events), or a form (commands) whose `payload` field
    holds JSON (interactions); ShapeError for anything else."""
    media = (content_type or "").split(";")[0].strip().lower()
    data: Any
    if media == "application/json":
        data = load_json(body)
        what = "body"
    elif media == "application/x-www-form-urlencoded":
        try:
            fields = dict(parse_qsl(body.decode(), keep_blank_values=True, errors="strict"))
        except UnicodeError as problem:
            raise ShapeError("body: form that is not valid UTF-8") from problem
        if "payload" in fields:
            data, what = load_json(fields["payload"], "payload"), "payload"
        else:
            data, what = fields, "body"
    else:
        raise ShapeError(
            f"Content-Type {media or '(none)'}: Slack sends application/json or "
            "application/x-www-form-urlencoded"
        )
    if not isinstance(data, dict):
        raise ShapeError(f"{what}: expected an object, got {_kind(data)}")
    return data


# -- 3. the shapes --------------------------------------------------------------------------------
class Ref(Shape):
    """`{"id": ...}`: how interactions name the user, channel or view."""

    id: Id


class Option(Shape):
    """A chosen option of a select menu, checkboxes or radio buttons."""

    value: str = ""


class Element(Shape):
    """An interactive element's state: a button pressed, or a form field as submitted."""

    type: str | None = None
    value: str | None = None
    selected_option: Option | None = None
    selected_options: list[Option] | None = None
    selected_date: str | None = None
    selected_date_time: Annotated[int, Field(ge=0, le=LATEST_STAMP)] | None = None

    def chosen(self) -> str:
        """What the element holds, as text (a date-time picker's as ISO 8601 in UTC)."""
        given = self.model_fields_set
        if "selected_option" in given:
            return self.selected_option.value if self.selected_option else ""
        if "selected_options" in given:
            return ",".join(option.value for option in self.selected_options or [])
        if "selected_date" in given:
            return self.selected_date or ""
        if "selected_date_time" in given:
            stamp = self.selected_date_time
            return datetime.fromtimestamp(stamp, UTC).isoformat() if stamp else ""
        return self.value or ""


class Action(Element):
    """One action of a `block_actions` request (Slack sends one at a time)."""

    action_id: str
    block_id: str | None = None
    url: str | None = None


class Container(Shape):
    """Where a block action happened."""

    type: str | None = None
    is_ephemeral: bool = False


class Block(Shape):
    """A block of a submitted view: its type and id are all the bot reads back."""

    type: str | None = None
    block_id: str | None = None


class ViewState(Shape):
    """A submitted view's fields: {block id: {action id: element}}."""

    values: dict[str, dict[str, Element]] = Field(default_factory=dict)


class View(Shape):
    """A modal as submitted or closed."""

    callback_id: str
    type: str
    id: str | None = None
    private_metadata: str = ""
    blocks: list[Block] = Field(default_factory=list)
    state: ViewState | None = None

    def form_values(self) -> dict[str, str]:
        """The submitted fields as {field: text}; the block id names the field."""
        values: dict[str, str] = {}
        for block_id, elements in (self.state.values if self.state else {}).items():
            for element in elements.values():
                values[block_id] = element.chosen()
        return values

    def input_block_ids(self) -> list[str]:
        """Ids of the view's input blocks, in order (field errors are keyed by them)."""
        return [b.block_id for b in self.blocks if b.type == "input" and b.block_id is not None]


class ViewMetadata(Shape):
    """What the bot keeps in a modal's private_metadata: where the form was opened, and the
    handler's own data."""

    channel: str | None = None
    direct: bool | None = None
    data: str = ""

    @classmethod
    def of(cls, view: View) -> ViewMetadata:
        """The view's metadata; a view the bot did not wrap (or cannot read) has none."""
        try:
            return cls.parse(load_json(view.private_metadata or "{}"), "view.private_metadata")
        except ShapeError:
            return cls()


class SlashCommand(Shape):
    """`/scrutiny ...` (a form)."""

    command: str
    user_id: Id
    text: str = ""
    channel_id: str | None = None
    channel_name: str | None = None
    response_url: Url | None = None
    trigger_id: str | None = None


class SlackEvent(Shape):
    """Base of the Events API event shapes; each listener's event subclasses it."""

    type: str


class MentionEvent(SlackEvent):
    """`app_mention`: someone @mentioned the bot in a channel."""

    user: str = ""
    channel: str | None = None
    channel_type: str | None = None
    text: str = ""
    ts: str | None = None
    thread_ts: str | None = None
    bot_id: str | None = None


class MessageEvent(MentionEvent):
    """`message`: a message in a conversation the bot is in (it answers direct messages)."""

    subtype: str | None = None


class HomeOpenedEvent(SlackEvent):
    """`app_home_opened`: a member opened the bot's App Home (tab `home` or `messages`)."""

    user: str = ""
    tab: str = "home"
    channel: str | None = None


class MetadataPostedEvent(SlackEvent):
    """`message_metadata_posted`: a message carrying metadata was posted (ours, by the outbox,
    when `app_id` is this app's). Its fields are checked by `bot.platforms.slack.posted_delivery`,
    which ignores (with 200, so Slack does not retry) anything that is not one of our posts."""

    app_id: Any = None
    channel_id: Any = None
    message_ts: Any = None
    metadata: Any = None


class Authorization(Shape):
    """Who an event was delivered for: with a bot token, the bot user (how a group DM's
    message is known to mention the bot)."""

    user_id: str | None = None
    is_bot: bool = False


class EventCallback(Shape, Generic[_E]):
    """An Events API delivery: its id (a retry carries the same) and the event."""

    type: Literal["event_callback"]
    event: _E
    event_id: str | None = None
    api_app_id: str | None = None
    authorizations: list[Authorization] = Field(default_factory=list)

    @property
    def bot_user_id(self) -> str | None:
        """The bot's own user id, when the delivery names it."""
        return next((a.user_id for a in self.authorizations if a.is_bot and a.user_id), None)


class BlockActions(Shape):
    """A button pressed or a menu chosen in a message, a modal or the App Home."""

    type: Literal["block_actions"]
    user: Ref
    actions: Annotated[list[Action], Field(min_length=1)]
    channel: Ref | None = None
    container: Container | None = None
    view: Ref | None = None
    response_url: Url | None = None
    trigger_id: str | None = None


class ViewSubmission(Shape):
    """A modal submitted."""

    type: Literal["view_submission"]
    user: Ref
    view: View


class ViewClosed(Shape):
    """A modal closed without submitting."""

    type: Literal["view_closed"]
    user: Ref
    view: View


class ShortcutMessage(Shape):
    """The message a message shortcut was used on."""

    text: str = ""
    ts: str | None = None


class MessageShortcut(Shape):
    """A message shortcut ("Ask as a scrutiny question" on a message)."""

    type: Literal["message_action"]
    callback_id: str
    user: Ref
    channel: Ref | None = None
    message: ShortcutMessage | None = None
    response_url: Url | None = None
    trigger_id: str | None = None


class GlobalShortcut(Shape):
    """A global shortcut ("Ask a scrutiny question" from the shortcuts menu, anywhere)."""

    type: Literal["shortcut"]
    callback_id: str
    user: Ref
    trigger_id: str | None = None


class UrlVerification(Shape):
    """The challenge Slack sends when the request URL is set."""

    type: Literal["url_verification"]
    challenge: str


class SslCheck(Shape):
    """Slack checking the TLS certificate of a slash command's URL."""

    ssl_check: str


INTERACTIONS: dict[str, type[Shape]] = {
    "block_actions": BlockActions,
    "view_submission": ViewSubmission,
    "view_closed": ViewClosed,
    "message_action": MessageShortcut,
    "shortcut": GlobalShortcut,
}
IGNORED_TYPES = ("app_rate_limited",)
"""Well-formed deliveries with nothing to do (Slack telling us it dropped events)."""


def parse_inbound(data: dict[str, Any], events: Mapping[str, type[SlackEvent]]) -> Shape | None:
    """The request as its shape, None for one the bot has nothing to do with (an event it does
    not listen for), or ShapeError. `events` maps each event type listened for to its shape."""
    if "ssl_check" in data:
        return SslCheck.parse(data)
    if "command" in data:
        return SlashCommand.parse(data)
    kind = data.get("type")
    if kind == "url_verification":
        return UrlVerification.parse(data)
    if kind == "event_callback":
        event = data.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise ShapeError("body.event: expected an object with a type")
        shape = events.get(event["type"])
        return None if shape is None else EventCallback[shape].parse(data)  # type: ignore[valid-type]
    if kind in IGNORED_TYPES:
        return None
    if isinstance(kind, str) and kind in INTERACTIONS:
        return INTERACTIONS[kind].parse(data, "payload")
    shown = repr(kind)[:40] if isinstance(kind, str) else _kind(kind)
    raise ShapeError(f"type: {shown} is not a request the bot handles")
