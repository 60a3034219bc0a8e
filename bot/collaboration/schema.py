"""The collaboration file's schema: its field types (each with its own message and hint) and
the pydantic models of every section."""

from __future__ import annotations

import re
import uuid
import zoneinfo
from collections.abc import Callable
from functools import lru_cache
from typing import Annotated, Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    StrictStr,
)
from pydantic_core import PydanticCustomError

from bot.collaboration.problems import KeyPath, did_you_mean, hints, quoted
from bot.domain import AlertKind, AnonymousQuestions, ChannelLanguage, Marking, Platform, Role
from bot.i18n import N_, _, ngettext
from bot.schedule_time import ScheduleError, parse_cron

# --- field types ----------------------------------------------------------------------------


def _invalid(message: str, hint: str) -> PydanticCustomError:
    # Message and hint travel in the context, so braces in user input are never re-formatted.
    return PydanticCustomError("config", "{message}", {"message": message, "hint": hint})


def _matching(pattern: str, message: str, hint: str) -> AfterValidator:
    """A check that the whole text matches `pattern`; `message` and `hint` are N_-marked."""
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise _invalid(_(message).format(value=quoted(value)), _(hint))
        return value

    return AfterValidator(check)


def _text(limit: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        value = value.strip()
        if not value:
            raise _invalid(
                _("must not be empty"), _("write a value, or leave the key out if optional")
            )
        if len(value) > limit:
            raise _invalid(
                _("is {length} characters long; at most {limit} fit").format(
                    length=len(value), limit=limit
                ),
                _("shorten it"),
            )
        return value

    return check


def _entra_object_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise _invalid(
            _("{value} is not a Microsoft Entra object id").format(value=quoted(value)),
            _("copy the Object ID from Entra ID, e.g. 3f2b6c1e-8a4d-4b7e-9c21-5d0e7a9b1c01"),
        ) from None


@lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise _invalid(
            _("unknown time zone {value}").format(value=quoted(value)),
            hints(
                _("use an IANA time zone name such as Europe/London"),
                did_you_mean(value, _zone_names()),
            ),
        ) from None
    return value


def _cron(value: str) -> str:
    example = _('e.g. "0 9 * * mon" for Mondays at 9am (fields: minute hour day month weekday)')
    fields = value.split()
    # The scheduler reads weekday numbers crontab-style (0 = Sunday), APScheduler from Monday = 0:
    # only day names mean the same day everywhere.
    if len(fields) == 5 and re.search(r"\d", re.sub(r"/\d+", "", fields[4])):
        raise _invalid(
            _("day of week {value} is a number, which tools read differently").format(
                value=quoted(fields[4])
            ),
            _("name the days instead: mon, tue, wed, thu, fri, sat, sun (or ranges like mon-fri)"),
        )
    try:
        parse_cron(value)
    except ScheduleError as exc:
        raise _invalid(exc.translate(None), example) from None
    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except (ValueError, TypeError, KeyError) as exc:
        raise _invalid(
            _("bad cron expression {value}: {reason}").format(value=quoted(value), reason=exc),
            example,
        ) from None
    return value


Slug = Annotated[
    StrictStr,
    _matching(
        r"(?=.{1,64}\Z)[a-z0-9]+(?:-[a-z0-9]+)*",
        N_("{value} is not a valid slug"),
        N_("use lowercase letters, digits and single hyphens (at most 64), e.g. torfaen"),
    ),
]
Name = Annotated[StrictStr, AfterValidator(_text(200))]
ExternalId = Annotated[StrictStr, AfterValidator(_text(255))]
Prefix = Annotated[
    StrictStr,
    _matching(
        r"[A-Z]{2,4}",
        N_("{value} is not a valid board prefix"),
        N_("use 2 to 4 capital letters, e.g. SB; decision refs start with it (SB-2026-014)"),
    ),
]
SlackUserId = Annotated[
    StrictStr,
    _matching(
        r"[UW][A-Z0-9]{6,20}",
        N_("{value} is not a Slack user id"),
        N_("copy the member ID from the person's Slack profile, e.g. U0123ABCD"),
    ),
]
EntraObjectId = Annotated[StrictStr, AfterValidator(_entra_object_id)]
TimeZoneName = Annotated[StrictStr, AfterValidator(_timezone)]
Cron = Annotated[StrictStr, AfterValidator(_text(100)), AfterValidator(_cron)]


def _canonical_roles(roles: list[Role]) -> list[Role]:
    return [role for role in Role if role in roles]


# --- the schema -----------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollaborationInfo(_Section):
    """The collaboration's own names and wall-clock time zone."""

    name: Name
    name_cy: Name
    timezone: TimeZoneName = "Europe/London"


class PartnerConfig(_Section):
    """A partner organisation, or the central team (kind `central`)."""

    slug: Slug
    name: Name
    name_cy: Name
    kind: Literal["partner", "central"] = "partner"


class QuestionWindowConfig(_Section):
    """When the question window of a meeting opens and closes, in days before it."""

    open_days_before: StrictInt = Field(default=14, ge=1, le=365)
    close_days_before: StrictInt = Field(default=5, ge=0, le=365)


class BoardConfig(_Section):
    """A board, its decision-ref prefix and its members."""

    slug: Slug
    prefix: Prefix
    name: Name
    name_cy: Name
    questions: QuestionWindowConfig = Field(default_factory=QuestionWindowConfig)
    members: list[Slug] = Field(default_factory=list)
    anonymous_questions: AnonymousQuestions = AnonymousQuestions.NO
    """`partner` or `hidden`: askers may choose to be anonymous (`ask anon ...`)."""


class MemberConfig(_Section):
    """A person the bot knows."""

    slug: Slug
    name: Name
    partner: Slug
    roles: Annotated[list[Role], AfterValidator(_canonical_roles)] = Field(min_length=1)
    clearance: Marking = Marking.OFFICIAL
    exempt_access: StrictBool = False
    language: Literal["en", "cy"] = "en"
    slack_user_id: SlackUserId | None = None
    entra_object_id: EntraObjectId | None = None


class DigestConfig(_Section):
    """A channel's digest schedule; the time zone defaults to the collaboration's."""

    cron: Cron
    timezone: TimeZoneName | None = None
    skip_bank_holidays: StrictBool = True
    post_when_empty: StrictBool = False
    due_soon_days: StrictInt = Field(default=14, ge=1, le=365)


class ChannelConfig(_Section):
    """A channel the bot posts to, with the clearance of everyone who reads it."""

    slug: Slug
    name: Name
    platform: Platform
    external_id: ExternalId
    webhook_url: object = None
    """No longer used (Workflows posting is gone); read only so the check can say so."""
    partner: Slug | None = None
    board: Slug | None = None
    secretariat: StrictBool = False
    language: ChannelLanguage = ChannelLanguage.EN
    clearance: Marking = Marking.OFFICIAL
    exempt_access: StrictBool = False
    digest: DigestConfig | None = None
    alerts: list[AlertKind] = []
    """What the channel hears about as it happens: `decisions` (each one it may see)."""


SharePointField = Annotated[
    StrictStr,
    _matching(
        r"[A-Za-z_][A-Za-z0-9_]{0,254}",
        N_("{value} is not a SharePoint internal field name"),
        N_(
            "use the column's internal name (List settings → column → Field= in the address), "
            "e.g. Title or DecidedOn"
        ),
    ),
]
GRAPH_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "decisions": (
        ("ref", "board", "meeting_date", "decided_on", "title", "summary", "marking",
         "exempt_paragraph", "restricted_to", "partners", "link", "title_cy", "summary_cy"),
        ("ref", "board", "decided_on", "title"),
    ),
    "actions": (
        ("ref", "title", "owner_partner", "owner", "due_date", "status", "rag", "theme",
         "marking", "exempt_paragraph", "restricted_to", "last_update", "title_cy"),
        ("ref", "title", "owner_partner"),
    ),
}  # fmt: skip
"""For each SharePoint list: the import columns a field map may name, and those it must name
(the CSV columns of DESIGN.md section 7)."""


