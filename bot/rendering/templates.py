"""Rendering a reply through its templates, `templates/<feature>/<name>.<format>.j2`.

Formats: `txt` (plain text, every platform and every post's fallback), `slack.json` (Block
Kit) and `teams.json` (Adaptive Card body). A reader's language picks the translations; a
`cy+en` channel gets Welsh then English in one message (`bot.rendering.payload`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import markupsafe

from bot.domain import Platform
from bot.i18n import DEFAULT_COMMAND_PREFIX, Translator, translations, welsh_day_mutations
from bot.messages import Reply
from bot.permalinks import PostLinks, RegisterLinks, format_link, linked_ref
from bot.rendering.escapes import markdown_escape, markdown_link, mrkdwn_escape
from bot.rendering.slack_blocks import text_blocks
from bot.rendering.teams_cards import text_card

TEMPLATES_DIR = Path(__file__).resolve().parent.parent.parent / "templates"

FORMATS = ("txt", "slack.json", "teams.json")


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
    if isinstance(value, markupsafe.Markup):
        return markupsafe.Markup(welsh_day_mutations(str(value)))
    if isinstance(value, str):
        return welsh_day_mutations(value)
    return value


@lru_cache(maxsize=32)
def _environment(fmt: str, language: str, templates_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        # Every printed expression, so a date placed after a preposition by any translation
        # mutates in Welsh.
        finalize=_welsh_finalize if language == "cy" else None,
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["mrkdwn"] = mrkdwn_escape
    env.filters["md"] = markdown_escape
    env.filters["md_link"] = markdown_link
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
    """Renders replies to text, Slack Block Kit or Teams Adaptive Cards in one language.

    `render` gives a template's text; `document` gives what a platform sends: the text, a
    Block Kit message or view (a dict), or an Adaptive Card (a dict). A template without a
    variant in a chat format is shown as its text rendering in that format, so a platform
    never patches the renderer and never parses back what it produced."""

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
        """Links to the bot's earlier posts (services pass `post_links.url(...)` to templates,
        which show it with the `link_to` filter)."""
        self.tz = tz or ZoneInfo("Europe/London")
        self.teams_bot_name = teams_bot_name

    def has_template(self, template: str, fmt: str) -> bool:
        """Whether `template` has a variant for this format."""
        return (self.templates_dir / f"{template}.{fmt}.j2").exists()

    def command_prefix(self, platform: Platform | None) -> str:
        """How a reader on `platform` starts a command: Teams members @mention the bot."""
        if platform is Platform.TEAMS:
            return f"@{self.teams_bot_name}"
        return DEFAULT_COMMAND_PREFIX

    def _template(self, reply: Reply, fmt: str, language: str, platform: Platform | None) -> str:
        env = _environment(fmt, language, self.templates_dir)
        template = env.get_template(f"{reply.template}.{fmt}.j2")
        cmd = self.command_prefix(platform)
        t = Translator(language, self.tz, cmd)
        return template.render(
            t=t,
            language=language,
            cmd=cmd,
            register_links=self.links,
            # A refused form's errors by field, for forms that show each under its input.
            field_errors=reply.field_errors,
            **reply.context,
        ).strip()

    def render(
        self, reply: Reply, fmt: str, language: str, platform: Platform | None = None
    ) -> str:
        """Render one reply in one language for `platform` (which sets `cmd`, the command
        prefix) as text (JSON text for the chat formats); raises if the text template or a
        variable is missing."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        if fmt != "txt" and not self.has_template(reply.template, fmt):
            return json.dumps(self.document(reply, fmt, language, platform), ensure_ascii=False)
        return self._template(reply, fmt, language, platform)

    def document(
        self, reply: Reply, fmt: str, language: str, platform: Platform | None = None
    ) -> Any:
        """What a platform sends for one reply in one language: the text (`txt`), a Block
        Kit message `{"blocks": [...]}` or view (`slack.json`), or an Adaptive Card
        (`teams.json`). Without a variant in `fmt`, the text rendering in that format."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        if fmt == "txt":
            return self.render(reply, fmt, language, platform)
        if not self.has_template(reply.template, fmt):
            return self.from_text(fmt, self.render(reply, "txt", language, platform), language)
        return json.loads(self.render(reply, fmt, language, platform))

    def from_text(self, fmt: str, text: str, language: str) -> Any:
        """A text rendering as a document of `fmt` (a reply rendered before its format was
        known, or a template with no variant in that format)."""
        if fmt == "slack.json":
            return {"blocks": text_blocks(text)}
        if fmt == "teams.json":
            return text_card(text, Translator(language, self.tz))
        return text

    def render_text(
        self, reply: Reply, languages: tuple[str, ...], platform: Platform | None = None
    ) -> str:
        """Plain text in each language in turn (Welsh first for bilingual channels)."""
        return "\n\n".join(self.render(reply, "txt", language, platform) for language in languages)
