"""The answer cache: read-only answers kept per process, never across audiences, never past a
change to what they show (the register version, migration 0015), never errors or forms."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp, create_app
from bot.clock import Clock
from bot.db import make_session_factory, unit_of_work
from bot.domain import Marking, Platform
from bot.imports import KINDS, ImportRejected, import_file
from bot.messages import Request
from bot.models import Base, Member
from bot.register_version import register_version
from bot.settings import Settings
from tests.conftest import NOW
from tests.factories import Seed
from tests.support.statements import counting

EXAMPLES = Path(__file__).resolve().parent.parent / "config" / "example"

UNVERSIONED = {
    "deliveries",
    "audit_events",
    "processed_events",
    "private_answers",
    "register_version",
}
"""Tables no kept answer may read: the outbox and the audit log change with every post, so
following them would empty the cache at every digest (the commands that show them,
`deliveries` and `history`, are not kept); processed events are never shown; private answers
are a platform's store of answers already given, read only by the Teams refresh."""

SAMPLES = {
    "help": "help",
    "actions": "actions overdue torfaen",
    "action": "action TP-001",
    "decisions": "decisions",
    "decision": "decision SB-2026-031",
    "meetings": "meetings",
    "find": "find data centre",
    "home": "home",
}
"""One typical request for every command whose answers are kept."""


def _ask(app: ScrutinyApp, user: str, words: str, channel: str | None = None, **kw: Any) -> Any:
    request = Request(
        Platform.SLACK, user, words, channel_id=channel, is_direct=channel is None, **kw
    )
    return app.dispatch(request, "slack.json")


def _version(engine: Engine) -> int:
    with unit_of_work(make_session_factory(engine), writes=False) as session:
        version = register_version(session)
    assert version is not None
    return version


