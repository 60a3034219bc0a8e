"""Tactical-plan actions: upsert by ref."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import select

from bot.domain import ActionStatus, Rag
from bot.fields import partner_lookup
from bot.i18n import _
from bot.import_columns import IMPORT_COLUMNS
from bot.imports.base import (
    MARKED_DEFAULTS,
    Kind,
    Record,
    by_ref,
    check_marked,
    load_existing,
)
from bot.imports.cells import Cells
from bot.models import Action, Decision
from bot.text_input import NOTE, OWNER, THEME, TITLE, TITLE_CY

RAG_WORDS = {
    "r": Rag.RED,
    "a": Rag.AMBER,
    "g": Rag.GREEN,
    "coch": Rag.RED,
    "ambr": Rag.AMBER,
    "oren": Rag.AMBER,
    "gwyrdd": Rag.GREEN,
}
"""RAG ratings as spreadsheets write them besides red, amber and green: letters and Welsh."""

STATUS_WORDS = {
    **dict.fromkeys(
        (
            "complete",
            "completed",
            "finished",
            "closed",
            "achieved",
            "delivered",
            "done",
            "wedi'i-gwblhau",
            "wedi-ei-gwblhau",
            "cwblhawyd",
            "wedi-gorffen",
            "wedi'i-gyflawni",
        ),
        ActionStatus.DONE,
    ),
    **dict.fromkeys(
        (
            "on-track",
            "ongoing",
            "started",
            "underway",
            "under-way",
            "in-hand",
            "active",
            "progressing",
            "ar-waith",
            "ar-y-gweill",
            "yn-mynd-rhagddo",
            "ar-y-trywydd-iawn",
        ),
        ActionStatus.IN_PROGRESS,
    ),
    **dict.fromkeys(
        (
            "not-yet-started",
            "planned",
            "to-do",
            "todo",
            "new",
            "open",
            "heb-ddechrau",
            "heb-ei-ddechrau",
            "wedi'i-gynllunio",
        ),
        ActionStatus.NOT_STARTED,
    ),
    **dict.fromkeys(
        (
            "on-hold",
            "stuck",
            "paused",
            "wedi'i-rwystro",
            "wedi-ei-rwystro",
            "wedi'i-atal",
            "wedi'i-ohirio",
        ),
        ActionStatus.BLOCKED,
    ),
    **dict.fromkeys(
        (
            "stopped",
            "withdrawn",
            "dropped",
            "abandoned",
            "canceled",
            "wedi'i-ganslo",
            "wedi-ei-ganslo",
            "wedi'i-dynnu'n-ôl",
        ),
        ActionStatus.CANCELLED,
    ),
}
"""Statuses as people write them in a tactical plan (compared after `Cells.choice` folds case
and spaces into hyphens), in English and Welsh."""


class ActionsImport(Kind):
    """actions: ref,title,owner_partner,owner,due_date,status,rag,theme,marking,
    exempt_paragraph,restricted_to,last_update,title_cy,decisions"""

    name = "actions"
    entity = "action"
    model = Action
    columns = IMPORT_COLUMNS["actions"]
    required = ("ref", "title", "owner_partner")
    references: ClassVar[dict[str, str]] = {"owner_partner_id": "owner_partner"}
    fields = (
        "title",
        "owner_partner_id",
        "owner",
        "due_date",
        "status",
        "rag",
        "theme",
        "marking",
        "exempt_paragraph",
        "restricted_to",
        "last_update",
        "title_cy",
        "decision_refs",
    )

    def load(self) -> None:
        self.partners = partner_lookup(self.session)
        self.slugs = {"owner_partner_id": {p.id: p.slug for p in self.partners.items}}
        self.existing = load_existing(self.session, Action, "ref", self.fields)
        self.decision_refs = set(self.session.scalars(select(Decision.ref)))

    def check(self, cells: Cells) -> Record | None:
        ref = cells.ref("ref")
        values: dict[str, Any] = {"title": cells.text("title", TITLE, required=True)}
        owner = cells.one("owner_partner", self.partners)
        values["owner_partner_id"] = owner.id if owner else None
        if cells.has("owner"):
            values["owner"] = cells.text("owner", OWNER)
        if cells.has("due_date"):
            values["due_date"] = cells.date("due_date")
        if cells.has("status"):
            values["status"] = cells.choice(
                "status", ActionStatus, default=ActionStatus.NOT_STARTED, aliases=STATUS_WORDS
            )
        if cells.has("rag"):
            values["rag"] = cells.choice("rag", Rag, aliases=RAG_WORDS)
        if cells.has("theme"):
            values["theme"] = cells.text("theme", THEME)
        check_marked(cells, values, self.partners)
        if cells.has("last_update"):
            values["last_update"] = cells.text("last_update", NOTE)
        if cells.has("title_cy"):
            values["title_cy"] = cells.text("title_cy", TITLE_CY)
        if cells.has("decisions"):
            values["decision_refs"] = self._decisions(cells)
        return by_ref(cells, ref, values, self.existing)

    def _decisions(self, cells: Cells) -> list[str]:
        """The decisions an action comes from: refs separated by spaces or commas."""
        words = cells.raw("decisions").replace(",", " ").upper().split()
        unknown = [w for w in words if w not in self.decision_refs]
        if unknown:
            cells.problem(
                "decisions",
                _("no decision {refs} in the register").format(refs=", ".join(unknown)),
                _("import the decisions first, or give refs such as SB-2026-014"),
            )
        return list(dict.fromkeys(words))

    def defaults(self) -> dict[str, Any]:
        return {
            "owner": "",
            "due_date": None,
            "status": ActionStatus.NOT_STARTED,
            "rag": None,
            "theme": "",
            "last_update": "",
            "title_cy": "",
            "decision_refs": [],
            **MARKED_DEFAULTS,
        }
