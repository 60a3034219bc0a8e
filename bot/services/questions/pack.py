"""The question pack: a meeting's accepted questions for the agenda, as Markdown and Word.

Questions are grouped by the review's five themes (in its order, untagged ones last) and,
within a theme, ordered by how many partners stand behind each (askers and supporters),
then by when it was first asked. Each shows its askers' partners, supporters and linked
refs. The pack is built for one audience (the secretariat's clearance) through
`bot.visibility`, carries the highest marking of what it contains, and says how many
questions were left out, without their content.

A question merged into another keeps its own words: the pack shows them under the question
it was merged into ("Also asked by: Newport City Council"), when the pack's readers may see
the merged question too. Both formats come from translated outlines (`outline`), one per
language, so they always agree; a bilingual pack (`cy+en`) interleaves them, Welsh first: each
heading, intro and question's details in Welsh then English, and each question's own words
once, as they were asked (they are not translated, so printing the whole pack twice would only
repeat them). Word files are A4, with the collaboration's central team as author.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from docx import Document
from docx.document import Document as WordDocument
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Mm, Pt
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bot.domain import Marking, QuestionState
from bot.i18n import Translator
from bot.models import Channel, Meeting, Partner, Question
from bot.rendering.escapes import markdown_escape
from bot.services.queries import PartnerView
from bot.services.questions.core import THEME_LABELS, THEMES, QuestionView, views
from bot.services.questions.windows import MeetingInfo
from bot.text_input import pack_safe
from bot.visibility import Audience, audience_of_channel, audience_of_unknown_channel, partition

PACK_STATES = (QuestionState.ACCEPTED, QuestionState.ANSWERED)


@dataclass(frozen=True)
class ThemeGroup:
    """One theme's questions in pack order."""

    theme: str
    questions: tuple[QuestionView, ...]


@dataclass(frozen=True)
class AlsoAsked:
    """The own words of a question merged into one in the pack."""

    ref: str
    partner: PartnerView
    text: str


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
    also_asked: dict[str, tuple[AlsoAsked, ...]] = field(default_factory=dict)
    """By the ref of a question in the pack: the questions merged into it that the audience
    may see, oldest first."""
    also_withheld: int = 0
    """Questions merged into those in the pack that the audience may not see."""
    author: PartnerView | None = None
    """Who the pack is from: the collaboration's central team."""

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
    also_asked, also_withheld = _merged_wordings(session, split.visible, audience)
    return Pack(
        MeetingInfo.of(meeting, now, zone),
        groups,
        Marking(marking),
        paragraphs,
        awaiting,
        split.withheld,
        now,
        also_asked,
        also_withheld,
        pack_author(session),
    )


def _merged_wordings(
    session: Session, shown: Sequence[Question], audience: Audience
) -> tuple[dict[str, tuple[AlsoAsked, ...]], int]:
    """The questions merged into each of `shown` (directly, or into one merged into it), as
    `audience` may see them, and how many it may not see."""
    root_of = {q.id: q.ref for q in shown}
    found: list[tuple[str, Question]] = []
    frontier = set(root_of)
    while frontier:
        merged = session.scalars(
            select(Question)
            .options(joinedload(Question.partner))
            .where(
                Question.merged_into_id.in_(frontier),
                Question.state == QuestionState.MERGED,
                Question.id.not_in(root_of),
            )
        ).all()
        frontier = set()
        for question in merged:
            assert question.merged_into_id is not None
            root_of[question.id] = root_of[question.merged_into_id]
            found.append((root_of[question.id], question))
            frontier.add(question.id)
    split = partition([q for _root, q in found], audience)
    visible = {q.id for q in split.visible}
    wordings: dict[str, list[AlsoAsked]] = defaultdict(list)
    for root, question in sorted(found, key=lambda rq: (rq[1].created_at, rq[1].ref)):
        if question.id in visible:
            wordings[root].append(
                AlsoAsked(question.ref, PartnerView.of(question.partner), question.text)
            )
    return {ref: tuple(items) for ref, items in wordings.items()}, split.withheld_total


