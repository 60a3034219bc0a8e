"""SQLAlchemy 2 typed models of the collaboration: who, where, what was decided, what is due."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    inspect,
    select,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    mapped_column,
    relationship,
    with_loader_criteria,
)

from bot.clock import CLOCK
from bot.domain import (
    ActionStatus,
    ChannelLanguage,
    DeliveryState,
    Marking,
    Platform,
    QuestionState,
    Rag,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored as naive UTC, the same on SQLite and PostgreSQL; naive is refused."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a time zone first")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def _enum(enum_type: type[Any], name: str) -> Enum:
    return Enum(
        enum_type,
        name=name,
        native_enum=False,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with constraint names Alembic can rely on."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class MarkedMixin:
    """Columns every classified item carries; read only through `bot.visibility`."""

    marking: Mapped[Marking] = mapped_column(_enum(Marking, "marking"), default=Marking.OFFICIAL)
    exempt_paragraph: Mapped[int | None] = mapped_column(Integer, default=None)
    exempt_review_on: Mapped[date | None] = mapped_column(Date, default=None)
    restricted_to: Mapped[list[str]] = mapped_column(JSON, default=list)


board_members = Table(
    "board_members",
    Base.metadata,
    Column("board_id", ForeignKey("boards.id", ondelete="CASCADE"), primary_key=True),
    Column("member_id", ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
)


class Partner(Base):
    """A partner organisation, or the central SRS team (kind `central`)."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_cy: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="partner")


class Board(Base):
    """One of the collaboration's boards."""

    __tablename__ = "boards"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(8), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_cy: Mapped[str] = mapped_column(String(200))
    questions_open_days: Mapped[int] = mapped_column(Integer, default=14)
    questions_close_days: Mapped[int] = mapped_column(Integer, default=5)
    anonymous_questions: Mapped[str] = mapped_column(String(16), default="no")
    """`AnonymousQuestions`: whether askers may choose to be anonymous, and what is shown."""
    meeting_reminder_days: Mapped[int | None] = mapped_column(Integer, default=None)
    """Days before each meeting its reminder is posted; None uses the default, 0 turns it off."""

    members: Mapped[list[Member]] = relationship(secondary=board_members, back_populates="boards")


