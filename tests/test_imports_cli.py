"""`scrutiny-bot import KIND FILE [--dry-run]`: exit codes, messages, and an unchanged database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from bot.cli import cli
from bot.models import Action, AuditEvent
from tests.factories import Seed
from tests.test_imports import ACTION_HEADER, action, write_csv

runner = CliRunner()


@pytest.fixture(autouse=True)
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SCRUTINY_LANGUAGE", "en")


def counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        actions = conn.scalar(select(func.count()).select_from(Action))
        events = conn.scalar(select(func.count()).select_from(AuditEvent))
    return actions or 0, events or 0


def test_a_good_file_is_imported_and_summarised(engine: Engine, seed: Seed, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "actions.csv",
        ACTION_HEADER,
        [action(), action(ref="TP-001", owner_partner="torfaen", title="Changed")],
    )
    before = counts(engine)
    result = runner.invoke(cli, ["import", "actions", str(path)])
    assert result.exit_code == 0, result.output
    assert "Imported actions.csv: 1 created, 1 updated, 0 unchanged." in result.stdout
    assert counts(engine) == (before[0] + 1, before[1] + 2)

    again = runner.invoke(cli, ["import", "actions", str(path)])
    assert "Imported actions.csv: 0 created, 0 updated, 2 unchanged." in again.stdout
    assert counts(engine) == (before[0] + 1, before[1] + 2)


def test_one_bad_row_means_exit_1_every_problem_listed_and_nothing_written(
    engine: Engine, seed: Seed, tmp_path: Path
) -> None:
    rows = [action(ref=f"TP-3{i:02d}") for i in range(60)]
    rows[1]["due_date"] = "31/02/2026"
    rows[40]["owner_partner"] = "torfean"
    rows[59]["status"] = "finito"
    path = write_csv(tmp_path / "actions.csv", ACTION_HEADER, rows)
    before = counts(engine)
    result = runner.invoke(cli, ["import", "actions", str(path)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-4:] == [
        'actions.csv line 3, due_date "31/02/2026": not a date; use YYYY-MM-DD (e.g. 2026-02-28).',
        'actions.csv line 42, owner_partner "torfean": unknown partner; use one of blaenau-gwent, '
        'monmouthshire, newport, torfaen, gwent-police, srs (did you mean "torfaen"?)',
        'actions.csv line 61, status "finito": not an allowed value; use one of not-started, '
        "in-progress, blocked, done, cancelled.",
        "Nothing was imported (3 problems in 60 rows).",
    ]
    assert counts(engine) == before


def test_dry_run_says_what_it_would_do_and_writes_nothing(
    engine: Engine, seed: Seed, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "actions.csv", ACTION_HEADER, [action()])
    before = counts(engine)
    result = runner.invoke(cli, ["import", "actions", str(path), "--dry-run"])
    assert result.exit_code == 0
    assert "Dry run: would import actions.csv: 1 created, 0 updated, 0 unchanged." in result.stdout
    assert counts(engine) == before


def test_large_files_show_progress_on_stderr(engine: Engine, seed: Seed, tmp_path: Path) -> None:
    rows = [action(ref=f"TP-{i:05d}") for i in range(1200)]
    path = write_csv(tmp_path / "actions.csv", ACTION_HEADER, rows)
    result = runner.invoke(cli, ["import", "actions", str(path)])
    assert result.exit_code == 0
    assert "\ractions.csv: 1000 of 1200 rows checked" in result.stderr
    assert "\ractions.csv: 1200 of 1200 rows checked\n" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["import", "widgets", "x.csv"],
            'Unknown kind "widgets": use one of actions, decisions, meetings, answers, attendance.',
        ),
        (
            ["import", "actions", "x.ics"],
            "x.ics: actions can be imported from .csv, .xlsx files only.",
        ),
        (["import", "meetings", "missing.csv"], "missing.csv: no such file."),
    ],
)
def test_usage_mistakes_exit_2(seed: Seed, args: list[str], message: str) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_an_empty_collaboration_is_refused(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "actions.csv", ACTION_HEADER, [action()])
    result = runner.invoke(cli, ["import", "actions", str(path)])
    assert result.exit_code == 1
    assert "Load the collaboration first: scrutiny-bot config load" in result.stderr
    assert counts(engine) == (0, 0)


def test_problems_start_on_their_own_line_after_progress(seed: Seed, tmp_path: Path) -> None:
    rows = [action(ref=f"TP-{i:05d}") for i in range(1500)]
    rows[-1]["rag"] = "purple"
    path = write_csv(tmp_path / "actions.csv", ACTION_HEADER, rows)
    result = runner.invoke(cli, ["import", "actions", str(path)])
    assert result.exit_code == 1
    assert "\ractions.csv: 1000 of 1500 rows checked\nactions.csv line 1501, rag" in result.stderr
