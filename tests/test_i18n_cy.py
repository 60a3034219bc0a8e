"""Cymraeg: digests, replies, the question pack and the console in Welsh, English and both;
Welsh plural forms; Welsh commands and free-text questions answered in Welsh."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.i18n import Translator, translations
from bot.messages import Reply
from bot.models import Meeting
from bot.rendering.templates import TEMPLATES_DIR, _environment
from bot.services.digests import TEMPLATE, build_digest
from bot.services.plain_words import parse
from bot.services.questions import pack as question_pack
from tests.conftest import NOW
from tests.factories import Seed
from tests.support.lexicon import example_lexicon
from tests.test_console import console_run
from tests.test_questions import SECRETARIAT, TORFAEN, ref_of, say

WELSH_MEMBER = "U0MON00001"  # eleri-jones, Monmouthshire, language cy
COUNTS = (0, 1, 2, 3, 6, 11)
LEXICON = example_lexicon()

# Words that would show an English string leaking into a Welsh rendering.
ENGLISH_LEAKS = (
    "digest",
    "overdue",
    "days late",
    "owner:",
    "due ",
    "Coming up",
    "exempt",
    "questions close",
    "New decision",
    "showing",
    "left out",
)


def _digest_reply(session: Session, seed: Seed) -> Reply:
    return Reply(TEMPLATE, build_digest(session, seed.channels["srs-torfaen"], now=NOW).context())


def _no_english(text: str, allowed: tuple[str, ...] = ()) -> None:
    # Titles of decisions and actions are data (kept as entered); strip known ones first.
    for title in allowed:
        text = text.replace(title, "")
    leaks = [word for word in ENGLISH_LEAKS if word in text]
    assert not leaks, f"English in a Welsh rendering: {leaks}\n{text}"


TITLES = (
    "Agreed the 2027/28 partner contributions",
    "Approved the data centre move business case (phase 2)",
    "Migrate file shares to SharePoint Online",
    "Replace core network switches",
)


def test_the_digest_in_welsh_english_and_bilingual_welsh_first(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    reply = _digest_reply(session, seed)
    welsh = app.renderer.render_text(reply, ("cy",))
    english = app.renderer.render_text(reply, ("en",))
    both = app.renderer.render_text(reply, ("cy", "en"))

    assert welsh.startswith(
        "Byrddau'r GAR — crynodeb ar gyfer Cyngor Bwrdeistref Sirol Torfaen"
        " · Dydd Llun 23 Tachwedd 2026"
    )
    assert "Penderfyniadau newydd (2)" in welsh
    assert "Bwrdd Cyllid a Llywodraethu, 20 Tach" in welsh
    assert "+ 1 penderfyniad eithriedig: gweler papurau'r bwrdd." in welsh
    assert "Cam gweithredu hwyr Cyngor Bwrdeistref Sirol Torfaen (1)" in welsh
    assert "erbyn 30 Medi · 54 diwrnod yn hwyr · COCH · perchennog: S. Hughes" in welsh
    assert "+ 2 gam gweithredu nad yw'r sianel hon wedi'i chlirio ar eu cyfer." in welsh
    assert "I'w gwblhau o fewn y 14 diwrnod nesaf (1)" in welsh
    assert "Ar y gorwel" in welsh
    assert "cwestiynau'n cau: Dydd Gwener 27 Tachwedd 2026, 5:00yh (/scrutiny gofyn)" in welsh
    _no_english(welsh, TITLES)

    assert english.startswith("SRS boards — digest for Torfaen County Borough Council")
    assert "54 days late · RED · owner: S. Hughes" in english
    assert "Byrddau" not in english

    # One message, Welsh block first, then the English one.
    assert both == f"{welsh}\n\n{english}"


def test_the_slack_digest_is_valid_block_kit_in_welsh(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    body = json.loads(app.renderer.render(_digest_reply(session, seed), "slack.json", "cy"))
    texts = json.dumps(body, ensure_ascii=False)
    assert body["blocks"][0]["text"]["text"].startswith("Byrddau'r GAR — crynodeb")
    assert "*Penderfyniadau newydd (2)*" in texts
    assert "Ar y gorwel" in texts


def test_welsh_has_six_plural_forms_at_runtime() -> None:
    catalogue = translations("cy")
    assert [catalogue.plural(n) for n in COUNTS] == [0, 1, 2, 3, 4, 5]  # type: ignore[attr-defined]
    t = Translator("cy")
    forms = [
        t.ngettext(
            "+ %(num)d exempt action: see the board papers.",
            "+ %(num)d exempt actions: see the board papers.",
            n,
        )
        % {"num": n}
        for n in COUNTS
    ]
    assert forms == [
        "+ dim camau gweithredu eithriedig.",
        "+ 1 cam gweithredu eithriedig: gweler papurau'r bwrdd.",
        "+ 2 gam gweithredu eithriedig: gweler papurau'r bwrdd.",
        "+ 3 cham gweithredu eithriedig: gweler papurau'r bwrdd.",
        "+ 6 cham gweithredu eithriedig: gweler papurau'r bwrdd.",
        "+ 11 cam gweithredu eithriedig: gweler papurau'r bwrdd.",
    ]


@pytest.mark.parametrize(
    ("count", "withheld", "late"),
    [
        (1, "+ 1 cam gweithredu nad yw'r sianel hon wedi'i chlirio ar ei gyfer.", "1 diwrnod"),
        (2, "+ 2 gam gweithredu nad yw'r sianel hon wedi'i chlirio ar eu cyfer.", "2 ddiwrnod"),
        (3, "+ 3 cham gweithredu nad yw'r sianel hon wedi'i chlirio ar eu cyfer.", "3 diwrnod"),
        (6, "+ 6 cham gweithredu nad yw'r sianel hon wedi'i chlirio ar eu cyfer.", "6 diwrnod"),
        (11, "+ 11 cam gweithredu nad yw'r sianel hon wedi'i chlirio ar eu cyfer.", "11 diwrnod"),
    ],
)
def test_overdue_counts_read_naturally_in_the_welsh_digest_templates(
    count: int, withheld: str, late: str
) -> None:
    env = _environment("txt", "cy", TEMPLATES_DIR)
    context = {"t": Translator("cy"), "language": "cy", "today": NOW.date()}
    digest = env.get_template("digest/macros.j2").make_module(context)
    labels = env.get_template("common/labels.j2").make_module(context)
    section = SimpleNamespace(withheld={"official-sensitive": count}, withheld_total=count)
    assert str(digest.withheld_actions(section)) == withheld
    assert str(digest.other_heading(SimpleNamespace(total=count), None)) == (
        f"Cam gweithredu hwyr ({count})" if count == 1 else f"Camau gweithredu hwyr ({count})"
    )
    action = SimpleNamespace(overdue=True, days_late=count, days_left=None)
    assert str(labels.lateness(action)) == f"{late} yn hwyr"


def test_a_welsh_command_is_answered_in_welsh(app: ScrutinyApp, seed: Seed) -> None:
    reply = say(app, WELSH_MEMBER, "camau hwyr torfaen")
    assert reply.languages == ("cy",)
    assert reply.text.startswith(
        "Camau gweithredu: yn hwyr · Cyngor Bwrdeistref Sirol Torfaen (yn dangos 1–1 o 1)"
    )
    assert "TP-001" in reply.text
    assert "54 diwrnod yn hwyr · COCH · perchennog: S. Hughes" in reply.text
    assert "(1 yn eithriedig o dan Atodlen 12A)" in reply.text
    _no_english(reply.text, TITLES)
    # The same words from an English speaker give the same list in English.
    english = say(app, TORFAEN, "camau hwyr torfaen")
    assert english.text.startswith("Actions: overdue · Torfaen County Borough Council")


def test_a_welsh_free_text_question_is_answered_in_welsh(app: ScrutinyApp, seed: Seed) -> None:
    reply = say(app, WELSH_MEMBER, "beth benderfynodd y bwrdd strategol ers 2026-11-01?")
    assert reply.text.startswith(
        "Penderfyniadau: Bwrdd Strategol · ers dydd Sul 1 Tachwedd 2026 (yn dangos 1–1 o 1)"
    )
    assert "SB-2026-031  Bwrdd Strategol, 19 Tach" in reply.text
    mutated = say(app, WELSH_MEMBER, "camau gweithredu hwyr yn Nhorfaen")
    assert "TP-001" in mutated.text


def test_list_replies_in_english_welsh_and_both(app: ScrutinyApp, seed: Seed) -> None:
    outcome = say(app, WELSH_MEMBER, "cyfarfodydd")
    both = app.renderer.render_text(outcome.reply, ("cy", "en"))
    welsh, english = both.split("\n\n", 1)
    assert welsh.startswith("Cyfarfodydd nesaf y byrddau")
    assert "Bwrdd Strategol, Dydd Iau 3 Rhagfyr 2026, 10:00yb" in welsh
    assert english.startswith("Next board meetings")
    assert "Strategic Board, Thursday 3 December 2026, 10:00am" in english


def test_help_in_welsh_uses_welsh_command_words_the_bot_understands(
    app: ScrutinyApp, seed: Seed
) -> None:
    reply = say(app, WELSH_MEMBER, "cymorth")
    assert reply.text.startswith("Bot craffu: gorchmynion ar gyfer Eleri Jones")
    assert "/scrutiny camau [hwyr|cyn bo hir|wedi'i rwystro|coch ...]" in reply.text
    assert "(hefyd: actions)" in reply.text
    t = Translator("cy")
    for command in app.commands.values():
        usage = t._(command.usage) if command.usage else command.name
        first = usage.split()[0]
        assert app.aliases.get(first) == command.name, f"{first!r} does not run {command.name}"
        assert first != command.name, f"{command.name}: no Welsh command word in its usage"


def test_every_example_query_means_the_same_in_welsh(app: ScrutinyApp, seed: Seed) -> None:
    english = say(app, TORFAEN, "find")
    welsh = say(app, WELSH_MEMBER, "chwilio")
    en_examples = [line.split("/scrutiny ", 1)[1] for line in english.text.splitlines()[2:-1]]
    cy_examples = [line.split("/scrutiny ", 1)[1] for line in welsh.text.splitlines()[2:-1]]
    assert len(en_examples) == len(cy_examples) == 4
    for en, cy in zip(en_examples, cy_examples, strict=True):
        a, b = parse(en, NOW.date(), LEXICON), parse(cy, NOW.date(), LEXICON)
        assert (a.kinds, a.board, a.partners, a.overdue, a.since) == (
            b.kinds,
            b.board,
            b.partners,
            b.overdue,
            b.since,
        ), (en, cy)


@pytest.mark.parametrize(
    ("words", "field", "value"),
    [
        ("camau ar y gweill", "statuses", {"in-progress"}),
        ("camau wedi'u cwblhau", "statuses", {"done"}),
        ("camau wedi'i rwystro", "statuses", {"blocked"}),
        ("camau ambr", "rags", {"amber"}),
        ("camau yng Nghasnewydd", "partners", ("newport",)),
        ("penderfyniadau'r bwrdd cyllid yn 2026", "board", "finance-governance"),
        ("camau cyn bo hir", "due_within_days", 14),
    ],
)
def test_welsh_words_for_status_partner_board_and_time(
    words: str, field: str, value: object
) -> None:
    query = parse(words, NOW.date(), LEXICON)
    found = getattr(query, field)
    if isinstance(value, set):
        found = {getattr(v, "value", v) for v in found}
    assert found == value


def test_the_question_pack_in_welsh_and_english(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    ref = ref_of(say(app, TORFAEN, "ask strategic 2026-12-03 Is the data centre move on budget?"))
    assert "Accepted" in say(app, SECRETARIAT, f"accept {ref}").text
    meeting = session.get(Meeting, seed.meetings[0].id)
    assert meeting is not None
    pack = question_pack.build_pack(
        session,
        meeting,
        question_pack.secretariat_audience(session),
        now=NOW,
        zone=app.settings.timezone,
    )
    welsh = question_pack.to_markdown(pack, Translator("cy"))
    english = question_pack.to_markdown(pack, Translator("en"))
    assert "# Cwestiynau ar gyfer y Bwrdd Strategol, Dydd Iau 3 Rhagfyr 2026" in welsh
    assert "Gofynnwyd gan: Cyngor Bwrdeistref Sirol Torfaen" in welsh
    assert f"**{ref}**: Is the data centre move on budget?" in welsh
    assert "# Questions for the Strategic Board, Thursday 3 December 2026" in english
    assert "Asked by: Torfaen County Borough Council" in english


def test_the_console_speaks_the_members_language(app: ScrutinyApp, seed: Seed) -> None:
    code, out, _err = console_run(app, "/scrutiny camau hwyr torfaen\n", member="eleri-jones")
    assert code == 0
    assert "Camau gweithredu: yn hwyr · Cyngor Bwrdeistref Sirol Torfaen" in out
    code, out, _err = console_run(app, "/scrutiny cymorth\n", member="sian-hughes")
    assert code == 0
    assert "Scrutiny bot: commands for Sian Hughes" in out
    assert "/scrutiny actions [overdue|due soon|blocked|red ...]" in out
