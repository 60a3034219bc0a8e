"""The question pack: a meeting's accepted questions for the agenda, as Markdown and Word.

Questions are grouped by the review's five themes (in its order, untagged ones last) and,
within a theme, ordered by how many partners stand behind each (askers and supporters),
then by when it was first asked. Each shows its askers' partners, supporters and linked
refs. The pack is built for one audience (the secretariat's clearance) through
`bot.visibility`, carries the highest marking of what it contains, and says how many
questions were left out, without their content.

Both formats come from one translated outline (`outline`), so they always agree.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bot.domain import Marking, QuestionState
from bot.i18n import Translator
from bot.messages import markdown_escape
from bot.models import Channel, Meeting, Partner, Question
from bot.services.queries import PartnerView
from bot.services.question_windows import MeetingInfo
from bot.services.questions import THEME_LABELS, THEMES, QuestionView, views
from bot.text_input import pack_safe
from bot.visibility import Audience, audience_of_channel, audience_of_unknown_channel, partition

PACK_STATES = (QuestionState.ACCEPTED, QuestionState.ANSWERED)


@dataclass(frozen=True)
class ThemeGroup:
    """One theme's questions in pack order."""

    theme: str
    questions: tuple[QuestionView, ...]


@dataclass(frozen=True)
class Pack:
    """What goes into a meeting's question pack for one audience."""

    meeting: MeetingInfo
    groups: tuple[ThemeGroup, ...]
    marking: Marking
    """The highest marking of any question in the pack."""
    exempt_paragraphs: tuple[int, ...]
    awaiting: int
    """Questions still awaiting moderation (not in the pack)."""
    withheld: dict[str, int]
    generated_at: datetime

    @property
    def questions(self) -> list[QuestionView]:
        """Every question in pack order."""
        return [q for group in self.groups for q in group.questions]

    @property
    def withheld_total(self) -> int:
        """Questions in the pack's states the audience may not see."""
        return sum(self.withheld.values())


def _theme_order(theme: str) -> int:
    return THEMES.index(theme) if theme in THEMES else len(THEMES)


def build_pack(
    session: Session, meeting: Meeting, audience: Audience, *, now: datetime, zone: ZoneInfo
) -> Pack:
    """The pack of `meeting` as `audience` may see it."""
    rows = list(
        session.scalars(
            select(Question)
            .options(
                joinedload(Question.meeting).joinedload(Meeting.board), joinedload(Question.asker)
            )
            .where(
                Question.meeting_id == meeting.id,
                Question.state.in_((*PACK_STATES, QuestionState.SUBMITTED)),
            )
        )
    )
    split = partition([q for q in rows if q.state in PACK_STATES], audience)
    awaiting = len(
        partition([q for q in rows if q.state is QuestionState.SUBMITTED], audience).visible
    )
    shown = views(session, split.visible, viewer=None, now=now, zone=zone)
    by_theme: dict[str, list[QuestionView]] = defaultdict(list)
    for question in shown:
        by_theme[question.theme if question.theme in THEMES else ""].append(question)
    groups = tuple(
        ThemeGroup(
            theme,
            tuple(sorted(items, key=lambda q: (-q.partner_count, q.created_at, q.ref))),
        )
        for theme, items in sorted(by_theme.items(), key=lambda kv: _theme_order(kv[0]))
    )
    marking = max(
        (q.marking for q in shown), key=lambda m: Marking(m).rank, default=Marking.OFFICIAL
    )
    paragraphs = tuple(sorted({q.exempt_paragraph for q in shown if q.exempt_paragraph}))
    return Pack(
        MeetingInfo.of(meeting, now, zone),
        groups,
        Marking(marking),
        paragraphs,
        awaiting,
        split.withheld,
        now,
    )


