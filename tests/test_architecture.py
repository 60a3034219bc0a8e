"""The house rules, read from the source: no import circle in `bot/` and `handlers/`, chat SDKs
imported only under `bot/platforms/`, Microsoft Graph only by the Microsoft 365 module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.import_graph import (
    ImportLine,
    cycles,
    imports_of,
    module_files,
    one_circle,
    project_graph,
)

ROOT = Path(__file__).resolve().parent.parent
MODULES = module_files(ROOT, ("bot", "handlers"))

CHAT_SDKS = ("slack_bolt", "slack_sdk", "microsoft_teams")
"""Importable only by a platform's own folder."""
PLATFORMS = "bot.platforms"
GRAPH_SDKS = (
    "msgraph",
    "msgraph_core",
    "kiota_abstractions",
    "kiota_http",
    "kiota_authentication_azure",
)
"""Importable only by the Microsoft 365 module (calendars, SharePoint lists, sign-in)."""
MICROSOFT_365 = ("bot.microsoft365",)


def _external(prefixes: tuple[str, ...]) -> list[ImportLine]:
    return [
        line
        for name, path in MODULES.items()
        for line in imports_of(name, path)
        if line.target.split(".")[0] in prefixes
    ]


def _where(line: ImportLine) -> str:
    return f"{line.path.relative_to(ROOT)}:{line.line} imports {line.target}"


def test_the_project_has_no_import_circle() -> None:
    graph = project_graph(MODULES)
    found = cycles(graph)
    assert not found, "import circle(s): " + "; ".join(
        " -> ".join(one_circle(graph, component)) for component in found
    )


def test_chat_sdks_are_imported_only_by_their_platform() -> None:
    outside = [
        _where(line)
        for line in _external(CHAT_SDKS)
        if not (line.module == PLATFORMS or line.module.startswith(PLATFORMS + "."))
    ]
    assert not outside, "\n".join(outside)


def test_microsoft_graph_is_imported_only_by_the_microsoft_365_module() -> None:
    outside = [
        _where(line)
        for line in _external(GRAPH_SDKS)
        if not any(line.module == m or line.module.startswith(m + ".") for m in MICROSOFT_365)
    ]
    assert not outside, "\n".join(outside)


def test_the_platforms_package_is_imported_only_by_entry_points() -> None:
    """The core (domain, services, handlers, rendering, outbox) never reaches into a platform:
    a platform depends on the core, not the other way round."""
    entry_points = ("bot.cli", "bot.bootstrap", "bot.web")
    inward = [
        f"{MODULES[name].relative_to(ROOT)} imports {target}"
        for name, targets in project_graph(MODULES).items()
        for target in targets
        if target.startswith(PLATFORMS)
        and not name.startswith(PLATFORMS)
        and not any(name == e or name.startswith(e + ".") for e in entry_points)
    ]
    assert not inward, "\n".join(sorted(inward))


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}}, [["a", "b", "c"]]),
    ],
)
def test_the_circle_finder_finds_circles(
    graph: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert cycles(graph) == expected


def test_a_circle_is_shown_as_a_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert one_circle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
