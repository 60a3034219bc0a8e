"""Every format the bot writes, in one place: templates to text, Slack Block Kit and Teams
Adaptive Cards (`templates`), Slack's limits (`slack_blocks`), Teams' cards and size
(`teams_cards`), escaping user text (`escapes`) and the payload the outbox stores (`payload`).

Handlers return a neutral `Reply`; platforms receive documents (dicts), never JSON to parse
back. Nothing here imports a platform or a chat SDK.
"""

from bot.rendering.payload import PAYLOAD_VERSION, Payload, render_payload
from bot.rendering.templates import FORMATS, TEMPLATES_DIR, Renderer, in_reader_language

__all__ = [
    "FORMATS",
    "PAYLOAD_VERSION",
    "TEMPLATES_DIR",
    "Payload",
    "Renderer",
    "in_reader_language",
    "render_payload",
]