class Member(Base):
    """A person the bot knows, with roles, clearance, language and chat identities."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    clearance: Mapped[Marking] = mapped_column(
        _enum(Marking, "clearance"), default=Marking.OFFICIAL
    )
    exempt_access: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(8), default="en")
    slack_user_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    entra_object_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    partner: Mapped[Partner] = relationship()
    boards: Mapped[list[Board]] = relationship(secondary=board_members, back_populates="members")


class Channel(Base):
    """A chat channel the bot posts to, with the clearance of everyone who reads it."""

    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("platform", "external_id", name="platform_external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    platform: Mapped[Platform] = mapped_column(_enum(Platform, "platform"))
    external_id: Mapped[str] = mapped_column(String(255))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    board_id: Mapped[int | None] = mapped_column(ForeignKey("boards.id"))
    secretariat: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[ChannelLanguage] = mapped_column(
        _enum(ChannelLanguage, "channel_language"), default=ChannelLanguage.EN
    )
    clearance: Mapped[Marking] = mapped_column(
        _enum(Marking, "clearance"), default=Marking.OFFICIAL
    )
    exempt_access: Mapped[bool] = mapped_column(Boolean, default=False)
    digest_cron: Mapped[str | None] = mapped_column(String(100))
    digest_timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    skip_bank_holidays: Mapped[bool] = mapped_column(Boolean, default=False)
    post_empty_digest: Mapped[bool] = mapped_column(Boolean, default=False)
    due_soon_days: Mapped[int] = mapped_column(Integer, default=14)
    last_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """The scheduled time of the last digest run for this channel (posted or skipped as empty)."""
    digest_register_seq: Mapped[int | None] = mapped_column(Integer, default=None)
    """The digest watermark: decisions whose `RegisterEntry.seq` is above it are new here."""
    alerts: Mapped[list[str]] = mapped_column(JSON, default=list)
    """What the channel hears about as it happens (`AlertKind` values), besides its digest."""
    direct_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), default=None, unique=True, index=True
    )
    """Set on a member's direct-message channel (`bot.services.direct_messages`): such a row
    is hidden from every ORM query unless it asks with `DIRECT_CHANNELS` (see below)."""

    partner: Mapped[Partner | None] = relationship()
    board: Mapped[Board | None] = relationship()


class Meeting(Base):
    """A board meeting with its question window."""

    __tablename__ = "meetings"
    __table_args__ = (UniqueConstraint("board_id", "starts_at", name="board_starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    location: Mapped[str] = mapped_column(String(300), default="")
    location_cy: Mapped[str] = mapped_column(String(300), default="")
    """The place in Welsh; empty when it was given in English only."""
    link: Mapped[str] = mapped_column(String(1000), default="")
    questions_open: Mapped[datetime | None] = mapped_column(UTCDateTime())
    questions_close: Mapped[datetime | None] = mapped_column(UTCDateTime())
    source_uid: Mapped[str | None] = mapped_column(String(255), unique=True)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    """iCalendar SEQUENCE: raised whenever a time, place or question window changes."""

    board: Mapped[Board] = relationship()
    attendance: Mapped[list[Attendance]] = relationship(back_populates="meeting")


class Attendance(Base):
    """Whether a partner was represented at a meeting."""

    __tablename__ = "attendance"

    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="present")

    meeting: Mapped[Meeting] = relationship(back_populates="attendance")
    partner: Mapped[Partner] = relationship()


class Decision(MarkedMixin, Base):
    """A board decision in the register."""

    __tablename__ = "decisions"
    # Lists page from these in display order; migration 0007 adds the classification indexes
    # the withheld counts group by (their form differs between SQLite and PostgreSQL).
    __table_args__ = (
        Index("ix_decisions_newest", "decided_on", "ref"),
        Index("ix_decisions_board_newest", "board_id", "decided_on", "ref"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    board_id: Mapped[int] = mapped_column(ForeignKey("boards.id"))
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id"))
    decided_on: Mapped[date] = mapped_column(Date)
    title: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text, default="")
    title_cy: Mapped[str] = mapped_column(String(500), default="")
    """The title in Welsh; empty when the decision was recorded in English only."""
    summary_cy: Mapped[str] = mapped_column(Text, default="")
    partners: Mapped[list[str]] = mapped_column(JSON, default=list)
    link: Mapped[str] = mapped_column(String(1000), default="")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=CLOCK.now, index=True)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=CLOCK.now, onupdate=CLOCK.now
    )

    board: Mapped[Board] = relationship()
    meeting: Mapped[Meeting | None] = relationship()


class RegisterEntry(Base):
    """When the digest cycle first saw a committed decision: its place in the register's order.

    Digests announce decisions by `seq`, not by a timestamp, so one committed late (a long
    import) or backdated is announced exactly once. Kept apart from `decisions` so stamping
    never touches the decision row (its full-text triggers and `updated_at`).
    """

    __tablename__ = "register_entries"

    decision_id: Mapped[int] = mapped_column(
        ForeignKey("decisions.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, index=True)
    stamped_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=CLOCK.now)


class Action(MarkedMixin, Base):
    """A tactical-plan action."""

    __tablename__ = "actions"
    __table_args__ = (
        Index("ix_actions_owner_due", "owner_partner_id", "due_date"),
        Index("ix_actions_owner_status_due", "owner_partner_id", "status", "due_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    title_cy: Mapped[str] = mapped_column(String(500), default="")
    """The title in Welsh; empty when the action was written in English only (the update note
    stays as typed, in whichever language its author wrote it)."""
    owner_partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    owner: Mapped[str] = mapped_column(String(200), default="")
    due_date: Mapped[date | None] = mapped_column(Date, index=True)
    status: Mapped[ActionStatus] = mapped_column(
        _enum(ActionStatus, "action_status"), default=ActionStatus.NOT_STARTED
    )
    rag: Mapped[Rag | None] = mapped_column(_enum(Rag, "rag"))
    theme: Mapped[str] = mapped_column(String(200), default="")
    last_update: Mapped[str] = mapped_column(Text, default="")
    decision_refs: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Refs of the decisions this action comes from (the trail decision -> actions)."""
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=CLOCK.now, onupdate=CLOCK.now
    )

    owner_partner: Mapped[Partner] = relationship()

    def is_overdue(self, today: date) -> bool:
        """Due before today and neither done nor cancelled."""
        return self.due_date is not None and self.due_date < today and not self.status.is_closed


