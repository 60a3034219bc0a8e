"""The Teams app package an administrator uploads: manifest.json, its icons and its strings.

`build_package` returns the zip; `scrutiny-bot teams package` writes it. The manifest follows
the Teams app manifest schema version `MANIFEST_VERSION` (a copy is kept in
`tests/data/schemas/` and the tests validate every package against it). Everything in it comes
from the settings (the bot's app id, where the register is served, the notices) and the
collaboration file (its name), so one command makes the package for any deployment.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bot.collaboration import Collaboration
from bot.context import Command
from bot.i18n import N_, _, translations
from bot.settings import Settings

MANIFEST_VERSION = "1.29"
SCHEMA_URL = (
    f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/"
    "MicrosoftTeams.schema.json"
)
LOCALIZATION_SCHEMA_URL = (
    f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/"
    "MicrosoftTeams.Localization.schema.json"
)
COLOR_ICON = "color.png"
OUTLINE_ICON = "outline.png"
ACCENT = (0x1F, 0x5F, 0x8B)
"""The icon's background and the app's accent colour (a dark blue with white at 7:1)."""
LANGUAGE_TAGS = {"en": "en-gb", "cy": "cy"}

HOME_TAB_PATH = "/teams/home"
REGISTER_TAB_CONFIG_PATH = "/teams/register/config"
ASK_COMMAND_ID = "askQuestion"
"""The message extension's action command: "Ask as a scrutiny question" on a message."""
FIND_COMMAND_ID = "findRecord"
"""The message extension's search command: a decision or action into the conversation."""
FIND_PARAMETER = "words"

BOT_COMMANDS = ("help", "home", "ask", "actions", "decisions", "meetings", "find")
"""The commands the bot offers in Teams' command menu, in this order (the few that matter)."""
GROUP_COMMANDS = ("help", "ask", "actions", "decisions", "meetings", "find")
"""In a team or group chat `home` is left out: the overview is the member's own."""

WELSH_TITLES = {
    "help": "cymorth",
    "home": "cartref",
    "ask": "gofyn",
    "actions": "camau",
    "decisions": "penderfyniadau",
    "meetings": "cyfarfodydd",
    "find": "chwilio",
}
"""The Welsh alias each command shows under in Welsh (the router accepts both words)."""

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

# The manifest's words. Each is a gettext message id, translated for the manifest's language and
# for the localisation file of the other one.
NAME_FULL = N_("{collaboration}: joint scrutiny")
DESCRIPTION_SHORT = N_("Board decisions, actions, meetings and joint scrutiny questions.")
DESCRIPTION_FULL = N_(
    "The {collaboration}'s scrutiny bot: ask about board decisions and tactical-plan actions, "
    "see what is overdue or due soon for your partner, and ask the boards questions jointly "
    "with the other partners while a meeting's question window is open. Channels get digests "
    "of new decisions and actions, each seeing only what its clearance allows. The Home tab "
    "shows your own overview; a team can pin the register of decisions, actions and meetings "
    "as a tab."
)
HOME_TAB_NAME = N_("Home")
ASK_TITLE = N_("Ask as a scrutiny question")
ASK_DESCRIPTION = N_("Turn this message into a question for a board meeting.")
FIND_TITLE = N_("Find a decision or action")
FIND_DESCRIPTION = N_("Insert a board decision or an action into the conversation.")
FIND_PARAMETER_TITLE = N_("Reference or words")
FIND_PARAMETER_DESCRIPTION = N_("A reference such as SB-2026-014 or TP-036, or words to find.")


class PackageRefused(Exception):
    """The package cannot be made; the message names the setting and how to set it."""


@dataclass(frozen=True)
class AppFacts:
    """What the manifest is made from, checked."""

    app_id: str
    base_url: str
    host: str
    version: str
    developer: str
    developer_cy: str
    short_name: str
    privacy_url: str
    terms_url: str


