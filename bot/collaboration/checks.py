"""Checks that span entries: unique slugs and ids, references, secretariat, Microsoft 365 maps."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from typing import Any

from bot.collaboration.problems import KeyPath, Report, did_you_mean, hints, key_text, quoted
from bot.collaboration.schema import GRAPH_COLUMNS, SECTIONS
from bot.domain import Role
from bot.i18n import _


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
    report: Report,
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


def cross_check(data: Mapping[str, Any], report: Report) -> None:
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
            (((section, index, "slug"), slug, quoted(slug)) for index, slug in slugs[section]),
            _("slug {value} is already used by {other}"),
            _("slugs must be unique within {section}; rename or remove one").format(
                section=section
            ),
        )
    _report_duplicates(
        report,
        (
            (("boards", index, "prefix"), prefix, quoted(prefix))
            for index, entry in _entries(data, "boards")
            if (prefix := _text_at(entry, "prefix")) is not None
        ),
        _("prefix {value} is already used by {other}"),
        _("each board needs its own prefix: decision refs start with it"),
    )
    _report_duplicates(
        report,
        (
            (("channels", index, "external_id"), (platform, ext), f"{platform} {quoted(ext)}")
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
                (("members", index, key), ident.lower(), quoted(ident))
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
            message.format(value=quoted(value)),
            hints(
                hint.format(known=", ".join(sorted(known[section])) or _("none")),
                did_you_mean(value, known[section]),
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
                    (("boards", index, "members", position), slug, quoted(slug))
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
        if entry.get("webhook_url") is not None:
            # Teams' Workflows webhooks posted "via Workflows" as whoever made them, and
            # stopped when that person left; the Teams app's bot posts as itself instead.
            report.add(
                ("channels", index, "webhook_url"),
                _(
                    "webhook_url is no longer used: the bot posts to Teams as the Teams app "
                    "(docs/teams.md)"
                ),
                _("remove webhook_url, and add the Teams app to the channel's team"),
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
    graph: object, reference: Callable[[KeyPath, object, str], None], report: Report
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
                    (*path, key_text(column)),
                    _("{value} is not a {kind} column").format(value=quoted(column), kind=kind),
                    hints(
                        _("map these columns: {columns}").format(columns=", ".join(columns)),
                        did_you_mean(column, columns),
                    ),
                )
        for column in required:
            if column not in fields:
                report.add(
                    path,
                    _('the required column "{column}" is not mapped').format(column=column),
                    _('add "{column}: <SharePoint field name>"').format(column=column),
                )
