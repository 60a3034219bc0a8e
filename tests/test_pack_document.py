"""The question pack as a clerk prints it: A4, the collaboration's central team as author, the
pack's title, English, Welsh or bilingual (Welsh first, section by section), and the words of
merged questions kept under the question they were merged into, as far as the readers may see.
Word files are opened with python-docx, as Word would read them."""

from __future__ import annotations

import base64
import io
from datetime import timedelta
from pathlib import Path

import docx
import pytest
from docx.shared import Length, Mm
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.app import ScrutinyApp
from bot.cli import cli
from bot.domain import ChannelLanguage, Marking
from bot.i18n import Translator
from bot.models import Channel, Delivery, Meeting, Partner
from bot.services.questions import pack as question_pack
from bot.services.questions import posts as question_posts
from bot.visibility import Audience
from tests.factories import Seed
from tests.test_questions import NEWPORT, POLICE, SECRETARIAT, TORFAEN, ref_of, say
from tests.test_questions_pack import strategic_pack

SB = "strategic 2026-12-03"
EN = Translator("en")
CY = Translator("cy")
ORIGINAL = "Is the data centre move on budget?"
NEWPORT_WORDS = "Will the data centre move stay within its budget this year?"
POLICE_WORDS = "Did the cyber assessment (TP-006) change the data centre move budget?"


def _accepted(app: ScrutinyApp, user: str, text: str) -> str:
    ref = ref_of(say(app, user, f"ask {SB} {text}"))
    assert "Accepted" in say(app, SECRETARIAT, f"accept {ref}").text
    return ref


def _merged_pack(app: ScrutinyApp, seed: Seed) -> tuple[str, str, str]:
    """Torfaen's question, with Newport's (open) and the police's (sensitive) merged into it."""
    target = _accepted(app, TORFAEN, ORIGINAL)
    newport = ref_of(say(app, NEWPORT, f"ask! {SB} {NEWPORT_WORDS}"))
    police = ref_of(say(app, POLICE, f"ask! {SB} {POLICE_WORDS}"))
    assert "Merged" in say(app, SECRETARIAT, f"merge {newport} into {target}").text
    assert "Merged" in say(app, SECRETARIAT, f"merge {police} into {target}").text
    return target, newport, police


def _headings(document: docx.document.Document, level: int) -> list[str]:
    style = "Title" if level == 0 else f"Heading {level}"
    return [p.text for p in document.paragraphs if p.style is not None and p.style.name == style]


def _mm(*lengths: Length | None) -> tuple[float, ...]:
    """Lengths in whole millimetres (Word stores twentieths of a point)."""
    assert all(length is not None for length in lengths)
    return tuple(round(length.mm, 1) for length in lengths if length is not None)


def _open(data: bytes) -> docx.document.Document:
    return docx.Document(io.BytesIO(data))


