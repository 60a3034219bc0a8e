"""Alembic environment: uses the engine handed over by `bot.db.migrate`, else DATABASE_URL."""

from __future__ import annotations

from alembic import context

from bot.models import Base

config = context.config
target_metadata = Base.metadata


def _include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # Full-text objects are created by hand in 0002 and are not in the models.
    if type_ == "table" and name is not None and "_fts" in name:
        return False
    return not (type_ == "column" and name == "search_vector")


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from bot.db import make_engine
        from bot.settings import load_settings

        engine = make_engine(load_settings().database_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            include_object=_include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
