"""A quiet command line: migrations log only when they change something. Commands that touch
an up-to-date database print no Alembic lines (noise in an operator's output and cron mail);
a database that is behind is upgraded and the log says what was run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.db import head_revision, make_engine, migrate, schema_revision

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "collaboration.example.yaml"


def _cli(url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("scrutiny-bot")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TEAMS_", "GRAPH_"))}
    # INFO is the default level, at which Alembic reports each migration it runs.
    env.update(DATABASE_URL=url, SCRUTINY_LANGUAGE="en", LOG_LEVEL="INFO")
    env.update(SCRUTINY_CONFIG=str(EXAMPLE))
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=180,
        check=False,
    )


def test_commands_on_an_up_to_date_database_print_no_migration_lines(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'quiet.db'}"
    first = _cli(url, tmp_path, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert "Database schema upgraded to the latest migration." in first.stdout
    assert "alembic.runtime.migration" in first.stderr
    assert "Running upgrade  -> 0001" in first.stderr and f"-> {head_revision()}," in first.stderr

    again = _cli(url, tmp_path, "db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert "Database schema is up to date." in again.stdout
    assert "alembic" not in again.stderr

    loaded = _cli(url, tmp_path, "config", "load", str(EXAMPLE))
    assert loaded.returncode == 0, loaded.stderr
    assert "alembic" not in loaded.stderr

    decisions = REPO / "config" / "example" / "decisions.csv"
    imported = _cli(url, tmp_path, "import", "decisions", str(decisions))
    assert imported.returncode == 0, imported.stderr
    assert "alembic" not in imported.stderr and "INFO" not in imported.stderr


def test_a_database_behind_is_upgraded_and_the_log_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    engine = make_engine(url)
    migrate(engine, "0006")
    assert schema_revision(engine) == "0006"
    engine.dispose()

    upgraded = _cli(url, tmp_path, "config", "load", str(EXAMPLE))
    assert upgraded.returncode == 0, upgraded.stderr
    ran = [line for line in upgraded.stderr.splitlines() if "Running upgrade" in line]
    assert ran, upgraded.stderr
    assert "Running upgrade 0006 -> " in ran[0] and f"-> {head_revision()}," in ran[-1]
    assert "Running upgrade  -> 0001" not in upgraded.stderr
    engine = make_engine(url)
    assert schema_revision(engine) == head_revision()
    engine.dispose()
