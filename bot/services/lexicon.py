"""The collaboration's words for the plain-words reader: partner and board names from the
database, action ref prefixes, and the bilingual glossary (the shipped `config/glossary.yaml`
plus the collaboration file's `glossary:` section).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.collaboration import ConfigError, load_collaboration, load_glossary_file
from bot.models import Action, Board, Partner
from bot.register_version import versioned
from bot.services.plain_words import GlossaryTerm, Lexicon, NamedThing

log = logging.getLogger(__name__)

GLOSSARY_FILE = Path(__file__).resolve().parent.parent.parent / "config" / "glossary.yaml"
"""The collaboration's terms in English and Welsh, shipped with the bot."""


def _modified(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


@lru_cache(maxsize=8)
def _glossary(
    shipped: Path, shipped_at: float | None, own: Path, own_at: float | None
) -> tuple[GlossaryTerm, ...]:
    entries = []
    try:
        entries += load_glossary_file(shipped)
    except ConfigError as problem:
        log.error("the shipped glossary is not usable:\n%s", problem)
    if own_at is not None:
        try:
            entries += load_collaboration(own).glossary
        except ConfigError as problem:
            # `run` and `config load` refuse such a file; a running bot keeps answering.
            log.warning("glossary section of %s not read:\n%s", own, problem)
    return tuple(GlossaryTerm(tuple(e.en), tuple(e.cy)) for e in entries)


def glossary(collaboration_file: Path, shipped: Path = GLOSSARY_FILE) -> tuple[GlossaryTerm, ...]:
    """The shipped glossary and the collaboration file's own terms (read again when either
    file changes)."""
    return _glossary(shipped, _modified(shipped), collaboration_file, _modified(collaboration_file))


def _action_prefixes(session: Session) -> list[str]:
    # The letters before the first hyphen of every action ref ("TP" of TP-014).
    if session.get_bind().dialect.name == "postgresql":
        head = func.split_part(Action.ref, "-", 1)
    else:
        head = func.substr(Action.ref, 1, func.instr(Action.ref, "-") - 1)
    return [p for p in session.scalars(select(head).distinct()) if p]


def lexicon_of(session: Session, collaboration_file: Path) -> Lexicon:
    """The reader's words for this collaboration, from its current database rows (built
    again only when the register or the glossary changed)."""
    terms = glossary(collaboration_file)
    return versioned(session, ("lexicon", terms), lambda: _lexicon(session, terms))


def _lexicon(session: Session, terms: tuple[GlossaryTerm, ...]) -> Lexicon:
    partners = [NamedThing(p.slug, p.name, p.name_cy) for p in session.scalars(select(Partner))]
    boards = [
        NamedThing(b.slug, b.name, b.name_cy, b.prefix)
        for b in session.scalars(select(Board).order_by(Board.id))
    ]
    return _cached_lexicon(
        tuple(partners), tuple(boards), terms, tuple(sorted(_action_prefixes(session)))
    )


@lru_cache(maxsize=16)
def _cached_lexicon(
    partners: tuple[NamedThing, ...],
    boards: tuple[NamedThing, ...],
    terms: tuple[GlossaryTerm, ...],
    prefixes: tuple[str, ...],
) -> Lexicon:
    # Building the phrase index takes milliseconds; the rows change rarely.
    return Lexicon(partners, boards, terms, prefixes)
