"""The bot's runtime without any handler: settings, clock, database sessions and renderer.

The worker, the register and every platform need these; only chat dispatch needs the
handlers as well (`bot.app.ScrutinyApp` adds them), so a worker never loads a chat handler.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Engine, Select, String, bindparam, literal, or_, select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from bot.clock import CLOCK, Clock
from bot.db import make_engine, make_session_factory
from bot.domain import Platform
from bot.models import Channel, Member, Partner
from bot.outbox import Doorbell
from bot.permalinks import PostLinks, RegisterLinks
from bot.register_version import versioned
from bot.rendering import Renderer
from bot.settings import Settings


def renderer_for(settings: Settings) -> Renderer:
    """The renderer the settings describe: time zone, Teams bot name, register permalinks."""
    links = settings.chat_links_base
    return Renderer(
        tz=settings.timezone,
        teams_bot_name=settings.teams_bot_name,
        links=RegisterLinks(links) if links else None,
        post_links=PostLinks(settings.slack_workspace_url, settings.teams_tenant_id),
    )


# A request's member and channel are looked up on every command: their statements are built
# once, not per request (building one costs more than SQLite takes to run it). The partner
# comes in the same statement: every request's audience reads its slug.
_MEMBER_BY_ID = {
    platform: select(Member)
    .options(joinedload(Member.partner))
    .where(column == bindparam("user_id", type_=String), Member.active.is_(True))
    for platform, column in (
        (Platform.SLACK, Member.slack_user_id),
        (Platform.TEAMS, Member.entra_object_id),
        (Platform.CONSOLE, Member.slug),
    )
}
_CHANNEL_ID = bindparam("channel_id", type_=String)


def _channel_by_id(
    platform: ColumnElement[Platform], named: ColumnElement[bool]
) -> Select[Channel]:
    return (
        select(Channel)
        .options(joinedload(Channel.partner))
        .where(Channel.platform == platform, named)
        .order_by(Channel.external_id != _CHANNEL_ID, Channel.id)
        .limit(1)
    )


_CHANNEL_BY_ID = _channel_by_id(
    bindparam("platform", type_=Channel.platform.type), Channel.external_id == _CHANNEL_ID
)
# A Teams channel is stored as "<team id>/<thread id>"; Teams' activities name the thread.
_TEAMS_CHANNEL_BY_ID = _channel_by_id(
    literal(Platform.TEAMS, Channel.platform.type),
    or_(
        Channel.external_id == _CHANNEL_ID,
        Channel.external_id.like(bindparam("suffix", type_=String), escape="/"),
    ),
)


class Runtime:
    """Settings, the program's clock, a session factory and the renderer."""

    def __init__(
        self, settings: Settings, engine: Engine | None = None, clock: Clock = CLOCK
    ) -> None:
        self.settings = settings
        self.clock = clock
        """Where every "now" of this runtime comes from (the program's one clock unless a
        test builds one on a clock of its own)."""
        self.engine = engine or make_engine(settings.database_url)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.renderer = renderer_for(settings)
        self.outbox_bell = Doorbell()
        """Rung when deliveries are committed, so this process's sender starts on them."""

    # -- lookups shared by platforms ------------------------------------------------------
    @staticmethod
    def find_member(session: Session, platform: Platform, user_id: str) -> Member | None:
        """The active member behind a platform user id (console: the member's slug)."""
        return session.scalar(_MEMBER_BY_ID[platform], {"user_id": user_id})

    @staticmethod
    def find_channel(session: Session, platform: Platform, channel_id: str) -> Channel | None:
        """The registered channel a request names. A Teams channel is stored as "<team
        id>/<thread id>" (posting to it needs the team) while Teams' activities name the
        thread id alone, so for Teams a stored id ending in "/<thread id>" matches too."""
        if platform is Platform.TEAMS:
            # The suffix as a LIKE pattern, its wildcards escaped ("/" escapes, as SQLAlchemy's
            # autoescape does): a "%" in an id is no wildcard.
            escaped = "".join("/" + c if c in "%_/" else c for c in channel_id)
            values = {"channel_id": channel_id, "suffix": "%//" + escaped}
            return session.scalar(_TEAMS_CHANNEL_BY_ID, values)
        return session.scalar(_CHANNEL_BY_ID, {"platform": platform, "channel_id": channel_id})

    @staticmethod
    def partner_slugs(session: Session) -> list[str]:
        """Every organisation's slug: the readers of a channel shared by all of them."""
        slugs = versioned(
            session, "partner slugs", lambda: list(session.scalars(select(Partner.slug)))
        )
        return list(slugs)

    @staticmethod
    def secretariat_channel_name(session: Session, platform: Platform) -> str:
        """The secretariat's channel on this platform, for 'ask the secretariat' messages."""
        channel = session.scalar(
            select(Channel)
            .where(Channel.secretariat.is_(True))
            .order_by(Channel.platform != platform)
        )
        return channel.name if channel else "#srs-secretariat"
