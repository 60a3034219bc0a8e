"""One parser per field (`bot.fields`): the same value is accepted or refused alike by a chat
form, chat words, a question window and a CSV import, with the same fix; plus round-trips."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.collaboration import apply_collaboration, load_collaboration
from bot.fields import (
    FieldRefused,
    numeric_date,
    parse_clock,
    parse_date,
    parse_paragraph,
    parse_ref,
)
from bot.i18n import Translator
from bot.imports import ImportRejected, import_file
from bot.models import Decision
from bot.services.lexicon import lexicon_of
from bot.services.plain_words import parse
from bot.services.questions.windows import QuestionError, parse_until
from tests.conftest import NOW
from tests.factories import Seed
from tests.test_collaboration import BASE, mutate
from tests.test_handlers import ask
from tests.test_imports import DECISION_HEADER, write_csv

EN = Translator("en")
CY = Translator("cy")
SECRETARY = "ceri-morgan"


def _form(app: ScrutinyApp, **fields: str) -> str:
    words = " ".join(f'{name}="{value}"' for name, value in fields.items())
    return ask(app, SECRETARY, f'record-decision board=strategic title="Agreed" {words}')


def _imported(session: Session, tmp_path: Path, **fields: str) -> Decision | list[str]:
    row = {"ref": "SB-2026-090", "board": "strategic", "decided_on": "2026-11-19"}
    path = write_csv(
        tmp_path / "decisions.csv", DECISION_HEADER, [{**row, "title": "Agreed", **fields}]
    )
    try:
        import_file(session, "decisions", path, actor="test", now=NOW)
    except ImportRejected as rejected:
        return [str(problem) for problem in rejected.problems]
    return session.scalars(select(Decision).where(Decision.ref == "SB-2026-090")).one()


PARAGRAPHS = [
    ("14", 14),
    ("para 14", 14),
    ("Paragraph 12", 12),
    ("para. 18", 18),
    ("paragraff 13", 13),
    ("11", None),
    ("19", None),
    ("14.5", None),
    ("para fourteen", None),
]


@pytest.mark.parametrize(("typed", "expected"), PARAGRAPHS)
def test_a_paragraph_reads_the_same_in_a_form_and_an_import(
    app: ScrutinyApp, seed: Seed, session: Session, tmp_path: Path, typed: str, expected: int | None
) -> None:
    form = _form(app, decided_on="2026-11-19", exempt_paragraph=typed)
    imported = _imported(session, tmp_path, exempt_paragraph=typed)
    if expected is None:
        with pytest.raises(FieldRefused) as caught:
            parse_paragraph(typed)
        assert caught.value.field == "exempt_paragraph"
        what, fix = caught.value.describe(EN._)
        assert caught.value.sentence(EN._) in form
        assert isinstance(imported, list) and f"{what}; {fix}." in imported[0]
        assert "exempt_paragraph" in form and "exempt_paragraph" in imported[0]
    else:
        assert parse_paragraph(typed) == expected
        stored = session.scalars(select(Decision).where(Decision.title == "Agreed")).all()
        assert "Nothing was saved" not in form
        assert [d.exempt_paragraph for d in stored] == [expected, expected]
        assert isinstance(imported, Decision) and imported.exempt_paragraph == expected


DATES = [
    ("2026-11-19", date(2026, 11, 19)),
    ("2026-1-5", date(2026, 1, 5)),
    ("19/11/2026", date(2026, 11, 19)),
    ("19.11.2026", date(2026, 11, 19)),
    ("19/11/26", date(2026, 11, 19)),
    ("2026-02-31", None),
    ("31/02/2026", None),
    ("1926-01-01", None),
    ("soon", None),
]


@pytest.mark.parametrize(("typed", "expected"), DATES)
def test_a_date_reads_the_same_in_a_form_a_window_and_an_import(
    app: ScrutinyApp,
    seed: Seed,
    session: Session,
    tmp_path: Path,
    typed: str,
    expected: date | None,
) -> None:
    form = _form(app, decided_on=typed)
    imported = _imported(session, tmp_path, decided_on=typed)
    zone = app.settings.timezone
    if expected is None:
        with pytest.raises(FieldRefused) as caught:
            parse_date(typed, "decided_on")
        what, fix = caught.value.describe(EN._)
        assert caught.value.sentence(EN._) in form
        assert isinstance(imported, list) and f"{what}; {fix}." in imported[0]
        if numeric_date(typed) is not None:  # a window's closing time must look like a date
            with pytest.raises(QuestionError) as window:
                parse_until([typed], zone, EN)
            assert str(window.value) == parse_refusal(typed, "until").sentence(EN._)
    else:
        assert parse_date(typed, "decided_on") == expected
        assert "Nothing was saved" not in form
        assert isinstance(imported, Decision) and imported.decided_on == expected
        until = parse_until([typed, "17:00"], zone, EN)
        assert until is not None and until.date() == expected


def parse_refusal(typed: str, field: str) -> FieldRefused:
    with pytest.raises(FieldRefused) as caught:
        parse_date(typed, field)
    return caught.value


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("torfaen", ["torfaen"]), ("Heddlu Gwent", ["gwent-police"]), ("torfean", None)],
)
def test_a_partner_reads_the_same_in_a_form_and_an_import(
    app: ScrutinyApp,
    seed: Seed,
    session: Session,
    tmp_path: Path,
    typed: str,
    expected: list[str] | None,
) -> None:
    form = _form(app, decided_on="2026-11-19", restricted_to=typed)
    imported = _imported(session, tmp_path, restricted_to=typed)
    if expected is None:
        assert "“torfean” is not a partner; use one of" in form
        assert '(did you mean "torfaen"?)' in form
        assert isinstance(imported, list) and '(did you mean "torfaen"?)' in imported[0]
    else:
        assert isinstance(imported, Decision) and imported.restricted_to == expected
        stored = session.scalars(select(Decision).where(Decision.title == "Agreed")).all()
        assert [d.restricted_to for d in stored] == [expected, expected]


def test_a_board_named_in_welsh_is_found_by_the_form_as_by_an_import(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    out = ask(
        app,
        SECRETARY,
        'record-decision board="Bwrdd Strategol" decided_on=2026-11-19 title="Agreed"',
    )
    assert "Nothing was saved" not in out
    assert (
        session.scalars(select(Decision.ref).where(Decision.title == "Agreed"))
        .one()
        .startswith("SB-2026-")
    )
    refused = ask(app, SECRETARY, "record-decision board=strategc decided_on=2026-11-19 title=x")
    assert "“strategc” is not a board; use one of strategic" in refused
    assert '(did you mean "strategic"?)' in refused


def test_a_refusal_is_translated_and_names_the_field() -> None:
    with pytest.raises(FieldRefused) as caught:
        parse_paragraph("para 11", "exempt_paragraph")
    assert caught.value.field == "exempt_paragraph"
    welsh = caught.value.sentence(CY._)
    assert welsh != caught.value.sentence(EN._) and "“para 11”" in welsh


# -- round-trips --------------------------------------------------------------------------
DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))


@given(DAYS, st.sampled_from(["{:%Y-%m-%d}", "{:%d/%m/%Y}", "{:%d.%m.%Y}", "{:%d-%m-%Y}"]))
def test_every_written_form_of_a_date_reads_back(day: date, form: str) -> None:
    assert parse_date(form.format(day), "due_date") == day
    assert numeric_date(form.format(day)) == day


@given(st.dates(max_value=date(1999, 12, 31)) | st.dates(min_value=date(2100, 1, 1)))
def test_a_date_outside_the_register_years_is_refused(day: date) -> None:
    with pytest.raises(FieldRefused):
        parse_date(day.isoformat(), "due_date")


@given(st.integers(0, 999), st.sampled_from(["{}", "para {}", "paragraph {}", "Para. {}"]))
def test_a_paragraph_reads_back_only_inside_schedule_12a(number: int, form: str) -> None:
    if 12 <= number <= 18:
        assert parse_paragraph(form.format(number)) == number
    else:
        with pytest.raises(FieldRefused):
            parse_paragraph(form.format(number))


@given(st.times().map(lambda t: t.replace(second=0, microsecond=0)))
def test_a_time_of_day_reads_back_in_24_and_12_hour_forms(clock: time) -> None:
    assert parse_clock(clock.strftime("%H:%M"), "until") == clock
    twelve = clock.strftime("%I:%M") + ("pm" if clock.hour >= 12 else "am")
    assert parse_clock(twelve, "until") == clock
    welsh = clock.strftime("%I.%M") + (" yh" if clock.hour >= 12 else " yb")
    assert parse_clock(welsh, "until") == clock


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/\-]{0,20}", fullmatch=True))
def test_a_reference_reads_back_in_upper_case(ref: str) -> None:
    assert parse_ref(ref) == ref.upper()
    assert parse_ref(parse_ref(ref)) == parse_ref(ref)


# -- the chat vocabulary comes from the collaboration file --------------------------------
ADDED = """\
  - {slug: caerphilly, name: Caerphilly County Borough Council, name_cy: Cyngor Caerffili}