def pack_author(session: Session) -> PartnerView | None:
    """Who packs come from: the central team, else the secretariat channel's partner."""
    central = session.scalar(select(Partner).where(Partner.kind == "central").order_by(Partner.id))
    if central is None:
        central = session.scalar(
            select(Partner)
            .join(Channel, Channel.partner_id == Partner.id)
            .where(Channel.secretariat.is_(True))
            .order_by(Channel.id)
        )
    return PartnerView.of(central) if central is not None else None


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
class AlsoAskedLine:
    """A merged question's words under the question it was merged into."""

    label: str
    """'Also asked by: Newport City Council (Q-SB-2026-12-004)'."""
    text: str


@dataclass(frozen=True)
class Entry:
    """One question, its words ready to print."""

    number: int
    ref: str
    text: str
    details: tuple[str, ...]
    answer_label: str | None = None
    """'Answer (Cllr Jones)', when the question is answered."""
    answer_text: str = ""
    also: tuple[AlsoAskedLine, ...] = ()

    @property
    def answer(self) -> str | None:
        """'Answer (Cllr Jones): ...', or None before an answer."""
        return f"{self.answer_label}: {self.answer_text}" if self.answer_label else None


@dataclass(frozen=True)
class Outline:
    """The pack's translated words and structure, independent of the file format."""

    marking: str
    title: str
    intro: tuple[str, ...]
    sections: tuple[tuple[str, tuple[Entry, ...]], ...]
    notes: tuple[str, ...] = field(default=())
    author: str = ""
    language: str = "en"


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


def _answer_label(q: QuestionView, t: Translator) -> str | None:
    if q.state is not QuestionState.ANSWERED or not q.answer:
        return None
    if q.answered_by:
        return t._("Answer ({name})").format(name=q.answered_by)
    return t._("Answer")


