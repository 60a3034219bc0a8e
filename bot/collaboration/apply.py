"""Applying a checked collaboration to the database: upserts by slug, renames, audit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.collaboration.checks import cross_check
from bot.collaboration.problems import ConfigError, Report
from bot.collaboration.schema import (
    BoardConfig,
    ChannelConfig,
    Collaboration,
    DigestConfig,
    MemberConfig,
    PartnerConfig,
)
from bot.domain import Platform
from bot.i18n import _
from bot.models import Board, Channel, Member, Partner
from bot.services import audit

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
        "slug", "name", "platform", "external_id", "partner", "board",
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
        report = Report(collaboration._file, collaboration._lines)
        # A model built without load_collaboration gets the same cross-checks before any lookup.
        cross_check(collaboration.model_dump(mode="json"), report)
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

    def _conflicts(self, report: Report, kept: set[int]) -> None:
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
