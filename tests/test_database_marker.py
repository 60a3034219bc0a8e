"""CI's PostgreSQL leg runs only tests marked `database` (`-m database`): the mark must follow
the fixtures, however indirectly a test reaches the test database."""

from __future__ import annotations

import pytest

from bot.app import ScrutinyApp


def test_a_test_reaching_the_database_through_the_app_is_marked(
    app: ScrutinyApp, request: pytest.FixtureRequest
) -> None:
    assert request.node.get_closest_marker("database") is not None


@pytest.mark.postgres
def test_a_postgres_test_is_marked(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("database") is not None


def test_a_test_without_the_database_is_not_marked(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("database") is None
