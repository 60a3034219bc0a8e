"""Welsh mutations, dates in words in both languages, the glossary (shipped and in the
collaboration file, with line-numbered errors), names read from the database, and
suggestions in the member's language naming only commands they may run."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.collaboration import ConfigError, check_collaboration, load_glossary_file
from bot.models import Partner
from bot.services.lexicon import lexicon_of
from bot.services.plain_words import parse, tokens
from bot.services.welsh_words import mutations, radicals, same_word
from bot.services.word_dates import read_period
from tests.factories import Seed
from tests.support.lexicon import EXAMPLE, example_lexicon
from tests.test_handlers import ask

TODAY = date(2026, 11, 23)
LEXICON = example_lexicon()


@pytest.mark.parametrize(
    ("typed", "radical"),
    [
        ("gyllideb", "cyllideb"),
        ("nghyllideb", "cyllideb"),
        ("chyllideb", "cyllideb"),
        ("Dorfaen", "torfaen"),
        ("Nhorfaen", "torfaen"),
        ("Thorfaen", "torfaen"),
        ("fwrdd", "bwrdd"),
        ("mwrdd", "bwrdd"),
        ("ddata", "data"),
        ("lywodraethu", "llywodraethu"),
        ("Ragfyr", "rhagfyr"),
        ("waith", "gwaith"),
        ("hôl", "ol"),
    ],
)
def test_radicals_undo_soft_nasal_and_aspirate_mutations(typed: str, radical: str) -> None:
    assert radical in radicals(typed)
    assert same_word(typed, radical)


def test_mutations_of_a_radical() -> None:
    assert {"canolfan", "ganolfan", "nghanolfan", "chanolfan"} <= mutations("canolfan")
    assert {"torfaen", "dorfaen", "nhorfaen", "thorfaen"} <= mutations("Torfaen")
    assert not same_word("cyllid", "cyllideb")


def test_tokens_split_clitics_and_join_refs() -> None:
    assert tokens("what's sy'n wedi'i") == ["what", "'s", "sy", "'n", "wedi", "'i"]
    assert tokens("syn wedii rwystro") == ["sy", "'n", "wedi", "'i", "rwystro"]
    prefixes = LEXICON.ref_prefixes
    assert tokens("TP 14, tp014 and sb 2026 031", prefixes) == [
        "tp-14",
        "tp-014",
        "and",
        "sb-2026-031",
    ]
    assert tokens("in 2026-02", prefixes) == ["in", "2026-02"]
    assert tokens("Q-SB-2026-12-003?", prefixes) == ["q-sb-2026-12-003"]


@pytest.mark.parametrize(
    ("words", "first", "last"),
    [
        ("1 October", date(2026, 10, 1), date(2026, 10, 1)),
        ("1st October 2025", date(2025, 10, 1), date(2025, 10, 1)),
        ("October 1", date(2026, 10, 1), date(2026, 10, 1)),
        ("November 2026", date(2026, 11, 1), date(2026, 11, 30)),
        ("1af Hydref", date(2026, 10, 1), date(2026, 10, 1)),
        ("mis Tachwedd", date(2026, 11, 1), date(2026, 11, 30)),
        ("Fawrth 2027", date(2027, 3, 1), date(2027, 3, 31)),
        ("last month", date(2026, 10, 1), date(2026, 10, 31)),
        ("y mis diwethaf", date(2026, 10, 1), date(2026, 10, 31)),
        ("next month", date(2026, 12, 1), date(2026, 12, 31)),
        ("y mis nesaf", date(2026, 12, 1), date(2026, 12, 31)),
        ("this year", date(2026, 1, 1), date(2026, 12, 31)),
        ("eleni", date(2026, 1, 1), date(2026, 12, 31)),
        ("last year", date(2025, 1, 1), date(2025, 12, 31)),
        ("llynedd", date(2025, 1, 1), date(2025, 12, 31)),
        ("y flwyddyn nesaf", date(2027, 1, 1), date(2027, 12, 31)),
        ("yr wythnos hon", date(2026, 11, 23), date(2026, 11, 29)),
        ("next two weeks", date(2026, 11, 23), date(2026, 12, 7)),
        ("y pythefnos nesaf", date(2026, 11, 23), date(2026, 12, 7)),
        ("y 10 diwrnod nesaf", date(2026, 11, 23), date(2026, 12, 3)),
        ("the past 30 days", date(2026, 10, 24), date(2026, 11, 23)),
        ("19/11/2026", date(2026, 11, 19), date(2026, 11, 19)),
        ("start of October", date(2026, 10, 1), date(2026, 10, 1)),
        ("end of the year", date(2026, 12, 31), date(2026, 12, 31)),
        ("diwedd y flwyddyn", date(2026, 12, 31), date(2026, 12, 31)),
        ("dechrau mis Medi", date(2026, 9, 1), date(2026, 9, 1)),
    ],
)
def test_periods_in_words(words: str, first: date, last: date) -> None:
    period = read_period(tokens(words), 0, TODAY)
    assert period is not None and (period.first, period.last) == (first, last)
    assert period.used == len(tokens(words))


@pytest.mark.parametrize(
    ("words", "since", "until", "due"),
    [
        ("decisions since 1 October", date(2026, 10, 1), None, None),
        ("penderfyniadau ers 1 Hydref 2026", date(2026, 10, 1), None, None),
        ("decisions in November", date(2026, 11, 1), date(2026, 11, 30), None),
        ("penderfyniadau ym mis Tachwedd", date(2026, 11, 1), date(2026, 11, 30), None),
        ("actions due before 1 December", None, date(2026, 11, 30), None),
        ("camau erbyn 4 Rhagfyr", None, date(2026, 12, 4), None),
        ("actions due by the end of the year", None, date(2026, 12, 31), None),
        ("decisions since the start of October", date(2026, 10, 1), None, None),
        ("decisions after 19 November", date(2026, 11, 20), None, None),
        ("actions due in the next two weeks", None, None, 14),
        ("camau yn ystod y pythefnos nesaf", None, None, 14),
        ("decisions between 1 March and 30 June", date(2026, 3, 1), date(2026, 6, 30), None),
        ("penderfyniadau rhwng 1 Mawrth a 30 Mehefin", date(2026, 3, 1), date(2026, 6, 30), None),
    ],
)
def test_dates_in_questions(
    words: str, since: date | None, until: date | None, due: int | None
) -> None:
    query = parse(words, TODAY, LEXICON)
    assert (query.since, query.until, query.due_within_days) == (since, until, due)
    assert query.terms == ()


def test_may_and_march_are_months_only_where_a_date_is_meant() -> None:
    assert parse("actions that may slip", TODAY, LEXICON).since is None
    assert parse("decisions in may", TODAY, LEXICON).since == date(2026, 5, 1)
    assert parse("dywedodd mai", TODAY, LEXICON).since is None


@pytest.mark.parametrize(
    ("words", "read"),
    [
        ("late", "overdue"),
        ("behind", "overdue"),
        ("slipping", "overdue"),
        ("hwyr", "overdue"),
        ("ar ei hôl hi", "overdue"),
        ("ar ei hol hi", "overdue"),
        ("stuck", "blocked"),
        ("wedi'i rwystro", "blocked"),
        ("wedi'u rhwystro", "blocked"),
        ("complete", "done"),
        ("finished", "done"),
        ("wedi'i gwblhau", "done"),
        ("on track", "green"),
        ("ar y trywydd iawn", "green"),
    ],
)
def test_everyday_status_words(words: str, read: str) -> None:
    query = parse(words, TODAY, LEXICON)
    found = {s.value for s in query.statuses} | {r.value for r in query.rags}
    if query.overdue:
        found.add("overdue")
    assert found == {read} and query.terms == ()


def test_filler_words_are_not_searched() -> None:
    for words in ("what's happened with the status?", "beth sy'n digwydd?", "tell me the latest"):
        assert parse(words, TODAY, LEXICON).terms == (), words


def test_glossary_expands_a_term_into_both_languages() -> None:
    query = parse("canolfan ddata", TODAY, LEXICON)
    assert query.terms == ("canolfan ddata",) and query.also == ("data centre",)
    (group,) = query.search
    assert "data centre" in group and "ganolfan ddata" in group
    budget = parse("gyllideb", TODAY, LEXICON)
    assert "budget" in budget.search[0] and budget.also == ("budget",)
    assert parse("HR and payroll", TODAY, LEXICON).also == ("ad a chyflogres",)


def test_a_ref_anywhere_in_the_words() -> None:
    query = parse("where are we with tp014 please?", TODAY, LEXICON)
    assert query.refs == ("TP-014",) and query.terms == ()


def test_the_shipped_glossary_is_valid_and_bilingual() -> None:
    entries = load_glossary_file(Path(__file__).resolve().parent.parent / "config/glossary.yaml")
    english = {term for e in entries for term in e.en}
    for wanted in ("budget", "data centre", "workforce", "cyber security", "value for money"):
        assert wanted in english
    welsh = {term for e in entries for term in e.cy}
    for wanted in ("cyllideb", "canolfan ddata", "gweithlu", "seiberddiogelwch", "gwerth am arian"):
        assert wanted in welsh
    assert "ad a chyflogres" in welsh


def test_glossary_section_of_the_collaboration_file(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    good = tmp_path / "good.yaml"
    good.write_text(text + "\nglossary:\n  - en: [zebra crossing]\n    cy: [croesfan sebra]\n")
    assert check_collaboration(good) == []
    bad = tmp_path / "bad.yaml"
    bad.write_text(text + "\nglossary:\n  - en: [zebra crossing]\n  - en: []\n    cy: ['  ']\n")
    problems = [str(p) for p in check_collaboration(bad)]
    lines = len(text.splitlines())
    assert any(f"bad.yaml:{lines + 3}: glossary[0]" in p and "cy" in p for p in problems), problems
    assert any(f"bad.yaml:{lines + 5}" in p and "glossary[1].cy[0]" in p for p in problems)
    broken = tmp_path / "glossary.yaml"
    broken.write_text("glossary:\n  - en: [a]\n    cy: [b]\n    fr: [c]\n")
    with pytest.raises(ConfigError) as error:
        load_glossary_file(broken)
    assert "glossary.yaml:4: glossary[0].fr" in str(error.value)


def test_partner_names_come_from_the_database(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    torfaen = session.query(Partner).filter_by(slug="torfaen").one()
    torfaen.name, torfaen.name_cy = "Torfaen Unitary Council", "Cyngor Bwrdeistref Sirol Ysbyty"
    session.commit()
    words = lexicon_of(session, EXAMPLE)
    assert parse("actions for Ysbyty", TODAY, words).partners == ("torfaen",)
    assert parse("camau yn Ysbyty", TODAY, words).partners == ("torfaen",)
    assert "Torfaen Unitary Council" in ask(app, "sian-hughes", "overdue actions in ysbyty")


def test_suggestions_name_only_commands_the_member_may_run(app: ScrutinyApp, seed: Seed) -> None:
    scrutiny = ask(app, "sian-hughes", "rejct the zebra")
    assert "reject" not in scrutiny
    assert "Did you mean /scrutiny reject?" in ask(app, "ceri-morgan", "rejct the zebra")


def test_suggestions_are_in_the_members_language(app: ScrutinyApp, seed: Seed) -> None:
    out = ask(app, "eleri-jones", "penderfyniadau sebra")
    assert "/scrutiny camau sebra" in out and "/scrutiny actions" not in out
    both = ask(app, "eleri-jones", "penderfyniadau strategol sebra")
    assert "/scrutiny penderfyniadau strategic" in both
    english = ask(app, "sian-hughes", "decisions zebra")
    assert "/scrutiny actions zebra" in english
