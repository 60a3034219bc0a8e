"""The columns each import kind reads, in file order (the header a template writes).

One definition, kept in a leaf module so that the importers (`bot.imports`) and the
collaboration file's `imports:` column maps (`bot.collaboration`) read the same names without
either importing the other.
"""

from __future__ import annotations

IMPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "actions": (
        "ref",
        "title",
        "owner_partner",
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
        "decisions",
    ),
    "decisions": (
        "ref",
        "board",
        "meeting_date",
        "decided_on",
        "title",
        "summary",
        "marking",
        "exempt_paragraph",
        "restricted_to",
        "partners",
        "link",
        "title_cy",
        "summary_cy",
    ),
    "meetings": (
        "board",
        "starts_at",
        "ends_at",
        "location",
        "link",
        "questions_open",
        "questions_close",
        "location_cy",
    ),
    "answers": ("question_ref", "answer", "answered_by"),
    "attendance": ("board", "meeting_date", "partner", "status"),
}
