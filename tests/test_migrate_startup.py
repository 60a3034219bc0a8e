"""Starting on a database already at the newest migration does not load Alembic; one behind
is brought up to date."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import Engine, text

from bot.db import head_revision

CHECK = """
import sys
from bot.db import make_engine, migrate
migrate(make_engine(sys.argv[1]))
print("alembic" in sys.modules)
"""


def _alembic_loaded(url: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", CHECK, url], capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1] == "True"


def test_a_database_at_the_head_is_opened_without_alembic(
    engine: Engine, database_url: str
) -> None:
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            head_revision()
        )
    assert not _alembic_loaded(database_url)


def test_a_database_behind_the_head_is_migrated(engine: Engine, database_url: str) -> None:
    from alembic import command

    from bot.db import alembic_config

    command.downgrade(alembic_config(engine), "-1")
    assert _alembic_loaded(database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
            head_revision()
        )
