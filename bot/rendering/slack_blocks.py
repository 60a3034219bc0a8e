"""Slack Block Kit limits, enforced on everything we send, with paging instead of failure.

Pure Python (no Slack SDK): blocks are plain dicts. Slack rejects a whole message when one
limit is broken (`invalid_blocks`), so every outgoing message and view passes through
`fit_message` or `fit_view`: long sections are split on line boundaries, labels are cut with
an ellipsis, and a body with too many blocks is cut with a "showing X–Y of Z" line and a
button that fetches the rest.

Lengths are counted in UTF-16 code units, as Slack's servers do, so emoji count twice.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from bot.i18n import Translator
from bot.rendering.escapes import mrkdwn_escape

Block = dict[str, Any]

MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
ACTION_VALUE_MAX = 2000
ACTION_ID_MAX = 255
ACTION_ELEMENTS_MAX = 25
CONTEXT_ELEMENTS_MAX = 10
CONTEXT_TEXT_MAX = 3000
FALLBACK_TEXT_MAX = 40000
VIEW_TITLE_MAX = 24
PRIVATE_METADATA_MAX = 3000
INPUT_LABEL_MAX = 2000
PLACEHOLDER_MAX = 150
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
OPTIONS_MAX = 100
OPTION_GROUPS_MAX = 100
GROUPED_SELECTS = ("static_select", "multi_static_select")
"""Selects that take `option_groups`: 100 groups of 100 options where `options` takes 100."""

MORE_ACTION_ID = "slack.more"
"""Button that fetches the next part of a reply cut by `fit_message`."""

ELLIPSIS = "…"
_ENTITY = re.compile(r"&[a-z]{0,4}$")


def slack_len(text: str) -> int:
    """Length as Slack counts it: UTF-16 code units (characters outside the BMP count twice)."""
    # Encoding runs in C: far faster than counting wide characters in Python, and called for
    # every text of every block. A lone surrogate (not valid text, but possible in input)
    # passes through as the one unit it is.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _prefix_within(text: str, limit: int) -> int:
    """The longest prefix length (in code points) whose Slack length is at most `limit`."""
    if slack_len(text) <= limit:
        return len(text)
    # Slack length grows with the prefix, one or two units a character, so the longest prefix
    # that fits has at most `limit` characters: a binary search finds it in log(limit) steps.
    fits, too_long = 0, min(len(text), max(limit, 0)) + 1
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if slack_len(text[:middle]) <= limit:
            fits = middle
        else:
            too_long = middle
    return fits


def _safe_cut(text: str, at: int) -> int:
    """Move a cut point back so it never splits an HTML entity such as `&amp;`."""
    match = _ENTITY.search(text[max(0, at - 5) : at])
    if match and at < len(text) and ";" in text[at : at + 5]:
        return max(1, at - (len(match.group(0))))
    return at


def cut(text: str, limit: int) -> str:
    """`text` if it fits, else as much as fits followed by an ellipsis."""
    if slack_len(text) <= limit:
        return text
    keep = _safe_cut(text, _prefix_within(text, limit - 1))
    return text[:keep].rstrip() + ELLIPSIS


def split_text(text: str, limit: int) -> list[str]:
    """Split text into parts of at most `limit`, on line boundaries where possible.

    Only whitespace is lost: the newline at each break, and parts that are blank.
    """
    parts: list[str] = []
    lines: list[str] = []
    used = 0
    for line in text.split("\n"):
        size = slack_len(line)
        if lines and used + 1 + size <= limit:
            lines.append(line)
            used += 1 + size
            continue
        if lines and not size:
            continue
        current = "\n".join(lines)
        if current.strip():
            parts.append(current)
        lines, used = [], 0
        while size > limit:
            at = _safe_cut(line, _prefix_within(line, limit))
            parts.append(line[:at])
            line = line[at:]
            size = slack_len(line)
        lines, used = [line], size
    current = "\n".join(lines)
    if current.strip():
        parts.append(current)
    return parts


def text_blocks(text: str) -> list[Block]:
    """A plain-text rendering as mrkdwn sections, escaped so user text cannot ping or link."""
    escaped = mrkdwn_escape(text)
    return [_section(part) for part in split_text(escaped, SECTION_TEXT_MAX)]


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def fallback_text(text: str) -> str:
    """The top-level `text` Slack shows in notifications: escaped, never empty, within 40,000."""
    escaped = mrkdwn_escape(text).strip() or ELLIPSIS
    return cut(escaped, FALLBACK_TEXT_MAX)


def join_bodies(bodies: Sequence[Sequence[Block]]) -> list[Block]:
    """One message from several languages' blocks, separated by dividers (Welsh first)."""
    joined: list[Block] = []
    for body in bodies:
        if joined and body:
            joined.append({"type": "divider"})
        joined.extend(copy.deepcopy(list(body)))
    return joined