def test_the_word_pack_is_a4_by_the_central_team_titled_as_the_pack(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    _accepted(app, TORFAEN, ORIGINAL)
    pack = strategic_pack(app, seed, session)
    document = _open(question_pack.to_docx(pack, EN))
    section = document.sections[0]
    assert _mm(section.page_width, section.page_height) == (210, 297)
    for margin in (section.left_margin, section.right_margin):
        assert margin is not None and Mm(15) <= margin <= Mm(30)
    for margin in (section.top_margin, section.bottom_margin):
        assert margin is not None and Mm(15) <= margin <= Mm(30)
    properties = document.core_properties
    assert properties.author == "SRS central team"
    assert properties.author != "python-docx" and properties.last_modified_by == "SRS central team"
    title = "Questions for the Strategic Board, Thursday 3 December 2026, 10:00am"
    assert properties.title == title
    assert _headings(document, 0) == [title]
    assert properties.language == "en-GB"

    welsh = _open(question_pack.to_docx(pack, CY)).core_properties
    assert welsh.author == "Tîm canolog y GAR"
    assert welsh.title.startswith("Cwestiynau ar gyfer y Bwrdd Strategol, Dydd Iau 3 Rhagfyr 2026")
    assert welsh.language == "cy-GB"


def test_without_a_central_team_the_secretariat_channels_partner_is_the_author(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    _accepted(app, TORFAEN, ORIGINAL)
    central = session.scalar(select(Partner).where(Partner.kind == "central"))
    assert central is not None
    central.kind = "partner"
    secretariat = session.scalar(select(Channel).where(Channel.secretariat.is_(True)))
    assert secretariat is not None
    secretariat.partner_id = seed.partners["torfaen"].id
    session.commit()
    document = _open(question_pack.to_docx(strategic_pack(app, seed, session), EN))
    assert document.core_properties.author == seed.partners["torfaen"].name


def test_a_bilingual_pack_puts_welsh_before_english_in_every_section(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    target, newport, police = _merged_pack(app, seed)
    pack = strategic_pack(app, seed, session)
    both = [CY, EN]
    document = _open(question_pack.to_docx(pack, both))
    cy_title, en_title = (
        question_pack.outline(pack, CY).title,
        question_pack.outline(pack, EN).title,
    )
    assert _headings(document, 0) == [cy_title, en_title]
    assert document.core_properties.title == f"{cy_title} / {en_title}"
    assert document.core_properties.author == "Tîm canolog y GAR / SRS central team"
    assert document.core_properties.language == "cy-GB"
    assert _headings(document, 1) == ["Cwestiynau eraill", "Other questions"]
    assert document.sections[0].header.paragraphs[0].text == "SWYDDOGOL / OFFICIAL"

    texts = [p.text for p in document.paragraphs]
    # The question's own words once; its details in Welsh, then in English.
    assert sum(ORIGINAL in text for text in texts) == 1
    asked_cy = texts.index(next(t for t in texts if t.startswith("Gofynnwyd gan:")))
    asked_en = texts.index(next(t for t in texts if t.startswith("Asked by:")))
    assert texts.index(f"1. {target}  {ORIGINAL}") < asked_cy < asked_en
    also = [t for t in texts if "Also asked by" in t]
    assert also == [
        "Gofynnwyd hefyd gan: Cyngor Dinas Casnewydd "
        f"({newport}) / Also asked by: Newport City Council ({newport}): {NEWPORT_WORDS}",
        "Gofynnwyd hefyd gan: Heddlu Gwent "
        f"({police}) / Also asked by: Gwent Police ({police}): {POLICE_WORDS}",
    ]
    # The intro in Welsh comes before the intro in English.
    assert texts.index("1 cwestiwn wedi'i dderbyn · gan 3 phartner") < texts.index(
        "1 accepted question · from 3 partners"
    )

    markdown = question_pack.to_markdown(pack, both)
    assert markdown.index(f"# {cy_title}") < markdown.index(f"# {en_title}")
    assert markdown.index("## Cwestiynau eraill") < markdown.index("## Other questions")
    assert markdown.index("## Other questions") < markdown.index(f"**{target}**")
    assert markdown.count("Is the data centre move on budget?") == 1
    assert (
        f"   - _Gofynnwyd hefyd gan: Cyngor Dinas Casnewydd ({newport}) / Also asked by: Newport "
        f"City Council ({newport})_: {NEWPORT_WORDS}"
    ) in markdown


def test_a_merged_question_keeps_its_words_only_for_readers_who_may_see_it(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    target, newport, police = _merged_pack(app, seed)
    secretariat = strategic_pack(app, seed, session)
    assert [a.ref for a in secretariat.also_asked[target]] == [newport, police]
    english = question_pack.to_markdown(secretariat, EN)
    assert english.index(ORIGINAL) < english.index(NEWPORT_WORDS) < english.index(POLICE_WORDS)
    assert f"_Also asked by: Newport City Council ({newport})_: {NEWPORT_WORDS}" in english

    official = Audience(Marking.OFFICIAL, False, frozenset({"srs"}))
    public = strategic_pack(app, seed, session, official)
    assert [q.ref for q in public.questions] == [target]
    assert [a.ref for a in public.also_asked[target]] == [newport]
    assert public.also_withheld == 1
    for text in (
        question_pack.to_markdown(public, [CY, EN]),
        "\n".join(p.text for p in _open(question_pack.to_docx(public, EN)).paragraphs),
    ):
        assert NEWPORT_WORDS in text
        assert POLICE_WORDS not in text and police not in text and "cyber" not in text
    assert (
        "The words of 1 merged question are left out: its marking is above this pack's "
        "readers' clearance." in question_pack.to_markdown(public, EN)
    )

    # In chat too, the secretariat sees the merged words under the question.
    chat = say(app, SECRETARIAT, f"pack {SB}").text
    assert f"Also asked by: Newport City Council ({newport}): {NEWPORT_WORDS}" in chat
    blocks = say(app, SECRETARIAT, f"pack {SB}", fmt="slack.json").bodies[0]
    assert f"_Also asked by: Newport City Council ({newport})_: {NEWPORT_WORDS}" in blocks


def test_a_question_merged_into_a_merged_question_follows_it(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    first = ref_of(say(app, NEWPORT, f"ask! {SB} {NEWPORT_WORDS}"))
    middle = ref_of(say(app, POLICE, f"ask! {SB} {POLICE_WORDS}"))
    assert "Merged" in say(app, SECRETARIAT, f"merge {first} into {middle}").text
    target = ref_of(say(app, TORFAEN, f"ask! {SB} {ORIGINAL}"))
    assert "Accepted" in say(app, SECRETARIAT, f"accept {target}").text
    assert "Merged" in say(app, SECRETARIAT, f"merge {middle} into {target}").text
    pack = strategic_pack(app, seed, session)
    assert [q.ref for q in pack.questions] == [target]
    assert [a.ref for a in pack.also_asked[target]] == [first, middle]


def test_a_cy_en_secretariat_channel_gets_one_bilingual_pack(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    _merged_pack(app, seed)
    channel = session.scalar(select(Channel).where(Channel.secretariat.is_(True)))
    assert channel is not None
    channel.language = ChannelLanguage.CY_EN
    session.commit()
    meeting = session.get(Meeting, seed.meetings[0].id)
    assert meeting is not None and meeting.questions_close is not None
    after_close = meeting.questions_close + timedelta(minutes=5)
    question_posts.run_due(session, app.renderer, now=after_close, zone=app.settings.timezone)
    session.commit()
    post = session.scalar(select(Delivery).where(Delivery.kind == question_posts.KIND_PACK))
    assert post is not None
    word, markdown = post.payload["files"]
    assert word["filename"].endswith(".docx") and markdown["filename"].endswith(".md")
    assert word["title"] == (
        "Pecyn cwestiynau: strategic 2026-12-03 / Question pack: strategic 2026-12-03"
    )
    document = _open(base64.b64decode(word["base64"]))
    assert _headings(document, 1) == ["Cwestiynau eraill", "Other questions"]
    assert _mm(document.sections[0].page_width, document.sections[0].page_height) == (210, 297)
    assert any(NEWPORT_WORDS in p.text for p in document.paragraphs)
    assert markdown["content"].index("## Cwestiynau eraill") < markdown["content"].index(
        "## Other questions"
    )


@pytest.mark.parametrize(
    ("language", "headings"),
    [
        ("en", ["Other questions"]),
        ("cy", ["Cwestiynau eraill"]),
        ("cy+en", ["Cwestiynau eraill", "Other questions"]),
    ],
)
def test_the_command_line_writes_the_pack_in_the_language_asked(
    app: ScrutinyApp,
    seed: Seed,
    session: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    language: str,
    headings: list[str],
) -> None:
    _merged_pack(app, seed)
    monkeypatch.setenv("DATABASE_URL", app.settings.database_url)
    monkeypatch.setenv("SCRUTINY_LANGUAGE", "en")
    out = tmp_path / "pack.docx"
    meeting = str(seed.meetings[0].id)
    args = ["questions", "pack", "--meeting", meeting, "--format", "docx", "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--language", language])
    assert result.exit_code == 0, result.output
    document = docx.Document(str(out))
    assert _headings(document, 1) == headings
    assert _mm(document.sections[0].page_width, document.sections[0].page_height) == (210, 297)
    assert "SRS central team" in document.core_properties.author or language == "cy"
    assert any(NEWPORT_WORDS in p.text for p in document.paragraphs)

    markdown = CliRunner().invoke(
        cli, ["questions", "pack", "--meeting", meeting, "--language", language]
    )
    assert markdown.exit_code == 0, markdown.output
    positions = [markdown.stdout.index(f"## {heading}") for heading in headings]
    assert positions == sorted(positions)


def test_an_unknown_pack_language_is_refused_with_the_choices(
    app: ScrutinyApp, seed: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", app.settings.database_url)
    monkeypatch.setenv("SCRUTINY_LANGUAGE", "en")
    result = CliRunner().invoke(
        cli, ["questions", "pack", "--meeting", str(seed.meetings[0].id), "--language", "fr"]
    )
    assert result.exit_code == 2
    assert 'Unknown language "fr": use en, cy or cy+en.' in result.stderr