def app_facts(settings: Settings, collaboration: Collaboration) -> AppFacts:
    """The checked inputs, or PackageRefused naming every missing or unusable setting."""
    problems: list[str] = []
    app_id = (settings.teams_app_id or "").strip()
    if not app_id:
        problems.append(
            _(
                "TEAMS_APP_ID is not set: set it to the bot's Microsoft Entra application "
                "(client) id, shown on the Azure Bot resource's Configuration page."
            )
        )
    elif not _GUID.match(app_id):
        problems.append(
            _(
                "TEAMS_APP_ID {value!r} is not an application id: copy the GUID "
                "(such as 00000000-0000-0000-0000-000000000000) from the Azure Bot resource."
            ).format(value=app_id)
        )
    base = settings.chat_links_base
    if base is None or urlsplit(base).scheme != "https":
        problems.append(
            _(
                "WEB_BASE_URL must be the register's public https address (Teams opens tabs "
                "only over https): set it to e.g. https://scrutiny.example.gov.uk."
            )
        )
    for name, value in (
        ("TEAMS_PRIVACY_URL", settings.teams_privacy_url),
        ("TEAMS_TERMS_URL", settings.teams_terms_url),
    ):
        if not value:
            problems.append(
                _(
                    "{name} is not set: Teams shows it on the app's details page; set it to "
                    "the https address of the collaboration's notice."
                ).format(name=name)
            )
    if problems:
        raise PackageRefused(
            _("The Teams app package was not written:")
            + "\n  "
            + "\n  ".join(problems)
            + "\n"
            + _("Set them in the environment or .env (see docs/teams.md).")
        )
    info = collaboration.collaboration
    base = base or ""
    return AppFacts(
        app_id=app_id.lower(),
        base_url=base,
        host=urlsplit(base).netloc,
        version=settings.teams_app_version,
        developer=_fit(info.name, 32),
        developer_cy=_fit(info.name_cy, 32),
        short_name=_fit(settings.teams_bot_name, 30),
        privacy_url=settings.teams_privacy_url or "",
        terms_url=settings.teams_terms_url or "",
    )


def _fit(text: str, limit: int) -> str:
    """Text cut to the manifest field's limit (on a word where it can be)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def registered_commands() -> dict[str, Command]:
    """The bot's commands by name, as the handlers register them."""
    from handlers import ROUTERS

    return {command.name: command for router in ROUTERS for command in router.commands}


@dataclass(frozen=True)
class Words:
    """The manifest's strings in one language."""

    language: str
    facts: AppFacts

    def gettext(self, message: str) -> str:
        """`message` in this language."""
        return translations(self.language).gettext(message)

    @property
    def collaboration(self) -> str:
        """The collaboration's name in this language."""
        return self.facts.developer_cy if self.language == "cy" else self.facts.developer

    def localizable(self, commands: dict[str, Command]) -> dict[str, str]:
        """Every string the localisation schema lets a language file replace, by its key."""
        strings = {
            "name.short": self.facts.short_name,
            "name.full": _fit(
                self.gettext(NAME_FULL).format(collaboration=self.collaboration), 100
            ),
            "description.short": _fit(self.gettext(DESCRIPTION_SHORT), 80),
            "description.full": _fit(
                self.gettext(DESCRIPTION_FULL).format(collaboration=self.collaboration), 4000
            ),
            "staticTabs[0].name": self.gettext(HOME_TAB_NAME),
            "composeExtensions[0].commands[0].title": _fit(self.gettext(ASK_TITLE), 32),
            "composeExtensions[0].commands[0].description": _fit(
                self.gettext(ASK_DESCRIPTION), 128
            ),
            "composeExtensions[0].commands[1].title": _fit(self.gettext(FIND_TITLE), 32),
            "composeExtensions[0].commands[1].description": _fit(
                self.gettext(FIND_DESCRIPTION), 128
            ),
            "composeExtensions[0].commands[1].parameters[0].title": _fit(
                self.gettext(FIND_PARAMETER_TITLE), 32
            ),
            "composeExtensions[0].commands[1].parameters[0].description": _fit(
                self.gettext(FIND_PARAMETER_DESCRIPTION), 128
            ),
        }
        for index, names in enumerate(_command_lists()):
            for position, name in enumerate(names):
                title, description = self.command(commands[name])
                key = f"bots[0].commandLists[{index}].commands[{position}]"
                strings[f"{key}.title"] = title
                strings[f"{key}.description"] = description
        return strings

    def command(self, command: Command) -> tuple[str, str]:
        """A command's title (its Welsh alias in Welsh, when it has one) and its summary."""
        title = command.name
        if self.language == "cy" and WELSH_TITLES.get(command.name) in command.aliases:
            title = WELSH_TITLES[command.name]
        return title, _fit(self.gettext(command.summary), 4000)


