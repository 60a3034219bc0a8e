"""Importing a file of records as one unit of work, for `scrutiny-bot import`: the collaboration
file's own column names, the check that the collaboration is loaded, the import itself, and the
answer posts an answers import queues in the same transaction. The command only parses options,
shows progress and prints what this returns or raises."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import CLOCK
from bot.collaboration.load import load_collaboration
from bot.db import unit_of_work
from bot.imports import ImportReport, import_file
from bot.models import Board, Partner
from bot.runtime import renderer_for
from bot.services.questions.posts import post_unposted_answers
from bot.settings import Settings


class CollaborationNotLoaded(Exception):
    """The register has no partners yet: `scrutiny-bot config load` has not run."""


@dataclass(frozen=True)
class ImportOutcome:
    """What an import did: the importer's report and, for answers written, the posts queued."""

    report: ImportReport
    answer_posts: int | None = None


def column_map(config: Path, kind: str) -> dict[str, str]:
    """The collaboration file's own header names for `kind` (its `imports:` section); none
    without a file. A file with problems raises ConfigError, as `config check` would list them."""
    if not config.is_file():
        return {}
    return dict(load_collaboration(config).imports.get(kind, {}))


def run_import(
    sessions: sessionmaker[Session],
    settings: Settings,
    kind: str,
    file: Path,
    *,
    actor: str,
    dry_run: bool,
    sheet: str | None,
    progress: Callable[[int, int], None],
) -> ImportOutcome:
    """Import `file` as `kind`: every row or none (ImportRejected lists why), in one unit of work
    with the answer posts it queues. Raises ConfigError for a bad collaboration file and
    CollaborationNotLoaded before the collaboration is loaded."""
    columns = column_map(settings.scrutiny_config, kind)
    with unit_of_work(sessions) as session:
        if not session.scalar(select(func.count()).select_from(Partner)):
            raise CollaborationNotLoaded
        report = import_file(
            session, kind, file, actor=actor, dry_run=dry_run,
            progress=progress, zone=settings.timezone, sheet=sheet,
            column_map=columns,
        )  # fmt: skip
        posts = queue_answer_posts(session, settings) if kind == "answers" and not dry_run else None
    return ImportOutcome(report, posts)


def queue_answer_posts(session: Session, settings: Settings) -> int:
    """Queue the answers just imported for their partners' channels, in the import's
    transaction (each once: a repeated import queues nothing more)."""
    renderer = renderer_for(settings)
    now = CLOCK.now()
    return post_unposted_answers(session, renderer, now=now, zone=settings.timezone)


def template_lists(sessions: sessionmaker[Session]) -> tuple[list[str], list[str]]:
    """The partner and board slugs an import template offers, in the register's order (empty
    before the collaboration is loaded)."""
    with unit_of_work(sessions) as session:
        partners = list(session.scalars(select(Partner.slug).order_by(Partner.id)))
        boards = list(session.scalars(select(Board.slug).order_by(Board.id)))
    return partners, boards