def _fit_text_object(obj: Any, limit: int) -> Any:
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        text = obj["text"] if obj["text"].strip() else ELLIPSIS
        return {**obj, "text": cut(text, limit)}
    return obj


def _fit_option(option: Any) -> Any:
    if not isinstance(option, dict):
        return option
    fitted = dict(option)
    if "text" in fitted:
        fitted["text"] = _fit_text_object(fitted["text"], OPTION_TEXT_MAX)
    if isinstance(fitted.get("value"), str):
        fitted["value"] = fitted["value"][:OPTION_VALUE_MAX]
    return fitted


def _option_text(option: Any) -> str:
    text = option.get("text") if isinstance(option, dict) else None
    return str(text.get("text", "")) if isinstance(text, dict) else ""


def _option_groups(options: list[Any]) -> list[dict[str, Any]]:
    """A select's options past Slack's 100 as groups of 100 (at most 10,000 in all), each
    labelled by its first and last option so a long list stays easy to scan."""
    groups = []
    for part in list(_chunks(options, OPTIONS_MAX))[:OPTION_GROUPS_MAX]:
        first, last = cut(_option_text(part[0]), 36), cut(_option_text(part[-1]), 36)
        label = first if len(part) == 1 else f"{first} – {last}"
        groups.append(
            {
                "label": {"type": "plain_text", "text": cut(label, OPTION_TEXT_MAX)},
                "options": [_fit_option(o) for o in part],
            }
        )
    return groups


def _fit_element(element: Any) -> Any | None:
    """An interactive element within limits, or None when it cannot work cut (a long value)."""
    if not isinstance(element, dict):
        return element
    value = element.get("value")
    if isinstance(value, str) and slack_len(value) > ACTION_VALUE_MAX:
        return None
    fitted = dict(element)
    if element.get("type") == "button" and "text" in fitted:
        fitted["text"] = _fit_text_object(fitted["text"], BUTTON_TEXT_MAX)
    if "placeholder" in fitted:
        fitted["placeholder"] = _fit_text_object(fitted["placeholder"], PLACEHOLDER_MAX)
    if isinstance(fitted.get("action_id"), str):
        fitted["action_id"] = fitted["action_id"][:ACTION_ID_MAX]
    options = fitted.get("options")
    grouped = fitted.get("type") in GROUPED_SELECTS
    if isinstance(options, list) and len(options) > OPTIONS_MAX and grouped:
        fitted["option_groups"] = _option_groups(fitted.pop("options"))
    for key in ("options", "initial_options"):
        if isinstance(fitted.get(key), list):
            fitted[key] = [_fit_option(o) for o in fitted[key][:OPTIONS_MAX]]
    if "initial_option" in fitted:
        fitted["initial_option"] = _fit_option(fitted["initial_option"])
    return fitted


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _without_block_id(block: Block, index: int) -> Block:
    # A block split in two must not repeat its block_id (Slack rejects duplicates).
    if index and "block_id" in block:
        return {k: v for k, v in block.items() if k != "block_id"}
    return block


def fit_block(block: Block) -> list[Block]:
    """One block as one or more blocks that each keep Slack's limits."""
    kind = block.get("type")
    if kind == "section":
        return _fit_section(block)
    if kind == "header":
        return [{**block, "text": _fit_text_object(block.get("text"), HEADER_TEXT_MAX)}]
    if kind == "actions":
        elements = [e for e in map(_fit_element, block.get("elements", [])) if e is not None]
        if not elements:
            return []
        return [
            _without_block_id({**block, "elements": chunk}, i)
            for i, chunk in enumerate(_chunks(elements, ACTION_ELEMENTS_MAX))
        ]
    if kind == "context":
        elements = [_fit_text_object(e, CONTEXT_TEXT_MAX) for e in block.get("elements", [])]
        if not elements:
            return []
        return [
            _without_block_id({**block, "elements": chunk}, i)
            for i, chunk in enumerate(_chunks(elements, CONTEXT_ELEMENTS_MAX))
        ]
    if kind == "input":
        fitted = dict(block)
        fitted["label"] = _fit_text_object(block.get("label"), INPUT_LABEL_MAX)
        if "hint" in fitted:
            fitted["hint"] = _fit_text_object(fitted["hint"], INPUT_LABEL_MAX)
        element = _fit_element(block.get("element"))
        if element is not None:
            fitted["element"] = element
        return [fitted]
    return [block]