def _command_lists() -> list[tuple[str, ...]]:
    """The bot's command lists in manifest order: personal, then team and group chat."""
    return [BOT_COMMANDS, GROUP_COMMANDS, GROUP_COMMANDS]


_LIST_SCOPES = (["personal"], ["team"], ["groupChat"])


def build_manifest(facts: AppFacts, language: str = "en") -> dict[str, Any]:
    """manifest.json in `language` (en or cy), with the other language as a localisation file."""
    wording = Words(language, facts)
    words = wording.localizable(registered_commands())
    other = "cy" if language == "en" else "en"
    base = facts.base_url
    command_lists = [
        {
            "scopes": scopes,
            "commands": [
                {
                    "title": words[f"bots[0].commandLists[{index}].commands[{position}].title"],
                    "description": words[
                        f"bots[0].commandLists[{index}].commands[{position}].description"
                    ],
                }
                for position in range(len(names))
            ],
        }
        for index, (scopes, names) in enumerate(zip(_LIST_SCOPES, _command_lists(), strict=True))
    ]
    return {
        "$schema": SCHEMA_URL,
        "manifestVersion": MANIFEST_VERSION,
        "version": facts.version,
        "id": facts.app_id,
        "localizationInfo": {
            "defaultLanguageTag": LANGUAGE_TAGS[language],
            "additionalLanguages": [
                {"languageTag": LANGUAGE_TAGS[other], "file": localization_file(other)}
            ],
        },
        "developer": {
            "name": wording.collaboration,
            "websiteUrl": base,
            "privacyUrl": facts.privacy_url,
            "termsOfUseUrl": facts.terms_url,
        },
        "name": {"short": words["name.short"], "full": words["name.full"]},
        "description": {
            "short": words["description.short"],
            "full": words["description.full"],
        },
        "icons": {"color": COLOR_ICON, "outline": OUTLINE_ICON},
        "accentColor": "#{:02X}{:02X}{:02X}".format(*ACCENT),
        "bots": [
            {
                "botId": facts.app_id,
                "scopes": ["personal", "team", "groupChat"],
                "isNotificationOnly": False,
                "supportsFiles": False,
                "commandLists": command_lists,
            }
        ],
        "composeExtensions": [
            {
                "botId": facts.app_id,
                "composeExtensionType": "botBased",
                "commands": [
                    {
                        "id": ASK_COMMAND_ID,
                        "type": "action",
                        "title": words["composeExtensions[0].commands[0].title"],
                        "description": words["composeExtensions[0].commands[0].description"],
                        "context": ["message"],
                        "fetchTask": True,
                    },
                    {
                        "id": FIND_COMMAND_ID,
                        "type": "query",
                        "title": words["composeExtensions[0].commands[1].title"],
                        "description": words["composeExtensions[0].commands[1].description"],
                        "context": ["compose", "commandBox"],
                        "initialRun": False,
                        "parameters": [
                            {
                                "name": FIND_PARAMETER,
                                "inputType": "text",
                                "title": words[
                                    "composeExtensions[0].commands[1].parameters[0].title"
                                ],
                                "description": words[
                                    "composeExtensions[0].commands[1].parameters[0].description"
                                ],
                            }
                        ],
                    },
                ],
            }
        ],
        "staticTabs": [
            {
                "entityId": "home",
                "name": words["staticTabs[0].name"],
                "contentUrl": f"{base}{HOME_TAB_PATH}",
                "websiteUrl": f"{base}/",
                "scopes": ["personal"],
            },
            # Teams' own chat and about pages, beside Home in the personal app.
            {"entityId": "conversations", "scopes": ["personal"]},
            {"entityId": "about", "scopes": ["personal"]},
        ],
        "configurableTabs": [
            {
                "configurationUrl": f"{base}{REGISTER_TAB_CONFIG_PATH}",
                "canUpdateConfiguration": True,
                "scopes": ["team", "groupChat"],
                "context": ["channelTab", "privateChatTab"],
            }
        ],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [facts.host],
        "webApplicationInfo": {"id": facts.app_id},
        "supportedChannelTypes": ["privateChannels", "sharedChannels"],
        "defaultInstallScope": "personal",
        "defaultGroupCapability": {"team": "tab", "groupchat": "bot"},
    }


