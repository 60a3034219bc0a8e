"""Answers to joint-scrutiny questions: each row answers one existing question by its ref.

Rows are checked with the same rules as answers given in chat (`bot.services.questions.core`), and
each changed answer is written by `questions.record_answer`, so an imported answer is stored
and audited exactly like one recorded with `/scrutiny answer`. Posting the answers to the
partners' channels is the caller's step (`question_posts.post_unposted_answers`).
"""

from __future__ import annotations

import difflib
from typing import Any

from bot.domain import QuestionState
from bot.i18n import Translator, _, default_language
from bot.import_columns import IMPORT_COLUMNS
from bot.imports.base import Kind, Plan, Record, load_existing
from bot.imports.cells import Cells
from bot.models import Question
from bot.services.questions import core as questions
from bot.text_input import ANSWER, ANSWERED_BY, QUESTION_REF


class AnswersImport(Kind):
    """answers: question_ref,answer,answered_by"""

    name = "answers"
    entity = "question"
    model = Question
    columns = IMPORT_COLUMNS["answers"]
    required = ("question_ref", "answer")
    fields = ("answer", "answered_by", "state", "merged_into_id")

    def load(self) -> None:
        self.t = Translator(default_language(), self.zone)
        self.existing = load_existing(self.session, Question, "ref", self.fields)
        self.ref_of = {stored.id: ref for ref, stored in self.existing.items()}
        carried = [
            stored.id
            for stored in self.existing.values()
            if stored.values["state"] is QuestionState.CARRIED_FORWARD
        ]
        self.copies = questions.carried_copies(self.session, carried)

    def _unknown(self, cells: Cells, ref: str) -> None:
        close = difflib.get_close_matches(ref, list(self.existing), n=1, cutoff=0.8)
        fix = (
            _('did you mean "{ref}"?').format(ref=close[0])
            if close
            else _("check the reference against /scrutiny questions (e.g. Q-SB-2026-12-003)")
        )
        cells.problem("question_ref", _("no question has this reference"), fix)

    def check(self, cells: Cells) -> Record | None:
        ref = cells.ref("question_ref", QUESTION_REF)
        values: dict[str, Any] = {
            "answer": cells.text("answer", ANSWER, required=True),
            "state": QuestionState.ANSWERED,
        }
        if cells.has("answered_by"):
            values["answered_by"] = " ".join(cells.text("answered_by", ANSWERED_BY).split())
        stored = self.existing.get(ref)
        if ref and stored is None:
            self._unknown(cells, ref)
        elif stored is not None:
            refused = questions.not_answerable(
                ref,
                stored.values["state"],
                self.t,
                merged_into=self.ref_of.get(stored.values["merged_into_id"]),
                carried_to=self.copies.get(stored.id),
            )
            if refused is not None:
                cells.problem("question_ref", refused.message, refused.fix)
        return Record(cells.line, ref, values, unique=[("question_ref", ref)], current=stored)

    def apply(self, todo: Plan, actor: str) -> None:
        """Each new or changed answer through `questions.record_answer` (same checks, audit)."""
        for record, _changed in todo.updates:
            questions.record_answer(
                self.session,
                record.label,
                record.values["answer"],
                record.values.get("answered_by"),
                actor=actor,
                now=self.now,
                t=self.t,
            )
