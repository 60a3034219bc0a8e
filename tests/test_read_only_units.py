"""Read-only units of work on SQLite: no write lock, one snapshot, and no writes at all; units
of work that write still take the write lock at BEGIN."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.db import make_session_factory, unit_of_work
from bot.domain import Platform
from bot.messages import Request
from bot.models import Partner
from tests.conftest import NOW
from tests.factories import Seed

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")), reason="SQLite's locking only"
)


def _hold_write_lock(engine: Engine) -> object:
    """Another connection inside BEGIN IMMEDIATE, holding SQLite's write lock until closed."""
    raw = engine.raw_connection()
    raw.cursor().execute("BEGIN IMMEDIATE")
    return raw


def test_a_read_only_unit_runs_while_another_holds_the_write_lock(
    engine: Engine, seed: Seed
) -> None:
    holder = _hold_write_lock(engine)
    try:
        with unit_of_work(make_session_factory(engine), writes=False) as session:
            assert "torfaen" in session.scalars(select(Partner.slug)).all()
    finally:
        holder.close()  # type: ignore[attr-defined]


def test_read_only_commands_answer_while_another_holds_the_write_lock(
    app: ScrutinyApp, engine: Engine, seed: Seed
) -> None:
    holder = _hold_write_lock(engine)
    try:
        for words in ("actions overdue torfaen", "decisions strategic", "help", "meetings"):
            outcome = app.dispatch(Request(Platform.SLACK, "U0TOR00001", words, now=NOW))
            assert "Something went wrong" not in outcome.text, words
        assert (
            "TP-001"
            in app.dispatch(
                Request(Platform.SLACK, "U0TOR00001", "actions overdue torfaen", now=NOW)
            ).text
        )
    finally:
        holder.close()  # type: ignore[attr-defined]


def test_a_read_only_unit_reads_one_snapshot_and_refuses_writes(
    engine: Engine, session: Session, seed: Seed
) -> None:
    factory = make_session_factory(engine)
    with unit_of_work(factory, writes=False) as reader:
        before = reader.scalar(text("SELECT count(*) FROM partners"))
        session.add(Partner(slug="cardiff", name="Cardiff", name_cy="Caerdydd"))
        session.commit()
        # Committed by another connection meanwhile: not part of this unit's snapshot.
        assert reader.scalar(text("SELECT count(*) FROM partners")) == before
        with pytest.raises(OperationalError, match="readonly"):
            reader.execute(text("DELETE FROM partners WHERE slug = 'cardiff'"))
        reader.rollback()
    # The same pooled connection writes again in a unit of work that declares it.
    with unit_of_work(factory) as writer:
        writer.execute(text("DELETE FROM partners WHERE slug = 'cardiff'"))
    assert session.scalar(text("SELECT count(*) FROM partners")) == before


def test_a_writing_unit_takes_the_write_lock_at_begin(engine: Engine, seed: Seed) -> None:
    with unit_of_work(make_session_factory(engine)):
        other = engine.raw_connection()
        try:
            other.cursor().execute("PRAGMA busy_timeout = 0")
            with pytest.raises(Exception, match="locked"):
                other.cursor().execute("BEGIN IMMEDIATE")
        finally:
            other.close()
