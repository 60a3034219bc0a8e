"""Answers to joint-scrutiny questions: each row answers one existing question by its ref."""

from __future__ import annotations

import difflib
from typing import Any, ClassVar

from bot.domain import QuestionState
from bot.i18n import _
from bot.imports.base import Kind, Record, header, load_existing
from bot.imports.cells import Cells, column_length
from bot.models import Question

UNANSWERABLE = (QuestionState.REJECTED, QuestionState.WITHDRAWN, QuestionState.MERGED)


class AnswersImport(Kind):
    """answers: question_ref,answer,answered_by"""

    name = "answers"
    entity = "question"
    model = Question
    columns = header("question_ref,answer,answered_by")
    required = ("question_ref", "answer")
    fields = ("answer", "answered_by", "state", "merged_into_id")
    limits: ClassVar[dict[str, int | None]] = {
        name: column_length(Question, name) for name in ("ref", "answered_by")
    }

    def load(self) -> None:
        self.existing = load_existing(self.session, Question, "ref", self.fields)
        self.ref_of = {stored.id: ref for ref, stored in self.existing.items()}

    def _unknown(self, cells: Cells, ref: str) -> None:
        close = difflib.get_close_matches(ref, list(self.existing), n=1, cutoff=0.8)
        fix = (
            _('did you mean "{ref}"?').format(ref=close[0])
            if close
            else _("check the reference against /scrutiny questions (e.g. Q-SB-2026-12-003)")
        )
        cells.problem("question_ref", _("no question has this reference"), fix)

    def check(self, cells: Cells) -> Record | None:
        ref = cells.ref("question_ref", limit=self.limits["ref"])
        values: dict[str, Any] = {
            "answer": cells.text("answer", limit=None, required=True, multiline=True),
            "state": QuestionState.ANSWERED,
        }
        if cells.has("answered_by"):
            values["answered_by"] = cells.text("answered_by", limit=self.limits["answered_by"])
        stored = self.existing.get(ref)
        if ref and stored is None:
            self._unknown(cells, ref)
        elif stored is not None and stored.values["state"] in UNANSWERABLE:
            state = stored.values["state"]
            if state is QuestionState.MERGED and stored.values["merged_into_id"] in self.ref_of:
                fix = _("answer {ref} instead, which it was merged into").format(
                    ref=self.ref_of[stored.values["merged_into_id"]]
                )
            else:
                fix = _("remove this row, or ask the secretariat to reopen the question")
            cells.problem(
                "question_ref",
                _("the question is {state}, so it cannot be answered").format(state=state.value),
                fix,
            )
        return Record(cells.line, ref, values, unique=[("question_ref", ref)], current=stored)

    def stamp(self, created: bool) -> dict[str, Any]:
        return {"answered_at": self.now, "updated_at": self.now}
