"""The plain-words reader's lexicon for the example collaboration file, built as the bot builds
it from the database rows the file becomes."""

from __future__ import annotations

from pathlib import Path

from bot.collaboration import load_collaboration
from bot.services.lexicon import glossary
from bot.services.plain_words import Lexicon, NamedThing

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "config" / "collaboration.example.yaml"


def example_lexicon() -> Lexicon:
    """Partners, boards and glossary of `config/collaboration.example.yaml`; action refs TP-."""
    collaboration = load_collaboration(EXAMPLE)
    return Lexicon(
        [NamedThing(p.slug, p.name, p.name_cy) for p in collaboration.partners],
        [NamedThing(b.slug, b.name, b.name_cy, b.prefix) for b in collaboration.boards],
        glossary(EXAMPLE),
        ["TP"],
    )
