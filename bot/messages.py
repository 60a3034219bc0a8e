"""Neutral request and reply types, and rendering a reply through templates per platform.

A handler never formats for a platform: it returns a `Reply` naming a template
(`actions/list`) and a context. Each platform renders `templates/actions/list.<format>.j2`
in the reader's language(s); a `cy+en` channel gets Welsh then English in one message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import markupsafe

from bot.domain import Platform
from bot.i18n import DEFAULT_COMMAND_PREFIX, Translator, translations, welsh_day_mutations

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

FORMATS = ("txt", "slack.json", "teams.html")


@dataclass(frozen=True)
class Request:
    """What a user asked, independent of the platform it came from."""

    platform: Platform
    user_id: str
    text: str
    channel_id: str | None = None
    is_direct: bool = False
    now: datetime | None = None
    values: dict[str, Any] = field(default_factory=dict)
    """Form or button values (modals, buttons); empty for typed commands."""


@dataclass
class Reply:
    """A template name and its context; `visibility` has already been applied to the context."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    ephemeral: bool = True
    public: bool = False
    """True when the reply should be posted for the whole channel rather than just the asker."""
    surface: str = "message"
    """Where a platform that can should show it: "message", "modal" (a form) or "home" (a member's
    home tab). Platforms without that surface show the text rendering as a message."""
    field_errors: dict[str, str] = field(default_factory=dict)
    """A refused form: field name -> what is wrong with it, so a platform can mark each field."""


def mrkdwn_escape(value: object) -> str:
    """Escape user text for Slack mrkdwn: &, < and > (so `<!channel>` cannot ping anyone)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _truncate(value: object, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def in_reader_language(
    record: object, field: str, language: str, t: Translator, limit: int | None = None
) -> str:
    """A record's bilingual `field` (title, summary, location) for a reader of `language`.

    The Welsh text lives in `<field>_cy`. A Welsh reader gets it when there is one, else the
    English marked "(Saesneg yn unig)"; an English reader gets the English, or the Welsh
    marked "(Welsh only)" when no English was given. `limit` shortens the text, never the
    marker. Every template shows titles, summaries and locations through this one function.
    """
    english = str(getattr(record, field, "") or "")
    welsh = str(getattr(record, f"{field}_cy", "") or "")
    own, other = (welsh, english) if language == "cy" else (english, welsh)
    text = own or other
    if limit is not None:
        text = _truncate(text, limit)
    if own or not other:
        return text
    marker = t._("(English only)") if language == "cy" else t._("(Welsh only)")
    return f"{text} {marker}"


@jinja2.pass_context
def _localised(
    context: jinja2.runtime.Context, record: object, field: str, limit: int | None = None
) -> str:
    return in_reader_language(record, field, context["language"], context["t"], limit)


def _welsh_finalize(value: Any) -> Any:
    # Every printed expression, so a date placed after a preposition by any translation mutates.
    if isinstance(value, markupsafe.Markup):
        return markupsafe.Markup(welsh_day_mutations(str(value)))
    if isinstance(value, str):
        return welsh_day_mutations(value)
    return value


@lru_cache(maxsize=32)
def _environment(fmt: str, language: str, templates_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        finalize=_welsh_finalize if language == "cy" else None,
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        autoescape=fmt.endswith("html"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["mrkdwn"] = mrkdwn_escape
    env.filters["truncate_to"] = _truncate
    env.filters["localised"] = _localised
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    return env


class Renderer:
    """Renders replies to text, Slack Block Kit JSON or Teams HTML in one or two languages."""

    def __init__(
        self,
        templates_dir: Path = TEMPLATES_DIR,
        tz: ZoneInfo | None = None,
        teams_bot_name: str = "Scrutiny",
    ) -> None:
        self.templates_dir = templates_dir
        self.tz = tz or ZoneInfo("Europe/London")
        self.teams_bot_name = teams_bot_name
        self.fallbacks: dict[str, Callable[[str], str]] = {}
        """Format -> converter from the text rendering, used when a template has no variant
        in that format (a platform registers its own, e.g. text to Slack blocks)."""

    def has_template(self, template: str, fmt: str) -> bool:
        """Whether `template` has a variant for this format."""
        return (self.templates_dir / f"{template}.{fmt}.j2").exists()

    def command_prefix(self, platform: Platform | None) -> str:
        """How a reader on `platform` starts a command: Teams members @mention the bot."""
        if platform is Platform.TEAMS:
            return f"@{self.teams_bot_name}"
        return DEFAULT_COMMAND_PREFIX

    def render(
        self, reply: Reply, fmt: str, language: str, platform: Platform | None = None
    ) -> str:
        """Render one reply in one language for `platform` (which sets `cmd`, the command
        prefix); raises if the template or a variable is missing."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        fallback = self.fallbacks.get(fmt)
        if fallback is not None and not self.has_template(reply.template, fmt):
            return fallback(self.render(reply, "txt", language, platform))
        env = _environment(fmt, language, self.templates_dir)
        template = env.get_template(f"{reply.template}.{fmt}.j2")
        cmd = self.command_prefix(platform)
        t = Translator(language, self.tz, cmd)
        return template.render(t=t, language=language, cmd=cmd, **reply.context).strip()

    def render_text(
        self, reply: Reply, languages: tuple[str, ...], platform: Platform | None = None
    ) -> str:
        """Plain text in each language in turn (Welsh first for bilingual channels)."""
        return "\n\n".join(self.render(reply, "txt", language, platform) for language in languages)