class Question(MarkedMixin, Base):
    """A joint-scrutiny question put to a board meeting."""

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(40), unique=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    theme: Mapped[str] = mapped_column(String(64), default="")
    asker_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    state: Mapped[QuestionState] = mapped_column(
        _enum(QuestionState, "question_state"), default=QuestionState.SUBMITTED
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    """The asker chose to be anonymous (where the board allows): see `questions.views`."""
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("questions.id"))
    carried_from_id: Mapped[int | None] = mapped_column(ForeignKey("questions.id"))
    linked_refs: Mapped[list[str]] = mapped_column(JSON, default=list)
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_by: Mapped[str] = mapped_column(String(200), default="")
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=CLOCK.now)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=CLOCK.now, onupdate=CLOCK.now
    )

    meeting: Mapped[Meeting] = relationship()
    asker: Mapped[Member] = relationship()
    partner: Mapped[Partner] = relationship()
    supports: Mapped[list[QuestionSupport]] = relationship(back_populates="question")


class QuestionSupport(Base):
    """A member (and so their partner) supporting a question."""

    __tablename__ = "question_supports"
    __table_args__ = (UniqueConstraint("question_id", "member_id", name="question_member"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=CLOCK.now)

    question: Mapped[Question] = relationship(back_populates="supports")


class Reminder(Base):
    """A one-off or repeating reminder posted to a channel."""

    __tablename__ = "reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cron: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    skip_bank_holidays: Mapped[bool] = mapped_column(Boolean, default=False)
    """A repeating reminder does not post on England-and-Wales bank holidays."""
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=CLOCK.now)

    channel: Mapped[Channel] = relationship()


class Delivery(Base):
    """An outbox row: one post to one channel, sent at most once by its idempotency key."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_state_next", "state", "next_try_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[DeliveryState] = mapped_column(
        _enum(DeliveryState, "delivery_state"), default=DeliveryState.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=CLOCK.now)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    platform_message_id: Mapped[str | None] = mapped_column(String(255))
    maybe_posted: Mapped[bool] = mapped_column(Boolean, default=False)
    """A previous attempt may have reached the platform: look in the channel before posting."""
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=CLOCK.now)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    channel: Mapped[Channel] = relationship()


class AuditEvent(Base):
    """Who changed or posted what, when, with the state before and after."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=CLOCK.now, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    verb: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(32))
    entity_ref: Mapped[str] = mapped_column(String(255))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CalendarFeed(Base):
    """A secret calendar URL of one board's or one member's meetings; revoked feeds answer 404."""

    __tablename__ = "calendar_feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the secret in the URL: a leaked database does not leak working URLs."""
    board_id: Mapped[int | None] = mapped_column(ForeignKey("boards.id", ondelete="CASCADE"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=CLOCK.now)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    board: Mapped[Board | None] = relationship()
    member: Mapped[Member | None] = relationship()


class ProcessedEvent(Base):
    """Platform event ids already handled, so a retried delivery is never processed twice."""

    __tablename__ = "processed_events"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=CLOCK.now, index=True)


MEETING_CALENDAR_FIELDS = (
    "starts_at",
    "ends_at",
    "location",
    "link",
    "questions_open",
    "questions_close",
)
"""Meeting columns a calendar subscriber sees: changing one raises the meeting's SEQUENCE."""


@event.listens_for(Meeting, "before_update")
def _raise_sequence(_mapper: Any, _connection: Any, meeting: Meeting) -> None:
    state = inspect(meeting)
    if any(state.attrs[name].history.has_changes() for name in MEETING_CALENDAR_FIELDS):
        meeting.sequence = (meeting.sequence or 0) + 1