def _register(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every versioned table, to see whether a write changed any of them."""
    with engine.connect() as conn:
        return {
            table.name: sorted(map(tuple, conn.execute(select(table))), key=repr)
            for table in Base.metadata.sorted_tables
            if table.name not in UNVERSIONED
        }


@pytest.fixture
def fresh(settings: Settings, engine: Engine) -> ScrutinyApp:
    """The same bot with no answer cache: what every answer should be."""
    return create_app(settings.model_copy(update={"answer_cache_size": 0}), engine)


def test_a_repeated_question_is_answered_from_the_cache_until_the_minute_turns(
    app: ScrutinyApp, seed: Seed, clock: Clock
) -> None:
    first = _ask(app, "U0TOR00001", "actions overdue torfaen", "C0TOR00001")
    again = _ask(app, "U0TOR00001", "actions  overdue torfaen ", "C0TOR00001")
    assert (first.cached, again.cached) == (False, True)
    assert again.documents == first.documents and "TP-001" in again.text
    clock.advance(timedelta(minutes=1))
    assert not _ask(app, "U0TOR00001", "actions overdue torfaen", "C0TOR00001").cached


def test_audiences_never_get_each_others_answers(
    app: ScrutinyApp, fresh: ScrutinyApp, seed: Seed
) -> None:
    # Gwent Police's member (OFFICIAL-SENSITIVE, restricted items of the police) asks first;
    # Newport's (OFFICIAL) and the police member in Torfaen's OFFICIAL channel ask the same.
    asked = [
        ("U0POL00001", None),
        ("U0NEW00001", None),
        ("U0POL00001", "C0TOR00001"),
        ("U0TOR00001", None),
        ("U0TOR00001", "C0TOR00001"),
        ("U0MON00001", None),
    ]
    for words in ("actions", "action TP-006", "action TP-004", "decisions", "home"):
        answers = {}
        for user, channel in asked:
            kept = _ask(app, user, words, channel)
            assert kept.text == _ask(fresh, user, words, channel).text, (words, user, channel)
            answers[user, channel] = kept.text
        assert len(set(answers.values())) > 1, words
    police_alone = _ask(app, "U0POL00001", "action TP-004").text
    newport = _ask(app, "U0NEW00001", "action TP-004").text
    assert "TP-004" in police_alone and police_alone != newport


def test_a_lowered_clearance_is_never_answered_from_before(
    app: ScrutinyApp, fresh: ScrutinyApp, seed: Seed, session: Session
) -> None:
    before = _ask(app, "U0TOR00001", "action TP-006")
    member = session.scalars(select(Member).where(Member.slack_user_id == "U0TOR00001")).one()
    member.clearance = Marking.OFFICIAL
    session.commit()
    after = _ask(app, "U0TOR00001", "action TP-006")
    assert not after.cached and after.text != before.text
    assert after.text == _ask(fresh, "U0TOR00001", "action TP-006").text


def test_a_change_by_any_path_is_shown_at_once(
    app: ScrutinyApp, fresh: ScrutinyApp, seed: Seed, engine: Engine
) -> None:
    _ask(app, "U0TOR00001", "action TP-001", "C0TOR00001")
    with engine.begin() as conn:  # raw SQL, no ORM, no audit row: the triggers still count it
        conn.execute(text("UPDATE actions SET title = 'Renamed by hand' WHERE ref = 'TP-001'"))
    after = _ask(app, "U0TOR00001", "action TP-001", "C0TOR00001")
    assert "Renamed by hand" in after.text and not after.cached
    assert after.text == _ask(fresh, "U0TOR00001", "action TP-001", "C0TOR00001").text


WRITES = [
    ("U0SEC00001", 'update TP-001 status=done note="Finished"'),
    ("U0SEC00001", 'update TP-002 rag=red note="Late"'),
    ("U0SEC00001", 'record-decision board=strategic decided_on=2026-11-19 title="A new decision"'),
    ("U0TOR00001", "ask strategic What is the plan for the data centre?"),
    ("U0SEC00001", "window close strategic 2026-12-03"),
    ("U0SEC00001", "window open strategic 2026-12-03"),
    ("U0SEC00001", "attendance strategic"),
    ("U0SEC00001", "remind overdue"),
]
"""Writing commands of several kinds (some refused: then nothing may change either way)."""


def test_every_write_that_changes_the_register_moves_the_version(
    app: ScrutinyApp, seed: Seed, engine: Engine, session: Session
) -> None:
    changed = 0

    def check(what: str, write: Any) -> None:
        nonlocal changed
        rows, version = _register(engine), _version(engine)
        write()
        moved = _version(engine) != version
        if _register(engine) != rows:
            changed += 1
            assert moved, f"{what} changed the register but not its version"

    for user, words in WRITES:
        check(words, lambda u=user, w=words: _ask(app, u, w))
    examples = [kind for kind in KINDS if (EXAMPLES / f"{kind}.csv").exists()]
    for kind in examples:

        def run_import(kind: str = kind) -> None:
            try:
                with unit_of_work(make_session_factory(engine)) as unit:
                    import_file(unit, kind, EXAMPLES / f"{kind}.csv", actor="test", now=NOW)
            except ImportRejected:
                pass  # refused whole: nothing changed, which `check` confirms

        check(f"import {kind}", run_import)
    for table in reversed(Base.metadata.sorted_tables):  # rows that others refer to last
        if table.name in UNVERSIONED:
            continue
        key = inspect(table).primary_key.columns[0]

        def touch(table: Any = table, key: Any = key) -> None:
            try:
                with engine.begin() as conn:
                    first = conn.scalar(select(key).order_by(key).limit(1))
                    if first is not None:
                        conn.execute(table.delete().where(key == first))
            except IntegrityError:
                pass  # still referred to: rolled back, nothing changed

        check(f"delete from {table.name}", touch)
    assert changed >= len(examples) + 3  # the property was exercised, not skipped


def test_every_table_answers_read_is_versioned(engine: Engine) -> None:
    triggered = {
        name
        for name in inspect(engine).get_table_names()
        if any("register_version" in t for t in _triggers(engine, name))
    }
    expected = {t.name for t in Base.metadata.sorted_tables} - UNVERSIONED
    assert expected <= triggered


def _triggers(engine: Engine, table: str) -> list[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            query = "SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass)"
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"
        return list(conn.scalars(text(query), {"t": table}))


def test_kept_commands_read_only_versioned_tables(app: ScrutinyApp, seed: Seed) -> None:
    kept = {c.name for c in app.commands.values() if c.cacheable}
    assert kept == set(SAMPLES), "give every kept command a sample request here"
    assert not {"history", "deliveries"} & kept
    for name, words in SAMPLES.items():
        for user in ("U0SEC00001", "U0TOR00001"):
            app.answers.size = 0  # read afresh, so the statements are the handler's own
            with counting(app.engine) as statements:
                _ask(app, user, words, "C0TOR00001")
            read = " ".join(statements).lower()
            for table in UNVERSIONED - {"register_version"}:
                assert f" {table}" not in read, (name, table)


def test_errors_and_forms_are_never_kept(app: ScrutinyApp, seed: Seed) -> None:
    for words in ("decision new", "decisions since 2026-13-45", "meetings torfaen"):
        first = _ask(app, "U0SEC00001", words)
        assert not _ask(app, "U0SEC00001", words).cached, (words, first.reply.template)


def test_the_cache_is_bounded(settings: Settings, engine: Engine, seed: Seed) -> None:
    app = create_app(settings.model_copy(update={"answer_cache_size": 2}), engine)
    for words in ("actions", "decisions", "meetings"):
        _ask(app, "U0TOR00001", words)
    assert len(app.answers) == 2
    assert _ask(app, "U0TOR00001", "meetings").cached
    assert not _ask(app, "U0TOR00001", "actions").cached


def test_a_unit_that_writes_has_no_version_to_keep_answers_under(engine: Engine) -> None:
    # Its own changes are not yet counted (PostgreSQL counts at commit) and may roll back.
    with unit_of_work(make_session_factory(engine)) as unit:
        assert register_version(unit) is None
    assert _version(engine) >= 0


@pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="PostgreSQL's concurrent writers"
)
def test_writers_that_commit_out_of_order_each_move_the_version(engine: Engine, seed: Seed) -> None:
    # The case `max(id)` of a table gets wrong: the later writer commits first.
    factory = make_session_factory(engine)
    earlier, later = factory(), factory()
    try:
        earlier.execute(text("UPDATE actions SET title = 'One' WHERE ref = 'TP-001'"))
        later.execute(text("UPDATE actions SET title = 'Two' WHERE ref = 'TP-002'"))
        start = _version(engine)
        later.commit()
        between = _version(engine)
        earlier.commit()
        assert start < between < _version(engine)
    finally:
        earlier.close()
        later.close()