"""


def test_a_partner_added_or_renamed_in_the_collaboration_file_is_read_in_chat(
    session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "collaboration.yaml"
    path.write_text(BASE, encoding="utf-8")
    apply_collaboration(session, load_collaboration(path))
    today = NOW.date()
    assert parse("actions for Caerffili", today, lexicon_of(session, path), "cy").partners == ()

    added = mutate(BASE, "boards:\n", ADDED + "boards:\n")
    path.write_text(added, encoding="utf-8")
    apply_collaboration(session, load_collaboration(path))
    for words, language in [("actions for Caerphilly", "en"), ("camau Caerffili", "cy")]:
        query = parse(words, today, lexicon_of(session, path), language)
        assert query.partners == ("caerphilly",), words

    renamed = mutate(added, "Cyngor Caerffili", "Cyngor Bwrdeistref Sirol Caerffili")
    renamed = mutate(renamed, "name: Strategic Board\n", "name: Strategy Board\n")
    renamed = mutate(renamed, "name_cy: Bwrdd Strategol", "name_cy: Bwrdd Strategaeth")
    path.write_text(renamed, encoding="utf-8")
    apply_collaboration(session, load_collaboration(path))
    lexicon = lexicon_of(session, path)
    assert parse("penderfyniadau Bwrdd Strategaeth", today, lexicon, "cy").board == "strategic"
    assert parse("decisions of the Strategy Board", today, lexicon, "en").board == "strategic"
