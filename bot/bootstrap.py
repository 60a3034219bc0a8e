"""First-run preparation: schema, the collaboration file, example records on an empty database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from bot.app import ScrutinyApp, create_app
from bot.collaboration.apply import apply_collaboration
from bot.collaboration.load import load_collaboration
from bot.db import make_engine, migrate, unit_of_work
from bot.i18n import _
from bot.imports import import_file
from bot.models import Action, Decision, Meeting, Partner
from bot.settings import Settings

EXAMPLE_KINDS = ("meetings", "decisions", "actions", "attendance")
"""Import order: decisions refer to meetings by date."""


def example_dir(settings: Settings) -> Path:
    """Example records sit beside the collaboration file, in `example/`."""
    return settings.scrutiny_config.parent / "example"


def prepare(settings: Settings, *, say: Callable[[str], None] = print) -> ScrutinyApp:
    """Migrate, load the collaboration file, and on an empty register import the example records.

    The collaboration file is applied on every start so edits to it take effect; the example
    records are imported only while the register holds no meetings, decisions or actions.
    """
    engine = make_engine(settings.database_url)
    migrate(engine)
    app = create_app(settings, engine)
    collaboration = load_collaboration(settings.scrutiny_config)
    with unit_of_work(app.sessions) as session:
        first_run = session.scalar(select(func.count()).select_from(Partner)) == 0
        apply_collaboration(session, collaboration, actor="bootstrap")
        if first_run:
            say(_("Loaded the collaboration from {path}.").format(path=settings.scrutiny_config))
    records = example_dir(settings)
    with unit_of_work(app.sessions) as session:
        empty = all(
            session.scalar(select(func.count()).select_from(model)) == 0
            for model in (Meeting, Decision, Action)
        )
        if empty and records.is_dir():
            for kind in EXAMPLE_KINDS:
                path = records / f"{kind}.csv"
                if path.exists():
                    report = import_file(session, kind, path, actor="bootstrap")
                    say(
                        _("Imported {count} {kind} from {path}.").format(
                            count=report.rows, kind=kind, path=path
                        )
                    )
    return app
