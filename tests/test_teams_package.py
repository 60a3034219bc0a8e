"""`scrutiny-bot teams package`: the zip validates against the Teams app manifest schema kept in
tests/data/schemas, its icons are the sizes Teams asks for, every file it names is in it, and
it is refused, naming the setting, when a setting it needs is missing."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from bot.cli import cli
from bot.collaboration import load_collaboration
from bot.platforms.teams import app_package
from bot.platforms.teams.app_package import (
    ASK_COMMAND_ID,
    BOT_COMMANDS,
    FIND_COMMAND_ID,
    MANIFEST_VERSION,
    WELSH_TITLES,
    PackageRefused,
    build_package,
    registered_commands,
)
from bot.settings import DEFAULT_CONFIG, Settings, load_settings

SCHEMAS = Path(__file__).parent / "data" / "schemas"
APP_ID = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
BASE = "https://scrutiny.srs.example.gov.uk"
READY = {
    "teams_app_id": APP_ID,
    "web_base_url": BASE,
    "teams_privacy_url": "https://www.srs.example.gov.uk/privacy",
    "teams_terms_url": "https://www.srs.example.gov.uk/terms",
    "teams_app_version": "1.4.0",
}
runner = CliRunner()


def _validator(name: str) -> jsonschema.Draft4Validator:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    # The schema says draft-04 but pins manifestVersion with draft-06's `const`; checked below.
    return jsonschema.Draft4Validator(schema)


MANIFEST_SCHEMA = _validator(f"teams-manifest-{MANIFEST_VERSION}.json")
LOCALIZATION_SCHEMA = _validator(f"teams-localization-{MANIFEST_VERSION}.json")


def _settings(**overrides: Any) -> Settings:
    return load_settings(**{**READY, **overrides})


def _package(**overrides: Any) -> dict[str, bytes]:
    data = build_package(_settings(**overrides), load_collaboration(DEFAULT_CONFIG))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def _errors(validator: jsonschema.Draft4Validator, document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def _png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Width, height, colour type and rows of an 8-bit PNG (filter 0 rows only, as written)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, {}
    idat = b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks[kind] = body
        if kind == b"IDAT":
            idat += body
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8
    raw = zlib.decompress(idat)
    stride = width * 4 + 1
    rows = [raw[i * stride + 1 : (i + 1) * stride] for i in range(height)]
    return width, height, colour, rows


@pytest.mark.parametrize("language", ["en", "cy"])
def test_the_package_validates_against_the_manifest_schema(language: str) -> None:
    files = _package(scrutiny_language=language)
    manifest = json.loads(files["manifest.json"])
    assert _errors(MANIFEST_SCHEMA, manifest) == []
    assert manifest["manifestVersion"] == MANIFEST_VERSION
    assert manifest["$schema"].endswith(f"/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json")
    other = "cy" if language == "en" else "en"
    assert manifest["localizationInfo"]["additionalLanguages"] == [
        {"languageTag": {"en": "en-gb", "cy": "cy"}[other], "file": f"{other}.json"}
    ]
    strings = json.loads(files[f"{other}.json"])
    assert _errors(LOCALIZATION_SCHEMA, strings) == []


def test_every_file_the_manifest_names_is_in_the_zip_and_nothing_else() -> None:
    files = _package()
    manifest = json.loads(files["manifest.json"])
    named = {
        manifest["icons"]["color"],
        manifest["icons"]["outline"],
        *(extra["file"] for extra in manifest["localizationInfo"]["additionalLanguages"]),
    }
    assert set(files) == {"manifest.json", *named}


def test_icons_are_the_sizes_teams_asks_for_and_the_outline_is_white_on_transparent() -> None:
    files = _package()
    width, height, colour, _rows = _png(files["color.png"])
    assert (width, height) == (192, 192)
    width, height, colour, rows = _png(files["outline.png"])
    assert (width, height, colour) == (32, 32, 6)
    pixels = [row[i : i + 4] for row in rows for i in range(0, len(row), 4)]
    assert all(p[:3] == b"\xff\xff\xff" for p in pixels)
    alphas = {p[3] for p in pixels}
    assert 0 in alphas and 255 in alphas, "a glyph on a transparent background"


def test_the_manifest_carries_the_bot_the_message_extension_and_the_tabs() -> None:
    manifest = json.loads(_package()["manifest.json"])
    assert manifest["id"] == APP_ID and manifest["version"] == "1.4.0"
    (bot,) = manifest["bots"]
    assert bot["botId"] == APP_ID
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    personal = bot["commandLists"][0]
    assert personal["scopes"] == ["personal"]
    assert [c["title"] for c in personal["commands"]] == list(BOT_COMMANDS)
    home = next(c for c in personal["commands"] if c["title"] == "home")
    assert home["description"] == registered_commands()["home"].summary
    (extension,) = manifest["composeExtensions"]
    ask, find = extension["commands"]
    assert (ask["id"], ask["type"], ask["context"], ask["fetchTask"]) == (
        ASK_COMMAND_ID,
        "action",
        ["message"],
        True,
    )
    assert ask["title"] == "Ask as a scrutiny question"
    assert (find["id"], find["type"]) == (FIND_COMMAND_ID, "query")
    home_tab = manifest["staticTabs"][0]
    assert home_tab["contentUrl"] == f"{BASE}/teams/home"
    assert home_tab["scopes"] == ["personal"]
    (register_tab,) = manifest["configurableTabs"]
    assert register_tab["configurationUrl"] == f"{BASE}/teams/register/config"
    assert set(register_tab["scopes"]) == {"team", "groupChat"}
    assert manifest["validDomains"] == ["scrutiny.srs.example.gov.uk"]
    assert manifest["webApplicationInfo"]["id"] == APP_ID
    assert manifest["developer"]["name"] == "Shared Resource Service"


def test_welsh_strings_come_from_the_welsh_catalogue() -> None:
    files = _package(scrutiny_language="en")
    welsh = json.loads(files["cy.json"])
    assert welsh["composeExtensions[0].commands[0].title"] != "Ask as a scrutiny question"
    titles = [welsh[f"bots[0].commandLists[0].commands[{i}].title"] for i in range(7)]
    assert titles == [WELSH_TITLES[name] for name in BOT_COMMANDS]
    manifest_cy = json.loads(_package(scrutiny_language="cy")["manifest.json"])
    assert manifest_cy["developer"]["name"] == "Gwasanaeth Adnoddau a Rennir"
    assert manifest_cy["localizationInfo"]["defaultLanguageTag"] == "cy"
    assert (
        manifest_cy["composeExtensions"][0]["commands"][0]["title"]
        == welsh["composeExtensions[0].commands[0].title"]
    )


def test_each_welsh_title_is_an_alias_the_bot_understands() -> None:
    commands = registered_commands()
    for name, welsh in WELSH_TITLES.items():
        assert welsh in commands[name].aliases, name


def test_the_same_settings_make_the_same_bytes() -> None:
    settings = _settings()
    collaboration = load_collaboration(DEFAULT_CONFIG)
    assert build_package(settings, collaboration) == build_package(settings, collaboration)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"teams_app_id": None}, "TEAMS_APP_ID is not set"),
        ({"teams_app_id": "my-bot"}, "TEAMS_APP_ID 'my-bot' is not an application id"),
        ({"web_base_url": "http://127.0.0.1:3000"}, "WEB_BASE_URL must be"),
        ({"teams_privacy_url": None}, "TEAMS_PRIVACY_URL is not set"),
        ({"teams_terms_url": None}, "TEAMS_TERMS_URL is not set"),
    ],
)
def test_a_missing_setting_is_refused_by_name(overrides: dict[str, Any], named: str) -> None:
    with pytest.raises(PackageRefused) as refused:
        _package(**overrides)
    assert named in str(refused.value)


def test_the_default_base_url_is_refused_even_though_it_is_set_by_default() -> None:
    settings = load_settings(**{k: v for k, v in READY.items() if k != "web_base_url"})
    with pytest.raises(PackageRefused, match="WEB_BASE_URL"):
        app_package.app_facts(settings, load_collaboration(DEFAULT_CONFIG))


def test_the_command_writes_the_zip_or_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCRUTINY_LANGUAGE", "en")
    for name in ("TEAMS_APP_ID", "TEAMS_PRIVACY_URL", "TEAMS_TERMS_URL", "WEB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    refused = runner.invoke(cli, ["teams", "package"])
    assert refused.exit_code == 2
    assert "TEAMS_APP_ID is not set" in refused.stderr
    assert not (tmp_path / "scrutiny-teams-app.zip").exists()

    for name, value in READY.items():
        monkeypatch.setenv(name.upper(), value)
    out = tmp_path / "app.zip"
    written = runner.invoke(cli, ["teams", "package", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert str(out) in written.stdout
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert _errors(MANIFEST_SCHEMA, manifest) == []
