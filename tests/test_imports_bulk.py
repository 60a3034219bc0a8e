"""Bulk imports write what the per-row path wrote: the same audit trail (built by one
INSERT ... SELECT from the new rows) and, on SQLite, the same full-text index (filled once
for a first import into an empty table, instead of by trigger per row)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, Table, delete, select, text
from sqlalchemy.orm import Session

from bot.db import insert_rows, make_session_factory, unit_of_work
from bot.imports import KINDS, import_file
from bot.imports.base import Kind
from bot.models import Action, AuditEvent, Base, Decision
from bot.services.search import match
from tests.conftest import NOW
from tests.factories import Seed

LONDON = ZoneInfo("Europe/London")
THEMES = ["SharePoint migration", "Cyber security", "Telephony", "Data centre move"]
WELSH = ["Symud canolfan ddata", "Diogelwch seiber", "", "Ffôn a rhwydwaith"]


def write_csv(path: Path, kind: str, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(KINDS[kind].columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def actions(n: int) -> list[dict[str, str]]:
    """Actions using every column and both kinds of blank (NULL and empty text or list)."""
    return [
        {
            "ref": f"TP-{500 + i}",
            "title": f"{THEMES[i % 4]}: work package {i} for Gwent’s partners",
            "owner_partner": ["torfaen", "newport", "gwent-police", "srs"][i % 4],
            "owner": ["S. Hughes", "", "Dafydd ap Gwilym"][i % 3],
            "due_date": "" if i % 5 == 0 else f"2027-0{1 + i % 9}-1{i % 10}",
            "status": ["in-progress", "done", "", "blocked"][i % 4],
            "rag": ["red", "", "amber", "green"][i % 4],
            "theme": THEMES[i % 4],
            "marking": "official-sensitive" if i % 7 == 0 else "official",
            "exempt_paragraph": "14" if i % 6 == 0 else "",
            "restricted_to": "gwent-police;torfaen" if i % 8 == 0 else "",
            "last_update": f"Survey {i} done; cables “replaced” next month.",
            "title_cy": WELSH[i % 4],
            "decisions": "SB-2026-031 SB-2026-032" if i % 3 == 0 else "",
        }
        for i in range(n)
    ]


def decisions(n: int) -> list[dict[str, str]]:
    return [
        {
            "ref": f"{['SB', 'FG', 'BC'][i % 3]}-2027-{i + 1:03d}",
            "board": ["strategic", "finance-governance", "business-collaboration"][i % 3],
            "decided_on": f"2027-02-{1 + i % 28:02d}",
            "title": f"Agreed item {i} on {THEMES[i % 4].lower()}",
            "summary": "" if i % 4 == 0 else "The board agreed the recommendation.",
            "marking": "official",
            "exempt_paragraph": "12" if i % 9 == 0 else "",
            "restricted_to": "gwent-police" if i % 10 == 0 else "",
            "partners": "" if i % 5 == 0 else "newport;torfaen",
            "link": f"https://democracy.torfaen.gov.uk/documents/s{6000 + i}/Report.pdf",
            "title_cy": WELSH[i % 4],
            "summary_cy": "Cytunodd y bwrdd." if i % 2 else "",
        }
        for i in range(n)
    ]


def per_row_events(session: Session, kind: str, model: type[Base]) -> list[tuple[Any, ...]]:
    """The create events the per-row path writes: each new row's values through the kind's
    `audit_view`, keyed in the order its rows are built (identity, defaults, the rest)."""
    importer: Kind = KINDS[kind](session, LONDON, NOW)
    importer.load()
    keys = ["ref", *importer.defaults()]
    keys += [field for field in importer.fields if field not in keys]
    rows = session.scalars(select(model).order_by(model.id)).all()  # type: ignore[attr-defined]
    return [
        (
            "bulk",
            "import.create",
            importer.entity,
            row.ref,
            None,
            list(importer.audit_view({key: getattr(row, key) for key in keys}).items()),
        )
        for row in rows
    ]


def written_events(session: Session) -> list[tuple[Any, ...]]:
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert len({event.at for event in events}) == 1
    return [
        (e.actor, e.verb, e.entity, e.entity_ref, e.before, list((e.after or {}).items()))
        for e in events
    ]


@pytest.mark.parametrize(
    ("kind", "model", "rows"), [("actions", Action, actions), ("decisions", Decision, decisions)]
)
def test_bulk_audit_trail_is_what_the_per_row_path_writes(
    engine: Engine, seed: Seed, tmp_path: Path, kind: str, model: type[Base], rows: Any
) -> None:
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        session.execute(delete(AuditEvent))
        before = set(session.scalars(select(model.ref)))  # type: ignore[attr-defined]
    path = write_csv(tmp_path / f"{kind}.csv", kind, rows(60))
    with unit_of_work(sessions) as session:
        report = import_file(session, kind, path, actor="bulk", now=NOW)
    assert report.created == 60
    with sessions() as session:
        expected = [
            event for event in per_row_events(session, kind, model) if event[3] not in before
        ]
        assert len(expected) == 60
        assert written_events(session) == expected


def test_bulk_audit_trail_sits_beside_the_updates_of_the_same_file(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    rows = actions(3)
    path = write_csv(tmp_path / "actions.csv", "actions", rows)
    import_file(session, "actions", path, actor="bulk", now=NOW)
    rows[1]["title"] = "Renamed"
    rows.append({**rows[0], "ref": "TP-600"})
    import_file(session, "actions", write_csv(path, "actions", rows), actor="bulk", now=NOW)
    session.commit()
    trail = [
        (e.verb, e.entity_ref, e.before, e.after and e.after.get("title"))
        for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
    ]
    assert trail[3:] == [
        ("import.create", "TP-600", None, rows[0]["title"]),
        ("import.update", "TP-501", {"title": actions(3)[1]["title"]}, "Renamed"),
    ]


def search_results(session: Session) -> dict[str, list[tuple[str, float]]]:
    """For words in every indexed column, the matching refs with their scores, best first."""
    results = {}
    for words in [
        "sharepoint",
        "package 7",
        "gwent",
        "cables replaced",
        "dafydd",
        "survey",
        "seiber",
        "canolfan ddata",
        "telephony",
        "hughes",
    ]:
        found = match(session, "actions", words)
        assert found is not None
        statement = (
            select(Action.ref, found.c.score)
            .join(found, found.c.id == Action.id)
            .order_by(found.c.score.desc(), Action.ref)
        )
        results[words] = [(ref, score) for ref, score in session.execute(statement)]
    return results


def index_is_sound(session: Session) -> None:
    if session.get_bind().dialect.name == "sqlite":
        # With rank 1, FTS5 checks the index against the table it indexes.
        session.execute(
            text("INSERT INTO actions_fts(actions_fts, rank) VALUES ('integrity-check', 1)")
        )


def test_first_import_indexes_for_search_as_the_per_row_triggers_do(
    engine: Engine, seed: Seed, tmp_path: Path
) -> None:
    sessions = make_session_factory(engine)
    path = write_csv(tmp_path / "actions.csv", "actions", actions(40))
    with unit_of_work(sessions) as session:
        session.execute(delete(Action))
    # In a unit of work (a transaction from the start), into an empty table: indexed once.
    with unit_of_work(sessions) as session:
        import_file(session, "actions", path, actor="bulk", now=NOW)
    with unit_of_work(sessions) as session:
        index_is_sound(session)
        filled_once = search_results(session)
    with unit_of_work(sessions) as session:
        session.execute(delete(Action))
        index_is_sound(session)
    # A plain session has no transaction until its first write: the triggers index each row.
    with sessions() as session:
        import_file(session, "actions", path, actor="bulk", now=NOW)
        session.commit()
        index_is_sound(session)
        assert search_results(session) == filled_once
    assert [words for words, found in filled_once.items() if not found] == []
    # The trigger is back: a row added later is found.
    rows = [*actions(40), {**actions(1)[0], "ref": "TP-900", "title": "Quokka census"}]
    with unit_of_work(sessions) as session:
        import_file(session, "actions", write_csv(path, "actions", rows), actor="bulk", now=NOW)
    with sessions() as session:
        found = match(session, "actions", "quokka")
        assert found is not None
        assert session.scalars(select(Action.ref).join(found, found.c.id == Action.id)).all() == [
            "TP-900"
        ]


def test_a_row_added_after_a_first_import_in_the_same_transaction_is_indexed(
    engine: Engine, seed: Seed, tmp_path: Path
) -> None:
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        session.execute(delete(Action))
    with unit_of_work(sessions) as session:
        path = write_csv(tmp_path / "actions.csv", "actions", actions(5))
        import_file(session, "actions", path, actor="bulk", now=NOW)
        session.add(
            Action(ref="TP-901", title="Quokka census", owner_partner_id=seed.partners["srs"].id)
        )
    with sessions() as session:
        index_is_sound(session)
        found = match(session, "actions", "quokka")
        assert found is not None
        assert session.scalars(select(Action.ref).join(found, found.c.id == Action.id)).all() == [
            "TP-901"
        ]


def test_copy_stores_what_the_executemany_path_stores(
    engine: Engine, session: Session, seed: Seed, tmp_path: Path
) -> None:
    """On PostgreSQL `insert_rows` writes by COPY: every column of imported actions and
    decisions and of their audit rows (new and changed) reads back the same either way."""
    if engine.dialect.name != "postgresql":
        pytest.skip("COPY is PostgreSQL's; SQLite inserts by executemany either way")
    first, changed = actions(40), actions(40)
    for row in changed[::3]:
        row["title"] += " (revised)"
    for path, rows in (("a.csv", first), ("b.csv", changed)):
        with unit_of_work(make_session_factory(engine)) as unit:
            import_file(unit, "actions", write_csv(tmp_path / path, "actions", rows), actor="x")
    with unit_of_work(make_session_factory(engine)) as unit:
        path = write_csv(tmp_path / "d.csv", "decisions", decisions(30))
        import_file(unit, "decisions", path, actor="x")
    connection = session.connection()
    for model in (Action, Decision, AuditEvent):
        table = cast(Table, model.__table__)
        stored = [c for c in table.c if c.computed is None]
        everything = select(*stored).order_by(table.c.id)
        original = [dict(row._mapping) for row in connection.execute(everything)]
        assert len(original) >= 30
        for copy in (True, False):
            connection.execute(delete(table))
            insert_rows(connection, table, original, copy=copy)
            again = [dict(row._mapping) for row in connection.execute(everything)]
            assert again == original, (table.name, copy)
    # The generated search column is filled from COPY'd rows as from inserted ones.
    revised = match(session, "actions", "revised", scored=False)
    assert revised is not None
    assert len(connection.execute(select(revised.c.id)).all()) == len(changed[::3])
    session.rollback()