def localization_file(language: str) -> str:
    """The file name of a language's strings inside the package."""
    return f"{language}.json"


def build_localization(facts: AppFacts, language: str) -> dict[str, Any]:
    """The language file Teams reads for members using `language`."""
    words = Words(language, facts).localizable(registered_commands())
    return {"$schema": LOCALIZATION_SCHEMA_URL, **words}


# -- icons ------------------------------------------------------------------------------------
Paint = Callable[[float, float], float]


def _magnifier(x: float, y: float) -> bool:
    """A magnifying glass (lens ring and handle) in the unit square."""
    cx, cy, radius, ring = 0.43, 0.43, 0.22, 0.075
    distance = ((x - cx) ** 2 + (y - cy) ** 2) ** 0.5
    if abs(distance - radius) <= ring / 2:
        return True
    # The handle: a thick segment from the ring towards the lower right corner.
    start, end, width = 0.43 + 0.22 * 0.72, 0.82, 0.1
    along = (x + y) / 2
    across = abs(x - y) / 2**0.5
    return start <= along <= end and across <= width / 2


def _coverage(size: int, px: int, py: int, samples: int = 4) -> float:
    """How much of pixel (px, py) the glyph covers (supersampled, for smooth edges)."""
    # The glyph sits in the middle 80% of the icon: Teams crops colour icons to a rounded square.
    inset = 0.1
    hits = 0
    for sy in range(samples):
        for sx in range(samples):
            x = ((px + (sx + 0.5) / samples) / size - inset) / (1 - 2 * inset)
            y = ((py + (sy + 0.5) / samples) / size - inset) / (1 - 2 * inset)
            hits += _magnifier(x, y)
    return hits / (samples * samples)


def _png(size: int, pixels: Iterable[bytes]) -> bytes:
    """An 8-bit RGBA PNG of `size` x `size` from its rows of RGBA bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + row for row in pixels)
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def color_icon(size: int = 192) -> bytes:
    """The colour icon: a white magnifier on the accent colour, full bleed (192x192)."""
    rows = []
    for py in range(size):
        row = bytearray()
        for px in range(size):
            share = _coverage(size, px, py)
            row += bytes(round(c + (255 - c) * share) for c in ACCENT) + b"\xff"
        rows.append(bytes(row))
    return _png(size, rows)


def outline_icon(size: int = 32) -> bytes:
    """The outline icon: the white magnifier on transparency (32x32), as Teams requires."""
    rows = []
    for py in range(size):
        row = bytearray()
        for px in range(size):
            row += b"\xff\xff\xff" + bytes([round(255 * _coverage(size, px, py))])
        rows.append(bytes(row))
    return _png(size, rows)


# -- the package ------------------------------------------------------------------------------
def build_package(settings: Settings, collaboration: Collaboration) -> bytes:
    """The zip to upload: manifest.json (in SCRUTINY_LANGUAGE), both language files, icons."""
    facts = app_facts(settings, collaboration)
    language = settings.scrutiny_language
    files = {
        "manifest.json": _json(build_manifest(facts, language)),
        COLOR_ICON: color_icon(),
        OUTLINE_ICON: outline_icon(),
    }
    for other in LANGUAGE_TAGS:
        if other != language:
            files[localization_file(other)] = _json(build_localization(facts, other))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            # A fixed timestamp: the same settings make the same bytes.
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


def _json(value: dict[str, Any]) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
