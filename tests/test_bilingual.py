"""Bilingual records: Welsh titles, summaries and locations imported, recorded, shown and searched;
Welsh sentences around placeholders read grammatically (mutations after prepositions)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.domain import ChannelLanguage
from bot.i18n import LOCALE_DIR, Translator, welsh_day_mutations
from bot.imports import ImportRejected, import_file
from bot.messages import Reply
from bot.models import Action, AuditEvent, Channel, Decision, Meeting
from bot.rendering import Renderer, in_reader_language
from bot.services import search
from bot.services.digests import TEMPLATE, build_digest
from bot.services.queries import MeetingView
from tests.conftest import NOW
from tests.factories import Seed
from tests.test_imports import (
    ACTION_HEADER,
    DECISION_HEADER,
    MEETING_HEADER,
    action,
    write_csv,
)
from tests.test_questions import MONMOUTHSHIRE, SECRETARIAT, TORFAEN, ref_of, say

WELSH_TITLE = "Mudo ffeiliau a rennir i SharePoint Online"
ENGLISH_ONLY = "(Saesneg yn unig)"
DECISION_CY = "Cymeradwywyd achos busnes symud y ganolfan ddata (cam 2)"
SUMMARY_CY = "Cymeradwyodd y bwrdd gam 2 y gwaith o symud i ganolfan ddata Blaenafon."


def _welsh_records(session: Session, seed: Seed) -> None:
    """Welsh text on some records only, so both the Welsh and the fallback show."""
    session.get_one(Action, seed.actions["TP-001"].id).title_cy = WELSH_TITLE
    decision = session.get_one(Decision, seed.decisions["SB-2026-031"].id)
    decision.title_cy = DECISION_CY
    decision.summary_cy = SUMMARY_CY
    session.get_one(Meeting, seed.meetings[0].id).location_cy = "Canolfan ddata Blaenafon"
    session.commit()


# -- imports ----------------------------------------------------------------------------------
DECISION_ROW = {
    "ref": "SB-2026-101",
    "board": "strategic",
    "decided_on": "2026-11-19",
    "title": "Approved the cyber security strategy",
    "summary": "The strategy covers all five partners.",
    "title_cy": "Cymeradwywyd y strategaeth seiberddiogelwch",
    "summary_cy": "Mae'r strategaeth yn cwmpasu'r pum partner.",
    "marking": "official",
}
MEETING_ROW = {
    "board": "finance-governance",
    "starts_at": "2027-01-21 14:00",
    "location": "Civic Centre, Pontypool",
    "location_cy": "Canolfan Ddinesig, Pont-y-pŵl",
}


def test_welsh_columns_import_and_a_reimport_changes_nothing(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    decisions = write_csv(tmp_path / "decisions.csv", DECISION_HEADER, [DECISION_ROW])
    actions = write_csv(
        tmp_path / "actions.csv",
        ACTION_HEADER,
        [action(title_cy="Newid Wi-Fi yn llyfrgelloedd Casnewydd")],
    )
    meetings = write_csv(tmp_path / "meetings.csv", MEETING_HEADER, [MEETING_ROW])
    for kind, path in (("decisions", decisions), ("actions", actions), ("meetings", meetings)):
        report = import_file(session, kind, path, actor="test", now=NOW)
        assert report.created == 1, kind
    session.commit()

    decision = session.scalars(select(Decision).where(Decision.ref == "SB-2026-101")).one()
    assert decision.title_cy == "Cymeradwywyd y strategaeth seiberddiogelwch"
    assert decision.summary_cy == "Mae'r strategaeth yn cwmpasu'r pum partner."
    stored = session.scalars(select(Action).where(Action.ref == "TP-101")).one()
    assert stored.title_cy == "Newid Wi-Fi yn llyfrgelloedd Casnewydd"
    meeting = session.scalars(select(Meeting).where(Meeting.location_cy != "")).one()
    assert meeting.location_cy == "Canolfan Ddinesig, Pont-y-pŵl"

    events = session.query(AuditEvent).count()
    for kind, path in (("decisions", decisions), ("actions", actions), ("meetings", meetings)):
        again = import_file(session, kind, path, actor="test", now=NOW)
        assert (again.created, again.updated) == (0, 0), kind
    session.commit()
    assert session.query(AuditEvent).count() == events


def test_a_changed_welsh_title_is_an_audited_update_and_leaving_the_column_out_keeps_it(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "decisions.csv", DECISION_HEADER, [DECISION_ROW])
    import_file(session, "decisions", path, actor="test", now=NOW)
    changed = {**DECISION_ROW, "title_cy": "Cymeradwywyd strategaeth seiberddiogelwch y GAR"}
    write_csv(path, DECISION_HEADER, [changed])
    assert import_file(session, "decisions", path, actor="test", now=NOW).updated == 1
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.entity_ref == "SB-2026-101").order_by(AuditEvent.id)
    ).all()[-1]
    assert event.before == {"title_cy": "Cymeradwywyd y strategaeth seiberddiogelwch"}
    assert event.after == {"title_cy": "Cymeradwywyd strategaeth seiberddiogelwch y GAR"}

    english_only = [c for c in DECISION_HEADER if not c.endswith("_cy")]
    write_csv(path, english_only, [{**changed, "summary": "Covers all five partners."}])
    import_file(session, "decisions", path, actor="test", now=NOW)
    session.commit()
    decision = session.scalars(select(Decision).where(Decision.ref == "SB-2026-101")).one()
    assert decision.summary == "Covers all five partners."
    assert decision.title_cy == "Cymeradwywyd strategaeth seiberddiogelwch y GAR"


def test_a_welsh_title_too_long_or_on_two_lines_is_refused_with_line_and_column(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "decisions.csv",
        DECISION_HEADER,
        [
            {**DECISION_ROW, "title_cy": "t" * 501},
            {**DECISION_ROW, "ref": "SB-2026-102", "title_cy": "dwy\nlinell"},
        ],
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(session, "decisions", path, actor="test", now=NOW)
    problems = [str(p) for p in caught.value.problems]
    assert any("line 2, title_cy" in p and "500" in p for p in problems), problems
    assert any("line 3, title_cy" in p and "line break" in p for p in problems), problems
    assert session.scalar(select(Decision).where(Decision.ref == "SB-2026-101")) is None


# -- showing ----------------------------------------------------------------------------------
def test_a_welsh_reader_sees_welsh_titles_and_english_marked_as_such(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    _welsh_records(session, seed)
    actions = say(app, MONMOUTHSHIRE, "camau torfaen").text
    assert f"TP-001  {WELSH_TITLE}" in actions
    assert "Migrate file shares" not in actions
    assert f"TP-002  Replace core network switches {ENGLISH_ONLY}" in actions

    detail = say(app, MONMOUTHSHIRE, "penderfyniad SB-2026-031").text
    assert DECISION_CY in detail and SUMMARY_CY in detail
    assert "Approved the data centre move" not in detail and ENGLISH_ONLY not in detail
    other = say(app, MONMOUTHSHIRE, "penderfyniad FG-2026-044").text
    assert f"Agreed the 2027/28 partner contributions {ENGLISH_ONLY}" in other

    meetings = say(app, MONMOUTHSHIRE, "cyfarfodydd").text
    assert "Canolfan ddata Blaenafon" in meetings
    assert f"Blaenavon data centre {ENGLISH_ONLY}" in meetings  # the second meeting has none


def test_an_english_reader_sees_english_and_welsh_only_text_is_marked(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    _welsh_records(session, seed)
    decision = session.get_one(Decision, seed.decisions["FG-2026-044"].id)
    decision.summary_cy = "Cytunwyd drwy weithdrefn ysgrifenedig."
    session.commit()
    actions = say(app, TORFAEN, "actions torfaen").text
    assert "TP-001  Migrate file shares to SharePoint Online" in actions
    assert WELSH_TITLE not in actions and "(Welsh only)" not in actions
    detail = say(app, TORFAEN, "decision FG-2026-044").text
    assert "Cytunwyd drwy weithdrefn ysgrifenedig. (Welsh only)" in detail


def test_a_bilingual_channel_gets_welsh_then_english(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    _welsh_records(session, seed)
    session.get_one(Channel, seed.channels["srs-torfaen"].id).language = ChannelLanguage.CY_EN
    session.commit()
    channel = session.get_one(Channel, seed.channels["srs-torfaen"].id)
    digest = Reply(TEMPLATE, build_digest(session, channel, now=NOW).context())
    renderer = Renderer()
    welsh, english = (renderer.render(digest, "txt", lang) for lang in channel.language.languages)
    assert f"TP-001  {WELSH_TITLE}" in welsh and DECISION_CY in welsh
    assert "Canolfan ddata Blaenafon" in welsh
    assert f"Agreed the 2027/28 partner contributions {ENGLISH_ONLY}" in welsh
    assert "TP-001  Migrate file shares to SharePoint Online" in english
    assert "Approved the data centre move business case (phase 2)" in english
    assert WELSH_TITLE not in english and DECISION_CY not in english
    both = renderer.render_text(digest, channel.language.languages)
    assert both.index(DECISION_CY) < both.index("Approved the data centre move business case")


@pytest.mark.parametrize("fmt", ["slack.json", "teams.json"])
def test_every_format_shows_the_welsh_title_and_escapes_it(
    app: ScrutinyApp, seed: Seed, session: Session, fmt: str
) -> None:
    action_row = session.get_one(Action, seed.actions["TP-001"].id)
    action_row.title_cy = "Mudo <ffeiliau> & ffolderi"
    session.commit()
    body = say(app, MONMOUTHSHIRE, "camau torfaen", fmt=fmt).bodies[0]
    if fmt == "slack.json":
        assert "Mudo &lt;ffeiliau&gt; &amp; ffolderi" in body
        assert f"Replace core network switches {ENGLISH_ONLY}" in body
    else:
        assert "Mudo \\\\<ffeiliau\\\\> & ffolderi" in body


def test_the_helper_shortens_the_text_but_never_the_marker() -> None:
    class Record:
        title = "x" * 50
        title_cy = ""

    welsh = in_reader_language(Record(), "title", "cy", Translator("cy"), limit=10)
    assert welsh == "xxxxxxxxx… (Saesneg yn unig)"
    assert in_reader_language(Record(), "title", "en", Translator("en"), limit=10) == "x" * 9 + "…"


# -- recording in chat ------------------------------------------------------------------------
def test_record_decision_and_update_take_welsh_fields(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    out = say(
        app,
        SECRETARIAT,
        'record-decision board=strategic decided_on=2026-11-19 title="Approved the roadmap" '
        'title_cy="Cymeradwywyd y map ffordd" summary_cy="Ar gyfer y pum partner."',
    ).text
    assert "Approved the roadmap" in out
    decision = session.scalars(select(Decision).where(Decision.title == "Approved the roadmap"))
    stored = decision.one()
    assert (stored.title_cy, stored.summary_cy) == (
        "Cymeradwywyd y map ffordd",
        "Ar gyfer y pum partner.",
    )

    updated = say(app, SECRETARIAT, 'update TP-002 title_cy="Newid switshis craidd y rhwydwaith"')
    assert "Welsh title" in updated.text
    session.expire_all()
    assert session.get_one(Action, seed.actions["TP-002"].id).title_cy == (
        "Newid switshis craidd y rhwydwaith"
    )
    say(app, SECRETARIAT, "update TP-002 title_cy=-")
    session.expire_all()
    assert session.get_one(Action, seed.actions["TP-002"].id).title_cy == ""
    too_long = say(app, SECRETARIAT, f"update TP-002 title_cy={'t' * 501}").text
    assert "title_cy: too long (501 characters); shorten it to at most 500" in too_long


# -- search -----------------------------------------------------------------------------------
def test_a_welsh_word_finds_a_record_by_its_welsh_title(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    _welsh_records(session, seed)
    ids = search.ranked_ids(session, "decisions", "ganolfan ddata")
    assert seed.decisions["SB-2026-031"].id in ids
    assert search.ranked_ids(session, "actions", "ffeiliau") == [seed.actions["TP-001"].id]
    # English still matches by its stem.
    assert search.ranked_ids(session, "actions", "migrating files") == [seed.actions["TP-001"].id]
    # An English stop word beside Welsh words must not demand itself in the Welsh text.
    assert search.ranked_ids(session, "decisions", "the ganolfan ddata") == [
        seed.decisions["SB-2026-031"].id
    ]
    assert search.ranked_ids(session, "decisions", "Cymeradwyodd") == [
        seed.decisions["SB-2026-031"].id
    ]
    reply = say(app, MONMOUTHSHIRE, "penderfyniadau ganolfan ddata").text
    assert "SB-2026-031" in reply and DECISION_CY in reply


def test_editing_a_welsh_title_updates_the_index(seed: Seed, session: Session) -> None:
    _welsh_records(session, seed)
    row = session.get_one(Action, seed.actions["TP-001"].id)
    row.title_cy = "Symud dogfennau i SharePoint"
    session.commit()
    assert search.ranked_ids(session, "actions", "ffeiliau") == []
    assert search.ranked_ids(session, "actions", "dogfennau") == [row.id]


# -- grammar ----------------------------------------------------------------------------------
def test_welsh_dates_mutate_after_prepositions_and_names_are_left_alone() -> None:
    assert welsh_day_mutations("tan Dydd Gwener 27 Tachwedd") == "tan ddydd Gwener 27 Tachwedd"
    assert welsh_day_mutations("Tan Dydd Llun gallwch") == "Tan ddydd Llun gallwch"
    assert (
        welsh_day_mutations("cyfarfod ar Dydd Iau 3 Rhagfyr") == "cyfarfod ar ddydd Iau 3 Rhagfyr"
    )
    assert welsh_day_mutations("ers Dydd Sul 1 Tachwedd") == "ers dydd Sul 1 Tachwedd"
    assert welsh_day_mutations("erbyn Dydd Mawrth") == "erbyn dydd Mawrth"
    # The first word of a line, a name after a preposition, "wedi'i" and "Dydd" without a day.
    assert welsh_day_mutations("Dydd Llun 23 Tachwedd") == "Dydd Llun 23 Tachwedd"
    assert welsh_day_mutations("gan Cyngor Sir Fynwy") == "gan Cyngor Sir Fynwy"
    assert welsh_day_mutations("wedi'i Dydd Llun") == "wedi'i Dydd Llun"
    assert welsh_day_mutations("tan Dydd y Farn") == "tan Dydd y Farn"
    assert Translator("en").grammar("until Dydd Gwener") == "until Dydd Gwener"


def test_questions_close_tan_ddydd_gwener_through_the_real_templates(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    submitted = say(app, MONMOUTHSHIRE, "gofyn strategic 2026-12-03 A yw'r gyllideb yn ddigonol?")
    assert "Tan ddydd Gwener 27 Tachwedd 2026, 5:00yh gallwch ei newid" in submitted.text
    assert "Tan Dydd" not in submitted.text
    slack = say(
        app, MONMOUTHSHIRE, "gofyn strategic 2026-12-03 A oes digon o staff?", fmt="slack.json"
    ).bodies[0]
    assert "Tan ddydd Gwener 27 Tachwedd 2026" in slack

    meeting = session.get_one(Meeting, seed.meetings[0].id)
    for fmt in ("txt", "slack.json"):
        post = Renderer().render(
            Reply("questions/window_post", {"meeting": _info(meeting), "kind": "open"}), fmt, "cy"
        )
        assert "10:00yb tan ddydd Gwener 27 Tachwedd 2026, 5:00yh" in post, post
    english = Renderer().render(
        Reply("questions/window_post", {"meeting": _info(meeting), "kind": "open"}), "txt", "en"
    )
    assert "until Friday 27 November 2026, 5:00pm" in english


def _info(meeting: Meeting) -> object:
    from bot.services.questions.windows import MeetingInfo

    return MeetingInfo.of(meeting, NOW, Translator("cy").tz)


def test_a_window_already_open_reads_tan_ddydd_in_the_python_message(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    secretary = session.get_one(type(seed.members["ceri-morgan"]), seed.members["ceri-morgan"].id)
    secretary.language = "cy"
    session.commit()
    reply = say(app, SECRETARIAT, "ffenestr agor strategic 2026-12-03").text
    assert "eisoes ar agor tan ddydd Gwener 27 Tachwedd 2026" in reply, reply


def test_asked_by_and_filters_need_no_mutation_of_a_name(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    ref_of(say(app, MONMOUTHSHIRE, "gofyn strategic 2026-12-03 A yw'r gyllideb yn ddigonol?"))
    listing = say(app, MONMOUTHSHIRE, "cwestiynau").text
    assert "partneriaid a ofynnodd: Cyngor Sir Fynwy" in listing
    assert "gan Cyngor" not in listing

    nothing = say(app, MONMOUTHSHIRE, "camau hwyr casnewydd").text
    assert "yn cyfateb i'r meini prawf hyn: yn hwyr · Cyngor Dinas Casnewydd" in nothing
    assert "cyfateb i yn hwyr" not in nothing

    since = say(app, MONMOUTHSHIRE, "penderfyniadau ers 2026-11-01").text
    assert "ers dydd Sul 1 Tachwedd 2026" in since, since


def test_the_welsh_meeting_reminder_shows_the_welsh_location(seed: Seed, session: Session) -> None:
    meeting = session.get_one(Meeting, seed.meetings[0].id)
    meeting.location_cy = "Canolfan ddata Blaenafon"
    session.commit()
    reminder = Renderer().render(
        Reply("reminder/meeting", {"meeting": MeetingView.of(meeting, NOW)}), "txt", "cy"
    )
    assert "Ble: Canolfan ddata Blaenafon" in reminder and ENGLISH_ONLY not in reminder


NAME_PLACEHOLDERS = {
    "name",
    "names",
    "partner",
    "partners",
    "channel",
    "channels",
    "board",
    "meeting",
    "filters",
    "platform",
}
"""Placeholders filled with names or words that would have to mutate after a preposition."""
_MUTATING = r"gan|i|o|tan|ar|am|dros|drwy|trwy|wrth|heb|hyd|yn|gyda|â|a|ac"


def test_no_welsh_translation_puts_a_name_straight_after_a_mutating_word() -> None:
    with (LOCALE_DIR / "cy" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalogue = read_po(handle, locale="cy")
    placeholder = r"(?:%\((\w+)\)s|\{(\w+)\})"
    pattern = re.compile(rf"(?<![\w'’])(?:{_MUTATING})\s+[“\"]?{placeholder}", re.IGNORECASE)
    slips = []
    for message in catalogue:
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            for hit in pattern.finditer(text or ""):
                if (hit.group(1) or hit.group(2)) in NAME_PLACEHOLDERS:
                    slips.append(f"{message.id!r} => {text!r}")
    assert not slips, "\n".join(slips)
