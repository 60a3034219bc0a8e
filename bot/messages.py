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
from bot.permalinks import PostLinks, RegisterLinks, format_link, linked_ref

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

FORMATS = ("txt", "slack.json", "teams.html", "teams.json")


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
    readers: tuple[str, ...] | None = None
    """Everyone else who will read the reply, by platform user id, in a conversation that is no
    registered channel (a group DM); the reply is then filtered for all of them together."""


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
    home tab), or "none" (nothing to show: a welcome already given). Platforms without that
    surface show the text rendering as a message."""
    field_errors: dict[str, str] = field(default_factory=dict)
    """A refused form: field name -> what is wrong with it, so a platform can mark each field."""


def mrkdwn_escape(value: object) -> str:
    """Escape user text for Slack mrkdwn: &, < and > (so `<!channel>` cannot ping anyone)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MARKDOWN_SPECIAL = set("\\`*_[]#<>|~")
_HTML_INERT = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&#39;",
        # Teams may read a message's HTML as Markdown too: as character references these
        # cannot start a link, emphasis or a heading, and still show as themselves.
        **{char: f"&#{ord(char)};" for char in "\\`*_[]#|~"},
    }
)


def markdown_escape(text: str) -> str:
    """Backslash Markdown's special characters (and a list marker or number at the start of a
    line) so user text prints as written: the question pack and Adaptive Card TextBlocks,
    where `[click me](https://...)` would otherwise become a link."""
    escaped = "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in text)
    lines = []
    for line in escaped.splitlines() or [""]:
        stripped = line.lstrip()
        head = stripped.split(" ", 1)[0]
        if head in ("-", "+") or (head[:-1].isdigit() and head.endswith((".", ")"))):
            line = line.replace(head, head[:-1] + "\\" + head[-1], 1)
        lines.append(line)
    return "  \n".join(lines)


def teams_html_escape(value: object) -> str:
    """User text for Teams HTML: escaped as HTML, with Markdown's characters as character
    references (the one escape of `*.teams.html` templates and the text-to-HTML fallback)."""
    return str(value).translate(_HTML_INERT)


def _teams_html_finalize(value: object) -> object:
    # Every {{ value }} in a Teams HTML template: template markup (macros, translated
    # strings) is already Markup and kept; anything else is user data and made inert.
    if isinstance(value, markupsafe.Markup) or value is None:
        return value
    return markupsafe.Markup(teams_html_escape(value))


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


def _finalizer(fmt: str, language: str) -> Callable[[Any], Any] | None:
    """What every printed expression passes through: Welsh mutations, then the Teams escape."""
    steps = [
        step
        for step, wanted in (
            (_welsh_finalize, language == "cy"),
            (_teams_html_finalize, fmt == "teams.html"),
        )
        if wanted
    ]
    if not steps:
        return None

    def finalize(value: Any) -> Any:
        for step in steps:
            value = step(value)
        return value

    return finalize


@lru_cache(maxsize=32)
def _environment(fmt: str, language: str, templates_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        finalize=_finalizer(fmt, language),
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
    env.filters["md"] = markdown_escape  # Adaptive Card TextBlocks read Markdown
    env.filters["truncate_to"] = _truncate
    env.filters["localised"] = _localised
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)

    @jinja2.pass_context
    def permalink(
        context: jinja2.runtime.Context, label: object, kind: str, key: object = None
    ) -> str:
        links = context.get("register_links")
        return linked_ref(str(label), kind, fmt, links, None if key is None else str(key))

    env.filters["permalink"] = permalink

    # `{{ label | link_to(url) }}`: a link to an earlier post (`Renderer.post_links`).
    env.filters["link_to"] = lambda label, url: format_link(str(label), url, fmt)
    return env


class Renderer:
    """Renders replies to text, Slack Block Kit JSON or Teams HTML in one or two languages."""

    def __init__(
        self,
        templates_dir: Path = TEMPLATES_DIR,
        tz: ZoneInfo | None = None,
        teams_bot_name: str = "Scrutiny",
        links: RegisterLinks | None = None,
        post_links: PostLinks | None = None,
    ) -> None:
        self.templates_dir = templates_dir
        self.links = links
        """Permalinks for the `permalink` filter; None leaves references unlinked."""
        self.post_links = post_links or PostLinks()
        """Links to the bot's earlier posts, for the `post_link` filter."""
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
        return template.render(
            t=t,
            language=language,
            cmd=cmd,
            register_links=self.links,
            **reply.context,
        ).strip()

    def render_text(
        self, reply: Reply, languages: tuple[str, ...], platform: Platform | None = None
    ) -> str:
        """Plain text in each language in turn (Welsh first for bilingual channels)."""
        return "\n\n".join(self.render(reply, "txt", language, platform) for language in languages)