def _fit_section(block: Block) -> list[Block]:
    text_obj = block.get("text")
    fields = [_fit_text_object(f, FIELD_TEXT_MAX) for f in block.get("fields", [])]
    accessory = block.get("accessory")
    if accessory is not None:
        accessory = _fit_element(accessory)
    base = {k: v for k, v in block.items() if k not in ("text", "fields", "accessory")}
    out: list[Block] = []
    if isinstance(text_obj, dict) and isinstance(text_obj.get("text"), str):
        limit = SECTION_TEXT_MAX
        for part in split_text(text_obj["text"], limit):
            out.append({**base, "text": {**text_obj, "text": part}})
    for chunk in _chunks(fields, SECTION_FIELDS_MAX):
        if out and "fields" not in out[-1]:
            out[-1] = {**out[-1], "fields": chunk}
        else:
            out.append({**base, "fields": chunk})
    if not out:
        return []
    if accessory is not None:
        out[0] = {**out[0], "accessory": accessory}
    return [_without_block_id(b, i) for i, b in enumerate(out)]


def fit_blocks(blocks: Sequence[Block]) -> list[Block]:
    """Every block within its own limits (not yet the count limit), block ids unique."""
    fitted: list[Block] = []
    block_ids: set[Any] = set()
    for block in blocks:
        for part in fit_block(block):
            if "block_id" in part:
                # Bilingual bodies come from one template; Slack refuses a repeated block_id.
                if part["block_id"] in block_ids:
                    part = {k: v for k, v in part.items() if k != "block_id"}
                else:
                    block_ids.add(part["block_id"])
            fitted.append(part)
    return fitted


MoreValue = Callable[[int], str | None]
"""Given the index of the first block not shown, the value of a button that shows the rest
(or None when no such button can be made)."""


def fit_message(
    blocks: Sequence[Block],
    text: str,
    t: Translator,
    *,
    start: int = 0,
    max_blocks: int = MESSAGE_MAX_BLOCKS,
    more: MoreValue | None = None,
) -> dict[str, Any]:
    """`{"blocks", "text"}` within every limit; too many blocks are paged from `start`."""
    fitted = fit_blocks(blocks) or fit_blocks(text_blocks(text))
    total = len(fitted)
    start = min(max(0, start), max(0, total - 1))
    if start == 0 and total <= max_blocks:
        return {"blocks": fitted, "text": fallback_text(text)}
    # Leave room for the "showing" line, and for the next-part button when more remains.
    end = total if total - start <= max_blocks - 1 else start + max_blocks - 2
    shown = fitted[start:end]
    notice = t._("Showing {first}–{last} of {total} parts of this reply.").format(
        first=start + 1, last=end, total=total
    )
    shown.append({"type": "context", "elements": [{"type": "mrkdwn", "text": notice}]})
    value = more(end) if more is not None and end < total else None
    if value is not None and slack_len(value) <= ACTION_VALUE_MAX:
        button = {
            "type": "button",
            "action_id": MORE_ACTION_ID,
            "text": {"type": "plain_text", "text": cut(t._("Show the next part"), BUTTON_TEXT_MAX)},
            "value": value,
        }
        shown.append({"type": "actions", "elements": [button]})
    return {"blocks": shown, "text": fallback_text(text)}


def fit_view(view: dict[str, Any], t: Translator, text: str = "") -> dict[str, Any]:
    """A modal or home view within limits: titles, metadata and at most 100 blocks."""
    fitted = dict(view)
    for key in ("title", "submit", "close"):
        if key in fitted:
            fitted[key] = _fit_text_object(fitted[key], VIEW_TITLE_MAX)
    if isinstance(fitted.get("private_metadata"), str):
        fitted["private_metadata"] = fitted["private_metadata"][:PRIVATE_METADATA_MAX]
    message = fit_message(view.get("blocks", []), text or " ", t, max_blocks=VIEW_MAX_BLOCKS)
    fitted["blocks"] = message["blocks"]
    return fitted
