"""Escaping user text for each chat format, so what a member typed prints as written."""

from __future__ import annotations

_MARKDOWN_SPECIAL = set("\\`*_[]#<>|~")


def mrkdwn_escape(value: object) -> str:
    """Escape user text for Slack mrkdwn: &, < and > (so `<!channel>` cannot ping anyone)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_escape(text: object) -> str:
    """Backslash Markdown's special characters (and a list marker or number at the start of a
    line) so user text prints as written: the question pack and Adaptive Card TextBlocks,
    where `[click me](https://...)` would otherwise become a link."""
    escaped = "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in str(text))
    lines = []
    for line in escaped.splitlines() or [""]:
        stripped = line.lstrip()
        head = stripped.split(" ", 1)[0]
        if head in ("-", "+") or (head[:-1].isdigit() and head.endswith((".", ")"))):
            line = line.replace(head, head[:-1] + "\\" + head[-1], 1)
        lines.append(line)
    return "  \n".join(lines)


def markdown_link(label: object, url: str) -> str:
    """`[label](url)` for an Adaptive Card TextBlock: the label escaped, and the URL's spaces
    and parentheses percent-encoded so neither can end the link early."""
    target = url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    return f"[{markdown_escape(label)}]({target})"