def _also_asked(items: tuple[AlsoAsked, ...], t: Translator) -> tuple[AlsoAskedLine, ...]:
    return tuple(
        AlsoAskedLine(
            pack_safe(
                t._("Also asked by: {partner} ({ref})").format(
                    partner=item.partner.label(t.language), ref=item.ref
                )
            ),
            pack_safe(item.text),
        )
        for item in items
    )


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
            label = _answer_label(q, t)
            entries.append(
                Entry(
                    number,
                    pack_safe(q.ref),
                    pack_safe(q.text),
                    tuple(pack_safe(line) for line in _details(q, t)),
                    pack_safe(label) if label is not None else None,
                    pack_safe(q.answer) if label is not None else "",
                    _also_asked(pack.also_asked.get(q.ref, ()), t),
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
    if pack.also_withheld:
        notes.append(
            t.ngettext(
                "The words of %(num)d merged question are left out: its marking is above this "
                "pack's readers' clearance.",
                "The words of %(num)d merged questions are left out: their marking is above this "
                "pack's readers' clearance.",
                pack.also_withheld,
            )
            % {"num": pack.also_withheld}
        )
    author = pack.author.label(t.language) if pack.author else t._("The secretariat")
    return Outline(
        marking_label(pack.marking, pack.exempt_paragraphs, t),
        pack_safe(title),
        tuple(intro),
        tuple(sections),
        tuple(notes),
        pack_safe(author),
        t.language,
    )


PackLanguages = Translator | Sequence[Translator]
"""One translator, or several for a bilingual pack (Welsh first)."""


def outlines(pack: Pack, languages: PackLanguages) -> list[Outline]:
    """The pack's outline in each of `languages`, in the order given."""
    translators = [languages] if isinstance(languages, Translator) else list(languages)
    if not translators:
        raise ValueError("a pack needs at least one language")
    return [outline(pack, t) for t in translators]


def _both(words: Sequence[str]) -> str:
    """The same words in each language on one line, Welsh first ('SWYDDOGOL / OFFICIAL')."""
    return " / ".join(dict.fromkeys(words))


def _entries(docs: Sequence[Outline], index: int) -> list[tuple[Entry, ...]]:
    """Each language's version of every entry of section `index`, entry by entry."""
    return list(zip(*(doc.sections[index][1] for doc in docs), strict=True))


def pack_title(pack: Pack, languages: PackLanguages) -> str:
    """The pack's title in its languages, Welsh first."""
    return _both([doc.title for doc in outlines(pack, languages)])


# -- Markdown ---------------------------------------------------------------------------------
def to_markdown(pack: Pack, languages: PackLanguages) -> str:
    """The pack as a Markdown document, in one language or interleaved Welsh then English."""
    docs = outlines(pack, languages)
    first = docs[0]
    marking = _both([doc.marking for doc in docs])
    out = [f"**{marking}**", ""]
    out += [f"# {markdown_escape(doc.title)}" for doc in docs] + [""]
    for doc in docs:
        out += [f"{line}  " for line in doc.intro]
        out.append("")
    for index in range(len(first.sections)):
        out += [f"## {markdown_escape(doc.sections[index][0])}" for doc in docs] + [""]
        for versions in _entries(docs, index):
            entry = versions[0]
            out.append(f"{entry.number}. **{entry.ref}**: {markdown_escape(entry.text)}  ")
            for version in versions:
                out += [f"   {markdown_escape(line)}  " for line in version.details]
            for also in zip(*(version.also for version in versions), strict=True):
                label = markdown_escape(_both([line.label for line in also]))
                out.append(f"   - _{label}_: {markdown_escape(also[0].text)}")
            if entry.answer_label:
                label = markdown_escape(_both([str(version.answer_label) for version in versions]))
                out.append(f"   > {label}: {markdown_escape(entry.answer_text)}")
            out.append("")
    for doc in docs:
        if doc.notes:
            out += ["", *(f"_{markdown_escape(note)}_  " for note in doc.notes)]
    out += ["", f"**{marking}**", ""]
    return "\n".join(line.rstrip() if not line.endswith("  ") else line for line in out)


# -- Word -------------------------------------------------------------------------------------
A4 = (Mm(210), Mm(297))
MARGINS = (Mm(20), Mm(25))
"""Top and bottom, left and right: room for a hole punch and the marking in header and footer."""
LANGUAGE_TAGS = {"cy": "cy-GB", "en": "en-GB"}


def to_docx(pack: Pack, languages: PackLanguages) -> bytes:
    """The pack as an A4 Word document (.docx) in one language or interleaved Welsh then
    English, marked in the header and footer of every page."""
    docs = outlines(pack, languages)
    first = docs[0]
    marking = _both([doc.marking for doc in docs])
    document = Document()
    properties = document.core_properties
    properties.title = _both([doc.title for doc in docs])
    properties.author = _both([doc.author for doc in docs])
    properties.last_modified_by = properties.author
    properties.subject = marking
    properties.language = LANGUAGE_TAGS[first.language]
    properties.created = properties.modified = pack.generated_at
    section = document.sections[0]
    section.page_width, section.page_height = A4
    section.top_margin = section.bottom_margin = MARGINS[0]
    section.left_margin = section.right_margin = MARGINS[1]
    for part in (section.header, section.footer):
        paragraph = part.paragraphs[0]
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
        paragraph.add_run(marking).bold = True
    for doc in docs:
        document.add_heading(doc.title, level=0)
    for doc in docs:
        for line in doc.intro:
            document.add_paragraph(line)
    for index in range(len(first.sections)):
        for doc in docs:
            document.add_heading(doc.sections[index][0], level=1)
        for versions in _entries(docs, index):
            _docx_entry(document, versions)
    for doc in docs:
        for note in doc.notes:
            document.add_paragraph().add_run(note).italic = True
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _docx_entry(document: WordDocument, versions: Sequence[Entry]) -> None:
    """One question: its words once, then its details in each language, its merged questions'
    words and its answer."""
    entry = versions[0]
    paragraph = document.add_paragraph()
    paragraph.add_run(f"{entry.number}. {entry.ref}").bold = True
    paragraph.add_run(f"  {entry.text}")
    for version in versions:
        for line in version.details:
            detail = document.add_paragraph()
            detail.paragraph_format.left_indent = Pt(18)
            run = detail.add_run(line)
            run.italic = True
            run.font.size = Pt(9)
    for also in zip(*(version.also for version in versions), strict=True):
        merged = document.add_paragraph()
        merged.paragraph_format.left_indent = Pt(18)
        merged.add_run(_both([line.label for line in also]) + ": ").italic = True
        merged.add_run(also[0].text)
    if entry.answer_label:
        answer = document.add_paragraph()
        answer.paragraph_format.left_indent = Pt(18)
        answer.add_run(
            _both([str(version.answer_label) for version in versions]) + ": "
        ).bold = True
        answer.add_run(entry.answer_text)


def file_name(pack: Pack, extension: str) -> str:
    """'questions-strategic-2026-12-03.docx'."""
    return f"questions-{pack.meeting.spec.replace(' ', '-')}.{extension}"
