"""Stable permalinks to the register's pages, for the pages themselves and for chat replies,
digests and cards. Templates of every format link a reference with the one `permalink` filter
(`{{ d.ref | permalink("decisions") }}`), which writes what that format can show."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from markupsafe import Markup, escape

from bot.rendering.escapes import markdown_escape, markdown_link

KINDS = ("decisions", "actions", "meetings")


@dataclass(frozen=True)
class RegisterLinks:
    """Builds register URLs under WEB_BASE_URL."""

    base_url: str

    def path(self, kind: str, ref: str | int) -> str:
        """`/decisions/SB-2026-014`: the site-relative permalink of one item."""
        if kind not in KINDS:
            raise ValueError(f"unknown register page kind {kind!r}; use one of {KINDS}")
        return f"/{kind}/{quote(str(ref), safe='')}"

    def url(self, path: str) -> str:
        """An absolute URL of a site-relative path."""
        return f"{self.base_url.rstrip('/')}{path}"

    def decision(self, ref: str) -> str:
        """The absolute permalink of a decision."""
        return self.url(self.path("decisions", ref))

    def action(self, ref: str) -> str:
        """The absolute permalink of an action."""
        return self.url(self.path("actions", ref))

    def meeting(self, meeting_id: int) -> str:
        """The absolute permalink of a meeting (with its question pack and attendance)."""
        return self.url(self.path("meetings", meeting_id))


def _slack_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def linked_ref(
    label: str | int, kind: str, fmt: str, links: RegisterLinks | None, key: str | int | None = None
) -> str:
    """`label` linked to the permalink of item `key` (default: the label) in format `fmt`.

    Without `links` (WEB_BASE_URL not set) the label alone, escaped for the format (see
    `format_link`).
    """
    text = str(label)
    url = links.url(links.path(kind, text if key is None else key)) if links else None
    return format_link(text, url, fmt)


def format_link(text: str, url: str | None, fmt: str) -> str:
    """`text` linked to `url` in format `fmt`; without a URL the text alone, escaped.

    Slack: `<url|label>` (mrkdwn-escaped, the `|` of a label kept out of the link syntax);
    HTML: an anchor (Markup); Teams cards: a Markdown link, the label escaped; text: the
    label, then the URL in angle brackets (RFC 3986, Appendix C).
    """
    if fmt == "slack.json":
        if url is None:
            return _slack_escape(text)
        return f"<{_slack_escape(url)}|{_slack_escape(text).replace('|', '¦')}>"
    if fmt == "teams.json":
        return markdown_escape(text) if url is None else markdown_link(text, url)
    if fmt.endswith("html"):
        if url is None:
            return str(escape(text))
        return Markup('<a href="{}">{}</a>').format(url, text)
    return text if url is None else f"{text} <{url}>"


TEAMS_MESSAGE_LINK = "https://teams.microsoft.com/l/message"
CHAT_SUFFIXES = ("@thread.v2", "@unq.gbl.spaces")
"""Teams chat ids end so (group chats, one-to-one chats); channels' end `@thread.tacv2` (or
`@thread.skype`, which older group chats share, so such an id alone is no chat's)."""
ROOT_MARK = ";messageid="
"""A channel thread's conversation id is the channel's, then this, then the root's id."""
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class PostRef:
    """An earlier post of the bot's: where it is and its platform message id (Slack's ts).

    `thread` is the id of the thread's first post when the post replied in a thread (Teams'
    links name it); a Teams channel given as a thread's conversation id carries it too."""

    platform: str
    channel: str
    message_id: str
    thread: str | None = None


@dataclass(frozen=True)
class PostLinks:
    """Links to the bot's own earlier posts, for the platforms whose addresses are known."""

    slack_workspace_url: str | None = None
    teams_tenant_id: str | None = None

    def url(self, post: PostRef | None) -> str | None:
        """The post's permalink, or None (no post, or no address known for its platform).

        Slack's permalink is `{workspace}/archives/{channel}/p{ts without its dot}`, the form
        `chat.getPermalink` answers with. Teams': see `teams_message_url`."""
        if post is None:
            return None
        if post.platform == "slack" and self.slack_workspace_url:
            stamp = post.message_id.replace(".", "")
            if not stamp.isdigit():
                return None
            return f"{self.slack_workspace_url.rstrip('/')}/archives/{quote(post.channel)}/p{stamp}"
        if post.platform == "teams":
            return teams_message_url(post, self.teams_tenant_id)
        return None


def teams_message_url(post: PostRef, tenant_id: str | None) -> str | None:
    """Microsoft's deep link to a Teams message (learn.microsoft.com, "Deep link to Teams
    chat"), or None where Teams documents none or a part is unknown.

    A channel, stored as "<team group id>/<channel id>" (as the sender needs it):
    `/l/message/{channel}/{message}?tenantId=&groupId=&parentMessageId={thread's first
    post}&createdTime={message}` (a channel message's id is its creation time in ms); it
    needs the tenant and the team's Entra group id, so a channel given by its id alone gets
    none. A group or one-to-one chat: `/l/message/{chat}/{message}?context=
    {"contextType":"chat"}`. A personal conversation the Bot Connector names `a:...` is not
    a chat id Teams can open, so it gets no link."""
    team, slash, conversation = post.channel.partition("/")
    if not slash:
        team, conversation = "", post.channel
    conversation, _, root_in_id = conversation.partition(ROOT_MARK)
    message = post.message_id
    if not (message and conversation.startswith("19:")):
        return None
    address = f"{TEAMS_MESSAGE_LINK}/{quote(conversation, safe=':@')}/{quote(message, safe='')}"
    if not slash:
        if not conversation.endswith(CHAT_SUFFIXES):
            return None
        chat = json.dumps({"contextType": "chat"}, separators=(",", ":"))
        return f"{address}?{urlencode({'context': chat}, quote_via=quote)}"
    if not (tenant_id and _GUID.match(team) and message.isdigit()):
        return None
    query = {
        "tenantId": tenant_id,
        "groupId": team,
        "parentMessageId": post.thread or root_in_id or message,
        "createdTime": message,
    }
    return f"{address}?{urlencode(query, quote_via=quote)}"
