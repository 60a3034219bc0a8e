"""The collaboration file: partners, boards, members and channels, checked with file, line and key.

`check_collaboration` reports every problem at once (YAML syntax, duplicate keys, shape, references,
schedules); `load_collaboration` returns the validated model or raises `ConfigError`;
`apply_collaboration` upserts the model into the database in the caller's transaction and writes
each real change to the audit log.
"""

from __future__ import annotations

import difflib
import re
import types
import uuid
import zoneinfo
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
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
    ValidationError,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.domain import AlertKind, AnonymousQuestions, ChannelLanguage, Marking, Platform, Role
from bot.i18n import N_, _, ngettext
from bot.import_columns import IMPORT_COLUMNS
from bot.models import Board, Channel, Member, Partner
from bot.schedule_time import ScheduleError, parse_cron
from bot.services import audit

KeyPath = tuple[str | int, ...]
_M = TypeVar("_M", bound=BaseModel)
EXAMPLE_FILE = "config/collaboration.example.yaml"


# --- problems -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the file: where (file, line, dotted key), what, and how to fix it."""

    file: str
    line: int | None
    key: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        return f"{text} — {self.hint}" if self.hint else text


class ConfigError(Exception):
    """The collaboration file cannot be used; `problems` lists every reason."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


def dotted(path: KeyPath) -> str:
    """`("channels", 3, "partner")` as `channels[3].partner` (list positions count from 0)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _quoted(value: object, limit: int = 60) -> str:
    """A value as the user wrote it, short enough for one line."""
    if value is None:
        return _("nothing")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        shown = value if len(value) <= limit else value[: limit - 1] + "…"
        return f'"{shown}"'
    if isinstance(value, Mapping):
        return _("a mapping")
    if isinstance(value, list | tuple):
        return _("a list")
    return type(value).__name__


def _did_you_mean(value: object, known: Iterable[str]) -> str:
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    return _('did you mean "{name}"?').format(name=close[0]) if close else ""


def _hint(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


class _Report:
    """Collects problems for one file, placing each key path on its line."""

    def __init__(self, file: str, lines: Mapping[KeyPath, int] | None = None) -> None:
        self.file = file
        self.lines: Mapping[KeyPath, int] = lines or {}
        self.problems: list[ConfigProblem] = []

    def line_of(self, path: KeyPath) -> int | None:
        # A missing key has no line of its own: use the closest enclosing entry that has one.
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def where(self, path: KeyPath) -> str:
        line = self.line_of(path)
        key = dotted(path)
        return key if line is None else _("{key} (line {line})").format(key=key, line=line)

    def add(self, path: KeyPath, message: str, hint: str = "", *, line: int | None = None) -> None:
        self.problems.append(
            ConfigProblem(
                self.file,
                line if line is not None else self.line_of(path),
                dotted(path),
                message,
                hint,
            )
        )

    def sorted(self) -> list[ConfigProblem]:
        return sorted(self.problems, key=lambda problem: problem.line or 0)


# --- field types ----------------------------------------------------------------------------


def _invalid(message: str, hint: str) -> PydanticCustomError:
    # Message and hint travel in the context, so braces in user input are never re-formatted.
    return PydanticCustomError("config", "{message}", {"message": message, "hint": hint})


def _matching(pattern: str, message: str, hint: str) -> AfterValidator:
    """A check that the whole text matches `pattern`; `message` and `hint` are N_-marked."""
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise _invalid(_(message).format(value=_quoted(value)), _(hint))
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
            _("{value} is not a Microsoft Entra object id").format(value=_quoted(value)),
            _("copy the Object ID from Entra ID, e.g. 3f2b6c1e-8a4d-4b7e-9c21-5d0e7a9b1c01"),
        ) from None


def _webhook_url(value: str) -> str:
    if not value.startswith("https://") or len(value) > 1000 or any(c.isspace() for c in value):
        raise _invalid(
            _("{value} is not an https URL").format(value=_quoted(value)),
            _("paste the whole incoming-webhook URL from Teams, starting with https://"),
        )
    return value


@lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise _invalid(
            _("unknown time zone {value}").format(value=_quoted(value)),
            _hint(
                _("use an IANA time zone name such as Europe/London"),
                _did_you_mean(value, _zone_names()),
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
                value=_quoted(fields[4])
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
            _("bad cron expression {value}: {reason}").format(value=_quoted(value), reason=exc),
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
WebhookUrl = Annotated[StrictStr, AfterValidator(_webhook_url)]
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
    webhook_url: WebhookUrl | None = None
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


# --- YAML with line numbers -----------------------------------------------------------------


def _key_text(value: object) -> str:
    """A mapping key as written, when YAML read it as null, a boolean or a number."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _node_key(node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        return "?"
    if node.tag.endswith(":null"):
        return "null"
    if node.tag.endswith(":bool"):
        return "true" if node.value.lower() in ("yes", "true", "on", "y") else "false"
    return str(node.value)


def _walk(
    node: yaml.Node,
    path: KeyPath,
    lines: dict[KeyPath, int],
    report: _Report,
    seen: set[int],
) -> None:
    """Record the line of every key and list entry, and report keys written twice."""
    # An aliased node is walked once: its other uses fall back to the nearest line.
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            key = _node_key(key_node)
            line = key_node.start_mark.line + 1
            if key == "<<":
                merges.append(value_node)
                continue
            if key in first:
                report.add(
                    (*path, key),
                    _('key "{key}" appears twice in this mapping (first on line {first})').format(
                        key=key, first=first[key]
                    ),
                    _("YAML keeps only the last one; remove or rename one of them"),
                    line=line,
                )
            else:
                first[key] = line
            lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines, report, seen)
        for merged in merges:
            # Keys merged in with `<<: *anchor` sit on the anchor's lines unless written here.
            sources = merged.value if isinstance(merged, yaml.SequenceNode) else [merged]
            for source in sources:
                extra: dict[KeyPath, int] = {}
                _walk(source, path, extra, _Report(report.file), seen)
                for key_path, line in extra.items():
                    lines.setdefault(key_path, line)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines, report, seen)


def _syntax_error(exc: yaml.MarkedYAMLError, report: _Report) -> None:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or ""
    if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
        detail = _("{context} (from line {line}): {problem}").format(
            context=exc.context, line=exc.context_mark.line + 1, problem=problem
        )
    else:
        detail = ": ".join(part for part in (exc.context, problem) if part)
    report.add(
        (),
        _("YAML syntax error: {detail}").format(detail=detail),
        _("check the indentation, colons, brackets and quotes near column {column}").format(
            column=mark.column + 1 if mark is not None else 1
        ),
        line=mark.line + 1 if mark is not None else None,
    )


_FAST_LOADER: type[Any] | None = getattr(yaml, "CSafeLoader", None)


def _parse(text: str, report: _Report) -> tuple[Any, dict[KeyPath, int]] | None:
    """The document and the line of every key path, or None after reporting why not."""
    if _FAST_LOADER is not None:
        # libyaml is several times faster, but PyYAML's own messages name the offending
        # character: a document libyaml refuses is parsed again for the better message.
        scratch = _Report(report.file)
        parsed = _parse_with(_FAST_LOADER, text, scratch)
        if parsed is not None or not any(problem.key == "" for problem in scratch.problems):
            report.problems.extend(scratch.problems)
            return parsed
    return _parse_with(yaml.SafeLoader, text, report)


def _parse_with(
    loader_class: type[Any], text: str, report: _Report
) -> tuple[Any, dict[KeyPath, int]] | None:
    lines: dict[KeyPath, int] = {}
    loader: Any = None
    try:
        loader = loader_class(text)
        node = loader.get_single_node()
        if node is None:
            report.add(
                (),
                _("the file is empty"),
                _("start from {example}, which lists every key").format(example=EXAMPLE_FILE),
            )
            return None
        _walk(node, (), lines, report, set())
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        _syntax_error(exc, report)
        return None
    except yaml.reader.ReaderError as exc:
        report.add(
            (),
            _("character U+{code:04X} is not allowed in YAML").format(code=exc.character)
            if isinstance(exc.character, int)
            else _("a byte that is not text: {reason}").format(reason=exc.reason),
            _("remove it, or save the file as plain UTF-8 text"),
            line=text[: exc.position].count("\n") + 1,
        )
        return None
    except yaml.YAMLError as exc:
        report.add((), _("YAML syntax error: {detail}").format(detail=exc))
        return None
    except RecursionError:
        report.add(
            (),
            _("the document refers to itself (a recursive anchor) or is nested too deeply"),
            _("write the values out instead of using anchors and aliases"),
        )
        return None
    finally:
        if loader is not None:
            loader.dispose()
    return data, lines


# --- pydantic errors as problems ------------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _annotation_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> Any:
    """The type expected at `loc` inside `model` (list entries resolved to their item type)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            if get_origin(current) is not list:
                return None
            current = get_args(current)[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            field_info = current.model_fields.get(part)
            if field_info is None:
                return None
            current = field_info.annotation
        else:
            return None
    return _unwrap(current)


def _choices(annotation: Any) -> list[str]:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(member.value) for member in annotation]
    if get_origin(annotation) is Literal:
        return [str(arg) for arg in get_args(annotation)]
    return []


def _type_mismatches() -> dict[str, tuple[str, str]]:
    """Per pydantic error type: what was expected ({value} is what was found), and the fix."""
    text = (
        _("expected text, found {value}"),
        _("write text; put it in quotes if it looks like a number, a date or yes/no"),
    )
    truth = (_("expected true or false, found {value}"), _("write true or false"))
    number = (
        _("expected a whole number, found {value}"),
        _("write a number without quotes, e.g. 14"),
    )
    listing = (
        _("expected a list, found {value}"),
        _('write one entry per line starting with "- ", or [a, b] on one line'),
    )
    mapping = (
        _("expected a mapping of keys, found {value}"),
        _('write "key: value" lines indented under this one'),
    )
    return {
        "string_type": text,
        "bool_type": truth,
        "bool_parsing": truth,
        "int_type": number,
        "int_parsing": number,
        "int_from_float": number,
        "list_type": listing,
        "model_type": mapping,
        "model_attributes_type": mapping,
        "dict_type": mapping,
    }


def _add_validation_error(
    report: _Report, model: type[BaseModel], path: KeyPath, error: ErrorDetails
) -> None:
    loc = tuple(error["loc"])
    full = (*path, *loc)
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    found = _quoted(value)
    last = str(loc[-1]) if loc else ""
    if kind == "config":
        report.add(full, str(ctx["message"]), str(ctx["hint"]))
    elif kind == "invalid_key":
        # YAML reads 1, yes and ~ as a number, true and null: show the key as it was written.
        written = _key_text(value)
        report.add(
            (*path, *loc[:-1], written),
            _("key {key} is not a name").format(key=written),
            _("keys are names such as slug or name; quote a key that must be a number"),
        )
    elif kind == "missing":
        report.add(
            full,
            _('missing required key "{key}"').format(key=last),
            _('add "{key}: …" to this entry; {example} shows one').format(
                key=last, example=EXAMPLE_FILE
            ),
        )
    elif kind == "extra_forbidden":
        parent = _annotation_at(model, loc[:-1])
        allowed = (
            list(parent.model_fields)
            if isinstance(parent, type) and issubclass(parent, BaseModel)
            else []
        )
        report.add(
            full,
            _('unknown key "{key}"').format(key=last),
            _hint(
                _("allowed keys here: {keys}").format(keys=", ".join(allowed)),
                _did_you_mean(last, allowed),
            ),
        )
    elif kind in ("enum", "literal_error"):
        choices = _choices(_annotation_at(model, loc))
        report.add(
            full,
            _("{value} is not allowed here").format(value=found),
            _hint(
                _("use one of: {choices}").format(choices=", ".join(choices)),
                _did_you_mean(value, choices),
            ),
        )
    elif kind in (mismatches := _type_mismatches()):
        message, hint = mismatches[kind]
        report.add(full, message.format(value=found), hint)
    elif kind in ("greater_than_equal", "less_than_equal"):
        report.add(
            full,
            _("{value} is out of range").format(value=found),
            _("use a number from {low} to {high}").format(
                low=_annotation_bound(model, loc, "ge"), high=_annotation_bound(model, loc, "le")
            ),
        )
    elif kind == "too_short":
        choices = _choices(_annotation_at(model, (*loc, 0)))
        report.add(
            full,
            _("the list is empty"),
            _("list at least one of: {choices}").format(choices=", ".join(choices))
            if choices
            else _("list at least one entry"),
        )
    else:
        report.add(
            full, _("invalid value {value}: {reason}").format(value=found, reason=error["msg"])
        )


def _annotation_bound(model: type[BaseModel], loc: tuple[str | int, ...], name: str) -> str:
    parent = _annotation_at(model, loc[:-1])
    if not (isinstance(parent, type) and issubclass(parent, BaseModel)) or not loc:
        return "?"
    field_info = parent.model_fields.get(str(loc[-1]))
    for item in field_info.metadata if field_info else []:
        bound = getattr(item, name, None)
        if bound is not None:
            return str(bound)
    return "?"


def _validate(model: type[_M], raw: object, path: KeyPath, report: _Report) -> _M | None:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            _add_validation_error(report, model, path, error)
        return None


# --- cross-checks ---------------------------------------------------------------------------


def _entries(data: Mapping[str, Any], section: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    value = data.get(section)
    if isinstance(value, list):
        for index, entry in enumerate(value):
            if isinstance(entry, Mapping):
                yield index, entry


def _text_at(entry: Mapping[str, Any], key: str) -> str | None:
    value = entry.get(key)
    return value if isinstance(value, str) else None


def _report_duplicates(
    report: _Report,
    found: Iterable[tuple[KeyPath, Hashable | None, str]],
    message: str,
    hint: str,
) -> None:
    """Report every value after its first use; `message` has {value} and {other} placeholders."""
    first: dict[Hashable, KeyPath] = {}
    for path, value, shown in found:
        if value is None:
            continue
        if value in first:
            report.add(path, message.format(value=shown, other=report.where(first[value])), hint)
        else:
            first[value] = path


def _reference_problems() -> dict[str, tuple[str, str]]:
    return {
        "partners": (_("unknown partner {value}"), _("known partners: {known}")),
        "boards": (_("unknown board {value}"), _("known boards: {known}")),
        "members": (_("unknown member {value}"), _("known members: {known}")),
    }


def _cross_check(data: Mapping[str, Any], report: _Report) -> None:
    """Checks that span entries: unique slugs and ids, references, secretariat, schedules.

    They read the raw document, so an entry with a shape problem still counts as known and
    the checks run even where validation failed.
    """
    slugs = {
        section: [
            (index, slug)
            for index, entry in _entries(data, section)
            if (slug := _text_at(entry, "slug")) is not None
        ]
        for section in SECTIONS
    }
    for section in SECTIONS:
        _report_duplicates(
            report,
            (((section, index, "slug"), slug, _quoted(slug)) for index, slug in slugs[section]),
            _("slug {value} is already used by {other}"),
            _("slugs must be unique within {section}; rename or remove one").format(
                section=section
            ),
        )
    _report_duplicates(
        report,
        (
            (("boards", index, "prefix"), prefix, _quoted(prefix))
            for index, entry in _entries(data, "boards")
            if (prefix := _text_at(entry, "prefix")) is not None
        ),
        _("prefix {value} is already used by {other}"),
        _("each board needs its own prefix: decision refs start with it"),
    )
    _report_duplicates(
        report,
        (
            (("channels", index, "external_id"), (platform, ext), f"{platform} {_quoted(ext)}")
            for index, entry in _entries(data, "channels")
            if (platform := _text_at(entry, "platform")) is not None
            and (ext := _text_at(entry, "external_id")) is not None
        ),
        _("channel {value} is already used by {other}"),
        _("each chat channel may appear once; remove the copy or correct its external_id"),
    )
    for key in ("slack_user_id", "entra_object_id"):
        _report_duplicates(
            report,
            (
                (("members", index, key), ident.lower(), _quoted(ident))
                for index, entry in _entries(data, "members")
                if (ident := _text_at(entry, key)) is not None
            ),
            _("{value} is already used by {other}"),
            _("a chat identity belongs to one member; remove it from one of them"),
        )

    known = {section: {slug for _index, slug in slugs[section]} for section in SECTIONS}
    messages = _reference_problems()

    def reference(path: KeyPath, value: object, section: str) -> None:
        # A section that is missing or not a list is reported once, not at every reference.
        if not isinstance(data.get(section), list):
            return
        if not isinstance(value, str) or value in known[section]:
            return
        message, hint = messages[section]
        report.add(
            path,
            message.format(value=_quoted(value)),
            _hint(
                hint.format(known=", ".join(sorted(known[section])) or _("none")),
                _did_you_mean(value, known[section]),
            ),
        )

    for index, entry in _entries(data, "members"):
        reference(("members", index, "partner"), entry.get("partner"), "partners")
    for index, entry in _entries(data, "boards"):
        listed = entry.get("members")
        if isinstance(listed, list):
            for position, slug in enumerate(listed):
                reference(("boards", index, "members", position), slug, "members")
            _report_duplicates(
                report,
                (
                    (("boards", index, "members", position), slug, _quoted(slug))
                    for position, slug in enumerate(listed)
                    if isinstance(slug, str)
                ),
                _("member {value} is listed twice (also at {other})"),
                _("remove the repeated entry"),
            )
        window = entry.get("questions")
        if isinstance(window, Mapping):
            opens = window.get("open_days_before", 14)
            closes = window.get("close_days_before", 5)
            if type(opens) is int and type(closes) is int and opens <= closes:
                report.add(
                    ("boards", index, "questions", "close_days_before"),
                    _(
                        "questions would close {close} days before the meeting "
                        "but open only {open} days before"
                    ).format(close=closes, open=opens),
                    _("open_days_before must be larger than close_days_before"),
                )
    for index, entry in _entries(data, "channels"):
        if entry.get("partner") is not None:
            reference(("channels", index, "partner"), entry.get("partner"), "partners")
        if entry.get("board") is not None:
            reference(("channels", index, "board"), entry.get("board"), "boards")
        platform = entry.get("platform")
        if entry.get("webhook_url") is not None and platform != Platform.TEAMS.value:
            report.add(
                ("channels", index, "webhook_url"),
                _("webhook_url is only used by Teams channels; this one is on {platform}").format(
                    platform=_quoted(platform)
                ),
                _("remove webhook_url, or set platform: teams"),
            )

    _check_graph(data.get("graph"), reference, report)

    def has_role(entry: Mapping[str, Any]) -> bool:
        roles = entry.get("roles")
        return isinstance(roles, list) and Role.SECRETARIAT.value in roles

    if "members" in data and not any(has_role(entry) for _i, entry in _entries(data, "members")):
        report.add(
            ("members",),
            _("no member has the secretariat role"),
            _("give at least one member roles: [secretariat]; unknown users are told to ask them"),
        )
    if "channels" in data and not any(
        entry.get("secretariat") is True for _i, entry in _entries(data, "channels")
    ):
        report.add(
            ("channels",),
            _("no channel is marked secretariat: true"),
            _("mark the secretariat's own channel with secretariat: true"),
        )


def _check_graph(
    graph: object, reference: Callable[[KeyPath, object, str], None], report: _Report
) -> None:
    """The graph section's boards exist and each field map names known, required columns."""
    if not isinstance(graph, Mapping):
        return
    calendars = graph.get("calendars")
    if isinstance(calendars, Mapping):
        for board in calendars:
            reference(("graph", "calendars", board), board, "boards")
    sharepoint = graph.get("sharepoint")
    if not isinstance(sharepoint, Mapping):
        return
    for kind, (columns, required) in GRAPH_COLUMNS.items():
        listed = sharepoint.get(kind)
        fields = listed.get("fields") if isinstance(listed, Mapping) else None
        if not isinstance(fields, Mapping):
            continue
        path: KeyPath = ("graph", "sharepoint", kind, "fields")
        for column in fields:
            if column not in columns:
                report.add(
                    (*path, _key_text(column)),
                    _("{value} is not a {kind} column").format(value=_quoted(column), kind=kind),
                    _hint(
                        _("map these columns: {columns}").format(columns=", ".join(columns)),
                        _did_you_mean(column, columns),
                    ),
                )
        for column in required:
            if column not in fields:
                report.add(
                    path,
                    _('the required column "{column}" is not mapped').format(column=column),
                    _('add "{column}: <SharePoint field name>"').format(column=column),
                )


# --- check and load -------------------------------------------------------------------------


def _read(path: Path, report: _Report) -> str | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        report.add(
            (),
            _("file not found"),
            _("check the path or SCRUTINY_CONFIG; {example} is a complete example").format(
                example=EXAMPLE_FILE
            ),
        )
        return None
    except OSError as exc:
        report.add((), _("cannot read the file: {reason}").format(reason=exc.strerror or exc))
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        report.add(
            (),
            _("not UTF-8 text (byte {offset} of the file)").format(offset=exc.start + 1),
            _("save the file as UTF-8"),
            line=raw[: exc.start].count(b"\n") + 1,
        )
        return None


def _check(path: Path) -> tuple[Collaboration | None, list[ConfigProblem]]:
    report = _Report(str(path))
    text = _read(path, report)
    parsed = _parse(text, report) if text is not None else None
    if parsed is None:
        return None, report.sorted()
    data, lines = parsed
    report.lines = lines
    if not isinstance(data, dict):
        report.add(
            (),
            _("the top level must be a mapping, found {value}").format(value=_quoted(data)),
            _("write the keys {keys}, each at the start of a line").format(
                keys=", ".join(TOP_LEVEL)
            ),
            line=1,
        )
        return None, report.sorted()

    for key in data:
        if key not in ALLOWED:
            report.add(
                (_key_text(key),),
                _('unknown key "{key}"').format(key=_key_text(key)),
                _hint(
                    _("allowed keys here: {keys}").format(keys=", ".join(ALLOWED)),
                    _did_you_mean(key, ALLOWED),
                ),
            )
    for key in TOP_LEVEL:
        if key not in data:
            report.add(
                (key,),
                _('missing required key "{key}"').format(key=key),
                _("{example} shows what goes there").format(example=EXAMPLE_FILE),
                line=1,
            )

    info = (
        _validate(CollaborationInfo, data["collaboration"], ("collaboration",), report)
        if "collaboration" in data
        else None
    )
    sections: dict[str, list[Any]] = {}
    for section, model in SECTIONS.items():
        if section not in data:
            continue
        value = data[section]
        if not isinstance(value, list):
            report.add(
                (section,),
                _("expected a list, found {value}").format(value=_quoted(value)),
                _('write one entry per line, each starting with "- slug: …"'),
            )
            continue
        sections[section] = [
            _validate(model, entry, (section, index), report) for index, entry in enumerate(value)
        ]
    graph = (
        _validate(GraphConfig, data["graph"], ("graph",), report)
        if data.get("graph") is not None
        else None
    )
    glossary = _glossary_section(data, report)
    imports = _imports_section(data, report)
    _cross_check(data, report)

    if report.problems or info is None:
        return None, report.sorted()
    collaboration = Collaboration(
        collaboration=info, graph=graph, glossary=glossary or [], imports=imports, **sections
    )
    collaboration._file = str(path)
    collaboration._lines = lines
    return collaboration, []


def _imports_section(data: Mapping[str, Any], report: _Report) -> dict[str, dict[str, str]]:
    """The `imports:` column maps: for each import kind, header text -> one of its columns."""
    value = data.get("imports")
    if value is None:
        return {}
    hint = _('e.g. imports: {{actions: {{"Action No": ref}}}}')
    if not isinstance(value, Mapping):
        report.add(
            ("imports",), _("expected a mapping, found {value}").format(value=_quoted(value)), hint
        )
        return {}
    maps: dict[str, dict[str, str]] = {}
    for kind, headers in value.items():
        if kind not in IMPORT_COLUMNS:
            report.add(
                ("imports", str(kind)),
                _("unknown import kind {kind}").format(kind=_quoted(kind)),
                _("use one of {kinds}").format(kinds=", ".join(IMPORT_COLUMNS)),
            )
            continue
        if not isinstance(headers, Mapping):
            report.add(
                ("imports", kind),
                _("expected a mapping, found {value}").format(value=_quoted(headers)),
                hint,
            )
            continue
        columns = IMPORT_COLUMNS[kind]
        maps[kind] = {}
        for header, column in headers.items():
            if not isinstance(header, str) or not header.strip():
                report.add(("imports", kind), _("a column header must be text"), hint)
            elif column not in columns:
                report.add(
                    ("imports", kind, header),
                    _("unknown {kind} column {column}").format(kind=kind, column=_quoted(column)),
                    _("use one of {columns}").format(columns=", ".join(columns)),
                )
            else:
                maps[kind][header] = str(column)
    return maps


def _glossary_section(data: Mapping[str, Any], report: _Report) -> list[GlossaryEntryConfig] | None:
    """The `glossary:` list, each entry checked on its own line; None when there is none."""
    value = data.get("glossary")
    if value is None:
        return None
    if not isinstance(value, list):
        report.add(
            ("glossary",),
            _("expected a list, found {value}").format(value=_quoted(value)),
            _(
                "write one entry per term, each with an en list and a cy list (see {example})"
            ).format(example=EXAMPLE_FILE),
        )
        return None
    entries = [
        _validate(GlossaryEntryConfig, entry, ("glossary", index), report)
        for index, entry in enumerate(value)
    ]
    return [entry for entry in entries if entry is not None]


def load_glossary_file(path: Path) -> list[GlossaryEntryConfig]:
    """A file holding only a `glossary:` list (the shipped config/glossary.yaml); raises
    ConfigError with the line of every problem."""
    report = _Report(str(path))
    text = _read(path, report)
    parsed = _parse(text, report) if text is not None else None
    entries: list[GlossaryEntryConfig] | None = None
    if parsed is not None:
        data, report.lines = parsed
        if not isinstance(data, dict) or "glossary" not in data:
            report.add(
                (), _('the file must hold one key, "glossary", with a list of terms'), line=1
            )
        else:
            for key in data:
                if key != "glossary":
                    report.add(
                        (_key_text(key),),
                        _('unknown key "{key}"').format(key=_key_text(key)),
                        _("allowed keys here: {keys}").format(keys="glossary"),
                    )
            entries = _glossary_section(data, report)
    if report.problems:
        raise ConfigError(report.sorted())
    return entries or []


def check_collaboration(path: Path) -> list[ConfigProblem]:
    """Every problem in the collaboration file at `path`, in line order (empty when it is valid)."""
    return _check(path)[1]


def load_collaboration(path: Path) -> Collaboration:
    """The validated collaboration file; raises ConfigError listing every problem."""
    collaboration, problems = _check(path)
    if collaboration is None:
        raise ConfigError(problems)
    return collaboration


# --- apply to the database ------------------------------------------------------------------

ENTITIES = ("partner", "board", "member", "channel")
_MODELS: dict[str, type[Partner | Board | Member | Channel]] = {
    "partner": Partner,
    "board": Board,
    "member": Member,
    "channel": Channel,
}
_KEYS: dict[str, tuple[str, ...]] = {
    "partner": ("slug", "name", "name_cy", "kind"),
    "board": (
        "slug", "prefix", "name", "name_cy", "questions_open_days", "questions_close_days",
        "members", "anonymous_questions",
    ),
    "member": (
        "slug", "name", "partner", "roles", "clearance", "exempt_access", "language",
        "slack_user_id", "entra_object_id", "active",
    ),
    "channel": (
        "slug", "name", "platform", "external_id", "webhook_url", "partner", "board",
        "secretariat", "language", "clearance", "exempt_access", "digest_cron",
        "digest_timezone", "skip_bank_holidays", "post_empty_digest", "due_soon_days",
        "alerts",
    ),
}  # fmt: skip
Targets = dict[str, dict[str, Any]]
"""Per entity, the row each entry of the file lands on (None until a new row is made)."""


@dataclass
class ApplySummary:
    """What applying the file did, counted per entity (`partner`, `board`, `member`, `channel`)."""

    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    deactivated: list[str] = field(default_factory=list)
    digests_stopped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything at all was written."""
        return bool(
            self.created.total() or self.updated.total() or self.deactivated or self.digests_stopped
        )

    def lines(self) -> list[str]:
        """The summary for people: one line per entity, then what left the file."""
        labels = {
            "partner": _("Organisations"),
            "board": _("Boards"),
            "member": _("Members"),
            "channel": _("Channels"),
        }
        out = [
            _("{label}: {created} created, {updated} updated, {unchanged} unchanged.").format(
                label=labels[entity],
                created=self.created[entity],
                updated=self.updated[entity],
                unchanged=self.unchanged[entity],
            )
            for entity in ENTITIES
        ]
        if self.deactivated:
            out.append(
                _("No longer in the file, now inactive (kept for history): {slugs}.").format(
                    slugs=", ".join(self.deactivated)
                )
            )
        if self.digests_stopped:
            out.append(
                _(
                    "Channels no longer in the file keep their rows but get no digest now: {slugs}."
                ).format(slugs=", ".join(self.digests_stopped))
            )
        if not self.changed:
            out.append(_("Nothing changed."))
        return out


def _plain(value: Any) -> Any:
    """A value as the audit log and comparisons see it: rows by slug, member lists sorted."""
    if isinstance(value, Partner | Board | Member | Channel):
        return value.slug
    if isinstance(value, list) and value and isinstance(value[0], Member):
        return sorted(member.slug for member in value)
    return audit.plain(value)


def _snapshot(entity: str, row: object) -> dict[str, Any]:
    return {key: _plain(getattr(row, key)) for key in _KEYS[entity]}


def _board_identity(item: Any) -> list[Hashable]:
    return [item.prefix]


def _channel_identity(item: Any) -> list[Hashable]:
    return [(Platform(item.platform), item.external_id)]


def _member_identity(item: Any) -> list[Hashable]:
    pairs = (("slack", item.slack_user_id), ("entra", item.entra_object_id))
    return [pair for pair in pairs if pair[1] is not None]


class _Apply:
    """One application of a collaboration to the database (see `apply_collaboration`)."""

    def __init__(self, session: Session, collaboration: Collaboration, actor: str) -> None:
        self.session = session
        self.collaboration = collaboration
        self.actor = actor
        self.summary = ApplySummary()
        self.partners = {row.slug: row for row in session.scalars(select(Partner))}
        self.boards = {
            row.slug: row
            for row in session.scalars(select(Board).options(selectinload(Board.members)))
        }
        self.members = {
            row.slug: row
            for row in session.scalars(select(Member).options(selectinload(Member.partner)))
        }
        self.channels = {
            row.slug: row
            for row in session.scalars(
                select(Channel).options(selectinload(Channel.partner), selectinload(Channel.board))
            )
        }

    def run(self) -> ApplySummary:
        collaboration = self.collaboration
        report = _Report(collaboration._file, collaboration._lines)
        # A model built without load_collaboration gets the same cross-checks before any lookup.
        _cross_check(collaboration.model_dump(mode="json"), report)
        if report.problems:
            raise ConfigError(report.sorted())
        targets: Targets = {
            "partner": {spec.slug: self.partners.get(spec.slug) for spec in collaboration.partners},
            "board": self._match(collaboration.boards, self.boards, _board_identity),
            "member": self._match(collaboration.members, self.members, _member_identity),
            "channel": self._match(collaboration.channels, self.channels, _channel_identity),
        }
        kept = {id(row) for rows in targets.values() for row in rows.values() if row is not None}
        self._conflicts(report, kept)
        if report.problems:
            raise ConfigError(report.sorted())

        absent_members = [row for row in self.members.values() if id(row) not in kept]
        absent_channels = [row for row in self.channels.values() if id(row) not in kept]
        befores = {
            id(row): _snapshot(entity, row)
            for entity, rows in targets.items()
            for row in rows.values()
            if row is not None
        }
        befores.update({id(row): _snapshot("member", row) for row in absent_members})
        claimed = {ident for spec in collaboration.members for ident in _member_identity(spec)}
        self._release(targets, absent_members, claimed)

        steps: list[tuple[str, list[Any], Callable[[Any, Targets], dict[str, Any]]]] = [
            ("partner", collaboration.partners, self._partner_values),
            ("member", collaboration.members, self._member_values),
            ("board", collaboration.boards, self._board_values),
            ("channel", collaboration.channels, self._channel_values),
        ]
        # Rows are half-built between `add` and the last setattr: no flush may happen meanwhile.
        with self.session.no_autoflush:
            for entity, specs, values in steps:
                rows = targets[entity]
                for spec in specs:
                    row = rows[spec.slug]
                    if row is None:
                        row = rows[spec.slug] = _MODELS[entity](slug=spec.slug)
                        self.session.add(row)
                    self._put(entity, spec.slug, row, befores.get(id(row)), values(spec, targets))
            for member in absent_members:
                self._retire(member, befores[id(member)])
            for channel in absent_channels:
                self._stop_digest(channel)
        return self.summary

    def _match(
        self,
        specs: list[Any],
        existing: Mapping[str, Any],
        identity: Callable[[Any], list[Hashable]],
    ) -> dict[str, Any]:
        """The row for each entry by slug; a new slug takes over the row of the same identity
        (board prefix, chat channel, chat user) if that row's slug has left the file: a rename."""
        slugs = {spec.slug for spec in specs}
        spare: dict[Hashable, Any] = {}
        for slug, row in existing.items():
            if slug not in slugs:
                for ident in identity(row):
                    spare.setdefault(ident, row)
        taken: set[int] = set()
        matched: dict[str, Any] = {}
        for spec in specs:
            row = existing.get(spec.slug)
            if row is None:
                candidates = (spare.get(ident) for ident in identity(spec))
                row = next((c for c in candidates if c is not None and id(c) not in taken), None)
            if row is not None:
                taken.add(id(row))
            matched[spec.slug] = row
        return matched

    def _conflicts(self, report: _Report, kept: set[int]) -> None:
        """Rows missing from the file that hold a prefix or chat channel the file gives away."""
        prefixes = {row.prefix: row for row in self.boards.values() if id(row) not in kept}
        for index, board in enumerate(self.collaboration.boards):
            holder = prefixes.get(board.prefix)
            if holder is not None:
                report.add(
                    ("boards", index, "prefix"),
                    _('prefix "{prefix}" belongs to board "{other}" in the database, '
                      "which is not in this file").format(prefix=board.prefix, other=holder.slug),
                    _('use slug "{other}" for this board (it keeps its decisions), or another '
                      "prefix").format(other=holder.slug),
                )  # fmt: skip
        chats = {
            (row.platform, row.external_id): row
            for row in self.channels.values()
            if id(row) not in kept
        }
        for index, channel in enumerate(self.collaboration.channels):
            owner = chats.get((channel.platform, channel.external_id))
            if owner is not None:
                report.add(
                    ("channels", index, "external_id"),
                    _('this chat channel belongs to channel "{other}" in the database, '
                      "which is not in this file").format(other=owner.slug),
                    _('use slug "{other}" for this channel, or put "{other}" back in the '
                      "file").format(other=owner.slug),
                )  # fmt: skip

    def _release(self, targets: Targets, absent_members: list[Member], claimed: set[Any]) -> None:
        """Free unique values that pass from one row to another before any row takes them.

        Unique constraints are checked per statement, so in a swap or a rename the old holder
        lets go (and is flushed) first; members missing from the file give up claimed ids.
        """
        moved = False
        for board_spec in self.collaboration.boards:
            board = targets["board"][board_spec.slug]
            if board is not None and board.prefix != board_spec.prefix:
                board.prefix = f"~{board.id}"
                moved = True
        for channel_spec in self.collaboration.channels:
            channel = targets["channel"][channel_spec.slug]
            if channel is not None and _channel_identity(channel) != _channel_identity(
                channel_spec
            ):
                channel.external_id = f"~released~{channel.id}"
                moved = True
        wanted = [
            (targets["member"][spec.slug], set(_member_identity(spec)))
            for spec in self.collaboration.members
        ]
        wanted += [(row, set(_member_identity(row)) - claimed) for row in absent_members]
        for member, keep in wanted:
            if member is None:
                continue
            if member.slack_user_id is not None and ("slack", member.slack_user_id) not in keep:
                member.slack_user_id = None
                moved = True
            if member.entra_object_id is not None and ("entra", member.entra_object_id) not in keep:
                member.entra_object_id = None
                moved = True
        if moved:
            self.session.flush()

    def _partner_values(self, spec: PartnerConfig, targets: Targets) -> dict[str, Any]:
        return {"slug": spec.slug, "name": spec.name, "name_cy": spec.name_cy, "kind": spec.kind}

    def _member_values(self, spec: MemberConfig, targets: Targets) -> dict[str, Any]:
        return {
            "slug": spec.slug,
            "name": spec.name,
            "partner": targets["partner"][spec.partner],
            "roles": [role.value for role in spec.roles],
            "clearance": spec.clearance,
            "exempt_access": spec.exempt_access,
            "language": spec.language,
            "slack_user_id": spec.slack_user_id,
            "entra_object_id": spec.entra_object_id,
            "active": True,
        }

    def _board_values(self, spec: BoardConfig, targets: Targets) -> dict[str, Any]:
        return {
            "slug": spec.slug,
            "prefix": spec.prefix,
            "name": spec.name,
            "name_cy": spec.name_cy,
            "questions_open_days": spec.questions.open_days_before,
            "questions_close_days": spec.questions.close_days_before,
            "members": [targets["member"][slug] for slug in spec.members],
            "anonymous_questions": spec.anonymous_questions.value,
        }

    def _channel_values(self, spec: ChannelConfig, targets: Targets) -> dict[str, Any]:
        # A channel without a digest still gets the digest defaults, so the row is fully known.
        digest = spec.digest or DigestConfig(cron="0 9 * * mon")
        return {
            "slug": spec.slug,
            "name": spec.name,
            "platform": spec.platform,
            "external_id": spec.external_id,
            "webhook_url": spec.webhook_url,
            "partner": targets["partner"][spec.partner] if spec.partner else None,
            "board": targets["board"][spec.board] if spec.board else None,
            "secretariat": spec.secretariat,
            "language": spec.language,
            "clearance": spec.clearance,
            "exempt_access": spec.exempt_access,
            "digest_cron": spec.digest.cron if spec.digest else None,
            "digest_timezone": digest.timezone or self.collaboration.collaboration.timezone,
            "skip_bank_holidays": digest.skip_bank_holidays,
            "post_empty_digest": digest.post_when_empty,
            "due_soon_days": digest.due_soon_days,
            "alerts": list(dict.fromkeys(kind.value for kind in spec.alerts)),
        }

    def _put(
        self,
        entity: str,
        slug: str,
        row: object,
        before: dict[str, Any] | None,
        values: dict[str, Any],
    ) -> None:
        """Give `row` the file's values; audit and count only what really changed."""
        after = {key: _plain(value) for key, value in values.items()}
        for key, value in values.items():
            if before is None or before[key] != after[key]:
                setattr(row, key, value)
        if before is None:
            self._audit("create", entity, slug, None, after)
            self.summary.created[entity] += 1
            return
        changed = audit.changes(before, after)
        if not changed:
            self.summary.unchanged[entity] += 1
            return
        self._audit("update", entity, slug, {key: before[key] for key in changed}, changed)
        self.summary.updated[entity] += 1

    def _retire(self, member: Member, before: dict[str, Any]) -> None:
        member.active = False
        changed = audit.changes(before, _snapshot("member", member))
        if not changed:
            return
        verb = "deactivate" if before["active"] else "update"
        self._audit(verb, "member", member.slug, {key: before[key] for key in changed}, changed)
        if before["active"]:
            self.summary.deactivated.append(member.slug)
        else:
            self.summary.updated["member"] += 1

    def _stop_digest(self, channel: Channel) -> None:
        if channel.digest_cron is None:
            return
        self._audit(
            "update",
            "channel",
            channel.slug,
            {"digest_cron": channel.digest_cron},
            {"digest_cron": None},
        )
        channel.digest_cron = None
        self.summary.digests_stopped.append(channel.slug)

    def _audit(
        self,
        verb: str,
        entity: str,
        ref: str,
        before: dict[str, Any] | None,
        after: dict[str, Any],
    ) -> None:
        audit.record(
            self.session,
            actor=self.actor,
            verb=verb,
            entity=entity,
            ref=ref,
            before=before,
            after=after,
        )


def apply_collaboration(
    session: Session, collaboration: Collaboration, *, actor: str = "config"
) -> ApplySummary:
    """Upsert partners, boards, members and channels by slug, in the caller's transaction.

    Each real change is audited with before and after, so applying the same file twice writes
    nothing the second time. Members missing from the file become inactive (never deleted);
    channels missing from the file keep their rows but lose their digest. A new slug whose
    identity (board prefix, chat channel, Slack or Entra id) belongs to a row whose slug has left
    the file renames that row, keeping its history. Raises ConfigError, having written nothing,
    when a row outside the file holds a prefix or chat channel the file gives to another entry.
    """
    return _Apply(session, collaboration, actor).run()