def secretariat_audience(session: Session) -> Audience:
    """Who reads a pack outside chat (the CLI): the secretariat channel's readers."""
    channel = session.scalar(
        select(Channel)
        .options(joinedload(Channel.partner))
        .where(Channel.secretariat.is_(True))
        .order_by(Channel.id)
    )
    if channel is None:
        return audience_of_unknown_channel("secretariat")
    return audience_of_channel(channel, list(session.scalars(select(Partner.slug))))


# -- the outline both formats are written from ------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One question, its words ready to print."""

    number: int
    ref: str
    text: str
    details: tuple[str, ...]
    answer: str | None = None


@dataclass(frozen=True)
class Outline:
    """The pack's translated words and structure, independent of the file format."""

    marking: str
    title: str
    intro: tuple[str, ...]
    sections: tuple[tuple[str, tuple[Entry, ...]], ...]
    notes: tuple[str, ...] = field(default=())


def marking_label(marking: Marking, paragraphs: tuple[int, ...], t: Translator) -> str:
    """'OFFICIAL-SENSITIVE · exempt under Schedule 12A, paragraph 14'."""
    label = t._("OFFICIAL-SENSITIVE") if marking is Marking.OFFICIAL_SENSITIVE else t._("OFFICIAL")
    for paragraph in paragraphs:
        label += " · " + t._("exempt under Schedule 12A, paragraph {num}").format(num=paragraph)
    return label


def _names(partners: tuple[PartnerView, ...], language: str) -> str:
    return ", ".join(p.label(language) for p in partners)


def _details(q: QuestionView, t: Translator) -> tuple[str, ...]:
    language = t.language
    lines = [
        t._("Asked by: {partners}").format(partners=_names(q.askers, language))
        if q.askers
        else t._("Asked anonymously")
    ]
    if q.supporters:
        lines.append(
            t._("Supported by: {partners}").format(partners=_names(q.supporters, language))
        )
    lines.append(
        t.ngettext("%(num)d partner in all", "%(num)d partners in all", q.partner_count)
        % {"num": q.partner_count}
    )
    if q.linked_refs:
        lines.append(t._("Linked: {refs}").format(refs=", ".join(q.linked_refs)))
    if q.carried_from:
        lines.append(
            t._("Carried forward from {ref}: not answered at the previous meeting.").format(
                ref=q.carried_from
            )
        )
    if q.marking is Marking.OFFICIAL_SENSITIVE or q.exempt_paragraph or q.restricted_to:
        label = marking_label(q.marking, (q.exempt_paragraph,) if q.exempt_paragraph else (), t)
        if q.restricted_to:
            label += " · " + t._("restricted to {partners}").format(
                partners=", ".join(q.restricted_to)
            )
        lines.append(label)
    return tuple(lines)


def _answer(q: QuestionView, t: Translator) -> str | None:
    if q.state is not QuestionState.ANSWERED or not q.answer:
        return None
    if q.answered_by:
        return t._("Answer ({name}): {answer}").format(name=q.answered_by, answer=q.answer)
    return t._("Answer: {answer}").format(answer=q.answer)