class SharePointListConfig(_Section):
    """A SharePoint list and which of its fields holds each import column."""

    list: ExternalId
    fields: dict[StrictStr, SharePointField] = Field(min_length=1)


class SharePointConfig(_Section):
    """The SharePoint site holding the decisions register and the tactical plan."""

    site: ExternalId
    decisions: SharePointListConfig | None = None
    actions: SharePointListConfig | None = None


class GraphConfig(_Section):
    """What `scrutiny-bot sync graph` reads from Microsoft 365."""

    calendars: dict[Slug, EntraObjectId] = Field(default_factory=dict)
    """Board slug -> the Microsoft 365 group whose calendar holds its meetings."""
    sharepoint: SharePointConfig | None = None
    past_days: StrictInt = Field(default=31, ge=0, le=3660)
    future_days: StrictInt = Field(default=400, ge=1, le=3660)


GlossaryTerm = Annotated[StrictStr, AfterValidator(_text(100))]


class GlossaryEntryConfig(_Section):
    """One term of the collaboration in both languages: every form a member may type."""

    en: list[GlossaryTerm] = Field(min_length=1)
    cy: list[GlossaryTerm] = Field(min_length=1)


class Collaboration(_Section):
    """The whole file. Build it with `load_collaboration`, which also checks references."""

    collaboration: CollaborationInfo
    partners: list[PartnerConfig]
    boards: list[BoardConfig]
    members: list[MemberConfig]
    channels: list[ChannelConfig]
    graph: GraphConfig | None = None
    glossary: list[GlossaryEntryConfig] = Field(default_factory=list)
    """Terms added to the shipped bilingual glossary (config/glossary.yaml)."""
    imports: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Per import kind, the collaboration's own column headers and the column each one is
    ({"actions": {"Action No": "ref"}}), beside the names imports already understand."""

    _file: str = PrivateAttr(default="")
    _lines: dict[KeyPath, int] = PrivateAttr(default_factory=dict)


SECTIONS: dict[str, type[_Section]] = {
    "partners": PartnerConfig,
    "boards": BoardConfig,
    "members": MemberConfig,
    "channels": ChannelConfig,
}
TOP_LEVEL = ("collaboration", *SECTIONS)
OPTIONAL = ("graph", "glossary", "imports")
ALLOWED = (*TOP_LEVEL, *OPTIONAL)


def summarise(collaboration: Collaboration) -> str:
    """'6 organisations, 3 boards, 15 members, 16 channels'."""
    partners, boards = len(collaboration.partners), len(collaboration.boards)
    members, channels = len(collaboration.members), len(collaboration.channels)
    return ", ".join(
        [
            ngettext("{count} organisation", "{count} organisations", partners).format(
                count=partners
            ),
            ngettext("{count} board", "{count} boards", boards).format(count=boards),
            ngettext("{count} member", "{count} members", members).format(count=members),
            ngettext("{count} channel", "{count} channels", channels).format(count=channels),
        ]
    )
