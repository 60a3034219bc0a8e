"""Stable permalinks to the register's pages, for the pages themselves and for chat replies,
digests and cards (through the one `links` object every template gets)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

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