def outline(pack: Pack, t: Translator) -> Outline:
    """The pack's words in `t`'s language."""
    meeting = pack.meeting
    board = meeting.board.label(t.language)
    title = t._("Questions for the {board}, {when}").format(
        board=board, when=t.datetime(meeting.starts_at)
    )
    partners = {p.slug for q in pack.questions for p in (*q.askers, *q.supporters)}
    intro = [
        t.ngettext("%(num)d accepted question", "%(num)d accepted questions", len(pack.questions))
        % {"num": len(pack.questions)}
        + " · "
        + t.ngettext("from %(num)d partner", "from %(num)d partners", len(partners))
        % {"num": len(partners)},
    ]
    if meeting.questions_close is not None:
        closed = meeting.window == "closed"
        phrase = t._("Questions closed {when}.") if closed else t._("Questions close {when}.")
        intro.append(phrase.format(when=t.datetime(meeting.questions_close)))
    intro.append(t._("Prepared {when}.").format(when=t.datetime(pack.generated_at)))
    sections: list[tuple[str, tuple[Entry, ...]]] = []
    number = 0
    for group in pack.groups:
        entries: list[Entry] = []
        for q in group.questions:
            number += 1
            # Stored text may predate the checks at the door: nothing in it may stop the pack.
            answer = _answer(q, t)
            entries.append(
                Entry(
                    number,
                    pack_safe(q.ref),
                    pack_safe(q.text),
                    tuple(pack_safe(line) for line in _details(q, t)),
                    pack_safe(answer) if answer is not None else None,
                )
            )
        sections.append((t._(THEME_LABELS[group.theme]), tuple(entries)))
    notes: list[str] = []
    if not pack.questions:
        notes.append(t._("No questions have been accepted for this meeting."))
    if pack.awaiting:
        notes.append(
            t.ngettext(
                "%(num)d more question awaits moderation and is not in this pack.",
                "%(num)d more questions await moderation and are not in this pack.",
                pack.awaiting,
            )
            % {"num": pack.awaiting}
        )
    if pack.withheld_total:
        notes.append(
            t.ngettext(
                "%(num)d question is left out: its marking is above this pack's readers' "
                "clearance. See the board papers.",
                "%(num)d questions are left out: their marking is above this pack's readers' "
                "clearance. See the board papers.",
                pack.withheld_total,
            )
            % {"num": pack.withheld_total}
        )
    return Outline(
        marking_label(pack.marking, pack.exempt_paragraphs, t),
        pack_safe(title),
        tuple(intro),
        tuple(sections),
        tuple(notes),
    )


# -- Markdown ---------------------------------------------------------------------------------
def to_markdown(pack: Pack, t: Translator) -> str:
    """The pack as a Markdown document."""
    doc = outline(pack, t)
    out = [f"**{doc.marking}**", "", f"# {markdown_escape(doc.title)}", ""]
    out += [f"{line}  " for line in doc.intro]
    for heading, entries in doc.sections:
        out += ["", f"## {markdown_escape(heading)}", ""]
        for entry in entries:
            out.append(f"{entry.number}. **{entry.ref}**: {markdown_escape(entry.text)}  ")
            out += [f"   {markdown_escape(line)}  " for line in entry.details]
            if entry.answer:
                out.append(f"   > {markdown_escape(entry.answer)}")
            out.append("")
    if doc.notes:
        out += ["", *(f"_{markdown_escape(note)}_  " for note in doc.notes)]
    out += ["", f"**{doc.marking}**", ""]
    return "\n".join(line.rstrip() if not line.endswith("  ") else line for line in out)


# -- Word -------------------------------------------------------------------------------------
def to_docx(pack: Pack, t: Translator) -> bytes:
    """The pack as a Word document (.docx), marked in the header and footer of every page."""
    doc = outline(pack, t)
    document = Document()
    document.core_properties.title = doc.title
    document.core_properties.subject = doc.marking
    section = document.sections[0]
    for part in (section.header, section.footer):
        paragraph = part.paragraphs[0]
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        paragraph.add_run(doc.marking).bold = True
    document.add_heading(doc.title, level=0)
    for line in doc.intro:
        document.add_paragraph(line)
    for heading, entries in doc.sections:
        document.add_heading(heading, level=1)
        for entry in entries:
            paragraph = document.add_paragraph()
            paragraph.add_run(f"{entry.number}. {entry.ref}").bold = True
            paragraph.add_run(f"  {entry.text}")
            for line in entry.details:
                detail = document.add_paragraph()
                detail.paragraph_format.left_indent = Pt(18)
                run = detail.add_run(line)
                run.italic = True
                run.font.size = Pt(9)
            if entry.answer:
                answer = document.add_paragraph(entry.answer)
                answer.paragraph_format.left_indent = Pt(18)
    for note in doc.notes:
        document.add_paragraph().add_run(note).italic = True
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def file_name(pack: Pack, extension: str) -> str:
    """'questions-strategic-2026-12-03.docx'."""
    return f"questions-{pack.meeting.spec.replace(' ', '-')}.{extension}"