class PostedMessage(Base):
    """A message the bot posted, as the platform told us (Slack's `message_metadata_posted`
    event): the outbox looks here for a delivery's key before posting it again."""

    __tablename__ = "posted_messages"
    __table_args__ = (
        UniqueConstraint("platform", "channel", "message_id", name="platform_channel_message"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(255))
    message_id: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(255), index=True)
    """The idempotency key of the delivery the message carried."""
    files: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Names of the files the message announced (uploaded into its thread after it)."""
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    thread_id: Mapped[str | None] = mapped_column(String(255))
    """The id of the first post of the thread the message replied in (None: it began one)."""


class MemberWelcome(Base):
    """A member welcomed on a platform (the first time they opened the bot's messages), so
    the welcome is sent once."""

    __tablename__ = "member_welcomes"

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    welcomed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RegisterVersion(Base):
    """One row whose number moves on with every committed change to a table answers read
    (database triggers, migration 0015): the key read-only answers are cached under."""

    __tablename__ = "register_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class PrivateAnswer(Base):
    """A command's answer that only its asker may see, stored so it can be shown again without
    running the command again (a Teams channel's private answer to a command that changes
    something): found by its random token, shown only to the asker it names, and pruned
    after a while (`bot.private_answers`)."""

    __tablename__ = "private_answers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """A random, unguessable token (never a sequence): the card's refresh carries it."""
    platform: Mapped[str] = mapped_column(String(16))
    conversation: Mapped[str] = mapped_column(String(255))
    """Where the answer was asked for; the token is honoured there alone."""
    user_id: Mapped[str] = mapped_column(String(255))
    """The asker's platform id (Teams: their `from.id`)."""
    directory_id: Mapped[str] = mapped_column(String(255))
    """The asker's directory id (Teams: their Entra object id); both ids must match."""
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The asker's answer, as the platform shows it."""
    base: Mapped[dict[str, Any]] = mapped_column(JSON)
    """What everyone else is shown: who asked what, never the answer."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


DIRECT_CHANNELS = "direct_channels"
"""Execution option: `.execution_options(direct_channels=True)` lets a query see members'
direct-message channels, which every other query never sees."""


@event.listens_for(Session, "do_orm_execute")
def _hide_direct_channels(state: ORMExecuteState) -> None:
    # Channel selection (announcements, packs, answers, digests, reminders, the console's
    # `:channel`, the collaboration file) must never pick a member's direct channel; one
    # criterion here covers every query, present and future, instead of a filter in each.
    if (
        state.is_select
        and not state.is_column_load
        and not state.is_relationship_load
        and not state.execution_options.get(DIRECT_CHANNELS, False)
    ):
        state.statement = state.statement.options(
            with_loader_criteria(Channel, Channel.direct_member_id.is_(None), include_aliases=True)
        )


def direct_channel_fields(member: Member) -> dict[str, Any] | None:
    """Where and for whom a member's direct messages go, or None when the bot cannot reach
    them alone: Slack by their user id (`chat.postMessage` to a user id opens the app's
    direct message), the console for a member with no chat identity at all. A member known
    only to Teams has none yet (personal chats need the Teams bot)."""
    if member.slack_user_id:
        platform, external_id = Platform.SLACK, member.slack_user_id
    elif member.entra_object_id is None:
        platform, external_id = Platform.CONSOLE, f"dm:{member.slug}"
    else:
        return None
    partner_id = member.partner.id if member.partner is not None else member.partner_id
    # The channel's audience is exactly the member's: their partner, clearance and exemption.
    return {
        "slug": f"dm:{member.id}",
        "name": member.name,
        "platform": platform,
        "external_id": external_id,
        "partner_id": partner_id,
        "board_id": None,
        "secretariat": False,
        "language": ChannelLanguage.CY if member.language == "cy" else ChannelLanguage.EN,
        "clearance": Marking(member.clearance),
        "exempt_access": bool(member.exempt_access) and bool(member.active),
        "digest_cron": None,
    }


_DIRECT_FIELDS = (
    "clearance",
    "exempt_access",
    "partner_id",
    "partner",
    "language",
    "active",
    "slack_user_id",
    "entra_object_id",
    "name",
    "slug",
)


@event.listens_for(Session, "before_flush")
def _keep_direct_channels_in_step(session: Session, _context: Any, _instances: Any) -> None:
    # A member's direct channel must never be wider than the member: a lowered clearance or a
    # moved partner reaches the channel row in the same flush, before anything is sent to it.
    for member in [row for row in session.dirty if isinstance(row, Member)]:
        state = inspect(member)
        if not any(state.attrs[name].history.has_changes() for name in _DIRECT_FIELDS):
            continue
        with session.no_autoflush:
            channel = session.scalar(
                select(Channel)
                .where(Channel.direct_member_id == member.id)
                .execution_options(**{DIRECT_CHANNELS: True})
            )
        if channel is None:
            continue
        fields = direct_channel_fields(member)
        if fields is None:
            # No way to reach them alone any more: the channel can carry nothing they may not see.
            channel.clearance = Marking.OFFICIAL
            channel.exempt_access = False
            continue
        for name, value in fields.items():
            setattr(channel, name, value)
