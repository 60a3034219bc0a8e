"""The collaboration file: every problem with file, line, key and hint; applying it is all or
nothing, idempotent and audited."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.cli import cli
from bot.collaboration import (
    SECTIONS,
    Collaboration,
    ConfigError,
    ConfigProblem,
    apply_collaboration,
    check_collaboration,
    load_collaboration,
)
from bot.domain import ChannelLanguage, Marking, Platform, Role
from bot.models import AuditEvent, Board, Channel, Member, Partner
from bot.settings import DEFAULT_CONFIG

EXAMPLE = DEFAULT_CONFIG

BASE = """\
collaboration: {name: SRS, name_cy: Gwasanaeth Adnoddau a Rennir, timezone: Europe/London}
partners:
  - {slug: torfaen, name: Torfaen County Borough Council, name_cy: Cyngor Bwrdeistref Sirol Torfaen}
  - {slug: srs, name: SRS central team, name_cy: Tîm canolog y GAR, kind: central}
boards:
  - slug: strategic
    prefix: SB
    name: Strategic Board
    name_cy: Bwrdd Strategol
    questions: {open_days_before: 14, close_days_before: 5}
    members: [ceri-morgan, sian-hughes]
  - slug: finance-governance
    prefix: FG
    name: Finance & Governance Board
    name_cy: Bwrdd Cyllid a Llywodraethu
members:
  - slug: ceri-morgan
    name: Ceri Morgan
    partner: srs
    roles: [secretariat]
    clearance: official-sensitive
    exempt_access: true
    slack_user_id: U0SEC00001
    entra_object_id: 6b0f3c2a-1d4e-4f7a-9b8c-2e5d7a1c0f01
  - slug: sian-hughes
    name: Siân Hughes
    partner: torfaen
    roles: [scrutiny-member]
    slack_user_id: U0TOR00001
    entra_object_id: 0d8e4b71-5a2c-4e3f-8d19-7c6b5a4f3e21
channels:
  - slug: srs-secretariat
    name: "#srs-secretariat"
    platform: slack
    external_id: C0SECR0001
    partner: srs
    secretariat: true
    clearance: official-sensitive
  - slug: srs-torfaen
    name: "#srs-torfaen"
    platform: slack
    external_id: C0TORF0001
    partner: torfaen
    digest: {cron: "0 9 * * mon", timezone: Europe/London}
  - slug: teams-strategic
    name: Strategic Board (Teams)
    platform: teams
    external_id: "19:5f1c2b7e9a0d4c3f8e6b1a2d3c4e5f60@thread.tacv2"
    board: strategic
"""


def write(tmp_path: Path, text: str | bytes, name: str = "collaboration.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def mutate(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once"
    return text.replace(old, new)


def line_of(text: str, fragment: str, *, exact: bool = False, last: bool = False) -> int:
    found = [
        number
        for number, line in enumerate(text.splitlines(), start=1)
        if (line.strip() == fragment if exact else fragment in line)
    ]
    assert found and (last or len(found) == 1), f"{fragment!r} found on lines {found}"
    return found[-1]


def cut(text: str, first: str, until: str) -> str:
    """`text` without the lines from the one starting `first` up to the one starting `until`."""
    return text[: text.index(first)] + text[text.index(until) :]


def problems_in(tmp_path: Path, text: str | bytes) -> list[ConfigProblem]:
    return check_collaboration(write(tmp_path, text))


# --- the example ----------------------------------------------------------------------------


def test_example_file_is_valid_and_holds_the_fixed_vocabulary() -> None:
    assert check_collaboration(EXAMPLE) == []
    collaboration = load_collaboration(EXAMPLE)

    partners = {p.slug: p for p in collaboration.partners}
    assert list(partners) == [
        "blaenau-gwent",
        "monmouthshire",
        "newport",
        "torfaen",
        "gwent-police",
        "srs",
    ]
    assert partners["srs"].kind == "central"
    assert partners["monmouthshire"].name_cy == "Cyngor Sir Fynwy"
    assert partners["gwent-police"].name_cy == "Heddlu Gwent"
    boards = {b.slug: b.prefix for b in collaboration.boards}
    assert boards == {"strategic": "SB", "finance-governance": "FG", "business-collaboration": "BC"}

    members = {m.slug: m for m in collaboration.members}
    assert len(members) >= 15
    assert all(m.slack_user_id for m in members.values())
    ceri = members["ceri-morgan"]
    assert (ceri.partner, ceri.roles, ceri.clearance, ceri.exempt_access) == (
        "srs",
        [Role.SECRETARIAT],
        Marking.OFFICIAL_SENSITIVE,
        True,
    )
    assert (members["sian-hughes"].partner, members["sian-hughes"].roles) == (
        "torfaen",
        [Role.SCRUTINY_MEMBER],
    )
    assert members["rhys-evans"].partner == "gwent-police"
    assert members["rhys-evans"].clearance is Marking.OFFICIAL_SENSITIVE
    assert (members["eleri-jones"].partner, members["eleri-jones"].language) == (
        "monmouthshire",
        "cy",
    )
    board_member_partners = {m.partner for m in members.values() if Role.BOARD_MEMBER in m.roles}
    assert board_member_partners == set(partners)

    channels = {c.slug: c for c in collaboration.channels}
    secretariat = channels["srs-secretariat"]
    assert (
        secretariat.secretariat,
        secretariat.partner,
        secretariat.clearance,
        secretariat.exempt_access,
    ) == (
        True,
        "srs",
        Marking.OFFICIAL_SENSITIVE,
        True,
    )
    assert channels["srs-torfaen"].external_id == "C0TORF0001"
    assert {c.board for c in channels.values() if c.board} == set(boards)
    assert any(
        c.language is ChannelLanguage.CY_EN and c.partner == "monmouthshire"
        for c in channels.values()
    )
    teams = [c for c in channels.values() if c.platform is Platform.TEAMS]
    # "<team id>/<channel id>" (docs/teams.md): Graph needs the team to post.
    assert len(teams) == 1 and teams[0].external_id.split("/")[1].startswith("19:")
    assert teams[0].external_id.endswith("@thread.tacv2")
    consoles = [c for c in channels.values() if c.platform is Platform.CONSOLE]
    assert all(c.external_id == c.slug for c in consoles)
    torfaen_console = channels["console-torfaen"]
    assert torfaen_console.partner == "torfaen"
    assert torfaen_console.digest is not None and torfaen_console.digest.cron == "0 9 * * mon"
    assert channels["console-secretariat"].secretariat


def test_base_document_is_valid(tmp_path: Path) -> None:
    assert problems_in(tmp_path, BASE) == []


# --- every kind of problem, with its line and key -------------------------------------------

# (case, old text, new text, key, fragment locating the line, in message, in hint)
CASES = [
    (
        "unknown partner",
        "C0TORF0001\n    partner: torfaen",
        "C0TORF0001\n    partner: torfean",
        "channels[1].partner",
        "partner: torfean",
        'unknown partner "torfean"',
        'did you mean "torfaen"?',
    ),
    (
        "unknown member partner",
        "partner: torfaen\n    roles",
        "partner: torfaen-cbc\n    roles",
        "members[1].partner",
        "torfaen-cbc",
        'unknown partner "torfaen-cbc"',
        "known partners: srs, torfaen",
    ),
    (
        "unknown board",
        "    board: strategic",
        "    board: strategc",
        "channels[2].board",
        "board: strategc",
        'unknown board "strategc"',
        'did you mean "strategic"?',
    ),
    (
        "unknown board member",
        "[ceri-morgan, sian-hughes]",
        "[ceri-morgan, sian-hughs]",
        "boards[0].members[1]",
        "sian-hughs]",
        'unknown member "sian-hughs"',
        'did you mean "sian-hughes"?',
    ),
    (
        "bad cron",
        '"0 9 * * mon"',
        '"0 25 * * mon"',
        "channels[1].digest.cron",
        "0 25 * * mon",
        "hour 25",
        '"0 9 * * mon"',
    ),
    (
        "cron with four fields",
        '"0 9 * * mon"',
        '"0 9 * mon"',
        "channels[1].digest.cron",
        "0 9 * mon",
        "five fields",
        '"0 9 * * mon"',
    ),
    (
        "cron with a weekday number",
        '"0 9 * * mon"',
        '"0 9 * * 1"',
        "channels[1].digest.cron",
        "0 9 * * 1",
        'day of week "1" is a number',
        "mon, tue",
    ),
    (
        "unknown digest time zone",
        'mon", timezone: Europe/London}',
        'mon", timezone: Europe/Londen}',
        "channels[1].digest.timezone",
        "Europe/Londen",
        'unknown time zone "Europe/Londen"',
        'did you mean "Europe/London"?',
    ),
    (
        "unknown collaboration time zone",
        "Rennir, timezone: Europe/London",
        "Rennir, timezone: Mars/Olympus",
        "collaboration.timezone",
        "Mars/Olympus",
        'unknown time zone "Mars/Olympus"',
        "IANA",
    ),
    (
        "duplicate slug",
        "  - slug: finance-governance",
        "  - slug: strategic",
        "boards[1].slug",
        "- slug: strategic",
        'slug "strategic" is already used by boards[0].slug (line 6)',
        "unique",
    ),
    (
        "duplicate channel",
        "external_id: C0TORF0001",
        "external_id: C0SECR0001",
        "channels[1].external_id",
        "external_id: C0SECR0001",
        'slack "C0SECR0001" is already used by channels[0]',
        "once",
    ),
    (
        "duplicate slack id",
        "slack_user_id: U0TOR00001",
        "slack_user_id: U0SEC00001",
        "members[1].slack_user_id",
        "slack_user_id: U0SEC00001",
        "already used by members[0].slack_user_id",
        "one member",
    ),
    (
        "duplicate entra id",
        "0d8e4b71-5a2c-4e3f-8d19-7c6b5a4f3e21",
        "6B0F3C2A-1D4E-4F7A-9B8C-2E5D7A1C0F01",
        "members[1].entra_object_id",
        "6B0F3C2A",
        "already used by members[0].entra_object_id",
        "one member",
    ),
    (
        "duplicate prefix",
        "prefix: FG",
        "prefix: SB",
        "boards[1].prefix",
        "prefix: SB",
        'prefix "SB" is already used by boards[0].prefix',
        "own prefix",
    ),
    (
        "invalid slug",
        "  - slug: finance-governance",
        "  - slug: Finance_Governance",
        "boards[1].slug",
        "Finance_Governance",
        '"Finance_Governance" is not a valid slug',
        "lowercase",
    ),
    (
        "a Workflows webhook",
        "C0TORF0001\n",
        "C0TORF0001\n    webhook_url: https://srs.webhook.office.com/x\n",
        "channels[1].webhook_url",
        "webhook_url:",
        "no longer used",
        "add the Teams app",
    ),
    (
        "unknown key",
        "    clearance: official-sensitive\n    exempt",
        "    clearence: official-sensitive\n    exempt",
        "members[0].clearence",
        "clearence:",
        'unknown key "clearence"',
        "allowed keys here: slug, name, partner",
    ),
    (
        "wrong type",
        "    exempt_access: true\n",
        "    exempt_access: maybe\n",
        "members[0].exempt_access",
        "exempt_access: maybe",
        'expected true or false, found "maybe"',
        "true or false",
    ),
    (
        "not an allowed value",
        "platform: teams",
        "platform: discord",
        "channels[2].platform",
        "platform: discord",
        '"discord" is not allowed here',
        "slack, teams, console",
    ),
    (
        "not a list",
        "roles: [scrutiny-member]",
        "roles: scrutiny-member",
        "members[1].roles",
        "roles: scrutiny-member",
        "expected a list",
        "- ",
    ),
    (
        "empty list",
        "roles: [scrutiny-member]",
        "roles: []",
        "members[1].roles",
        "roles: []",
        "the list is empty",
        "secretariat, board-member, scrutiny-member",
    ),
    (
        "bad slack id",
        "slack_user_id: U0TOR00001",
        "slack_user_id: sian",
        "members[1].slack_user_id",
        "slack_user_id: sian",
        '"sian" is not a Slack user id',
        "U0123ABCD",
    ),
    (
        "bad entra id",
        "0d8e4b71-5a2c-4e3f-8d19-7c6b5a4f3e21",
        "not-a-uuid",
        "members[1].entra_object_id",
        "not-a-uuid",
        "not a Microsoft Entra object id",
        "Object ID",
    ),
    (
        "bad prefix",
        "prefix: FG",
        "prefix: fgb",
        "boards[1].prefix",
        "prefix: fgb",
        '"fgb" is not a valid board prefix',
        "2 to 4 capital letters",
    ),
    (
        "question window inside out",
        "close_days_before: 5}",
        "close_days_before: 20}",
        "boards[0].questions.close_days_before",
        "close_days_before: 20",
        "open only 14 days before",
        "larger",
    ),
    (
        "number out of range",
        "close_days_before: 5}",
        "close_days_before: -1}",
        "boards[0].questions.close_days_before",
        "close_days_before: -1",
        "-1 is out of range",
        "from 0 to 365",
    ),
    (
        "duplicate mapping key",
        "    name: Strategic Board\n",
        "    name: Strategic Board\n    name: Strategic (again)\n",
        "boards[0].name",
        "Strategic (again)",
        'key "name" appears twice in this mapping (first on line 8)',
        "only the last",
    ),
    (
        "member listed twice",
        "[ceri-morgan, sian-hughes]",
        "[ceri-morgan, sian-hughes, ceri-morgan]",
        "boards[0].members[2]",
        "[ceri-morgan, sian-hughes, ceri-morgan]",
        "listed twice",
        "remove",
    ),
    (
        "key that is not a name",
        "    roles: [scrutiny-member]\n",
        "    roles: [scrutiny-member]\n    yes: 2\n",
        "members[1].true",
        "yes: 2",
        "key true is not a name",
        "quote a key",
    ),
    (
        "unknown top-level key",
        "channels:\n",
        "extras: 1\nchannels:\n",
        "extras",
        "extras: 1",
        'unknown key "extras"',
        "collaboration, partners, boards, members, channels",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "key", "fragment", "message", "hint"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_each_problem_is_reported_with_line_key_and_hint(
    tmp_path: Path, old: str, new: str, key: str, fragment: str, message: str, hint: str
) -> None:
    text = mutate(BASE, old, new)
    problems = problems_in(tmp_path, text)
    assert len(problems) == 1, "\n".join(map(str, problems))
    problem = problems[0]
    assert problem.file == str(tmp_path / "collaboration.yaml")
    assert problem.key == key
    assert problem.line == line_of(text, fragment, last=True)
    assert message in problem.message
    assert hint in problem.hint


def test_problem_reads_file_line_key_message_and_hint(tmp_path: Path) -> None:
    text = mutate(BASE, "C0TORF0001\n    partner: torfaen", "C0TORF0001\n    partner: torfean")
    path = write(tmp_path, text)
    [problem] = check_collaboration(path)
    assert str(problem) == (
        f'{path}:{line_of(text, "torfean")}: channels[1].partner: unknown partner "torfean" '
        '— known partners: srs, torfaen; did you mean "torfaen"?'
    )


def test_missing_required_key_points_at_its_entry(tmp_path: Path) -> None:
    text = mutate(BASE, "    name: Siân Hughes\n", "")
    [problem] = problems_in(tmp_path, text)
    assert (problem.key, problem.line) == ("members[1].name", line_of(text, "- slug: sian-hughes"))
    assert problem.message == 'missing required key "name"'


def test_secretariat_member_and_channel_are_required(tmp_path: Path) -> None:
    text = mutate(BASE, "roles: [secretariat]", "roles: [board-member]")
    text = mutate(text, "    secretariat: true\n", "")
    problems = problems_in(tmp_path, text)
    assert [(p.key, p.line) for p in problems] == [
        ("members", line_of(text, "members:", exact=True)),
        ("channels", line_of(text, "channels:", exact=True)),
    ]
    assert "secretariat role" in problems[0].message
    assert "secretariat: true" in problems[1].message


def test_every_problem_is_reported_in_line_order(tmp_path: Path) -> None:
    text = mutate(BASE, "prefix: FG", "prefix: fgb")
    text = mutate(text, "platform: teams", "platform: discord")
    text = mutate(text, "C0TORF0001\n    partner: torfaen", "C0TORF0001\n    partner: torfean")
    text = mutate(text, "Rennir, timezone: Europe/London", "Rennir, timezone: Nowhere")
    problems = problems_in(tmp_path, text)
    assert [p.key for p in problems] == [
        "collaboration.timezone",
        "boards[1].prefix",
        "channels[1].partner",
        "channels[2].platform",
    ]
    assert [p.line for p in problems] == sorted(p.line or 0 for p in problems)


def test_a_missing_section_is_reported_once(tmp_path: Path) -> None:
    text = cut(BASE, "boards:\n", "members:\n")
    problems = problems_in(tmp_path, text)
    assert [(p.key, p.message) for p in problems] == [("boards", 'missing required key "boards"')]


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("", None, "the file is empty"),
        ("# only a comment\n", None, "the file is empty"),
        ("- partners\n- boards\n", 1, "the top level must be a mapping, found a list"),
        ("just words\n", 1, 'the top level must be a mapping, found "just words"'),
        (
            BASE.replace("  - slug: ceri-morgan\n", "  - slug: ceri-morgan\n   name: [oops\n"),
            18,
            "YAML syntax error",
        ),
        (
            BASE.replace("Sirol Torfaen}", "Sirol Torfaen"),
            4,
            "YAML syntax error: while parsing a flow mapping (from line 3)",
        ),
        (BASE.replace("partners:\n", "partners:\n\t- x\n"), 3, "YAML syntax error"),
        ("collaboration:\n  name: Caerffili\x1f\n", 2, "character U+001F is not allowed in YAML"),
        (b"collaboration: {name: Caerffili\xff}\n", 1, "not UTF-8 text (byte 32 of the file)"),
    ],
    ids=[
        "empty",
        "comments only",
        "list",
        "scalar",
        "bad indentation",
        "unclosed brace",
        "tab",
        "control character",
        "not utf-8",
    ],
)
def test_unreadable_documents(
    tmp_path: Path, content: str | bytes, line: int | None, message: str
) -> None:
    [problem] = problems_in(tmp_path, content)
    assert problem.key == ""
    assert problem.message.startswith(message)
    assert problem.line == line
    assert problem.hint


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    [problem] = check_collaboration(path)
    assert (problem.file, problem.line, problem.message) == (str(path), None, "file not found")
    assert "collaboration.example.yaml" in problem.hint
    with pytest.raises(ConfigError) as raised:
        load_collaboration(path)
    assert raised.value.problems == [problem]


def test_anchors_and_merge_keys_still_place_problems(tmp_path: Path) -> None:
    text = mutate(
        BASE,
        "    clearance: official-sensitive\n    exempt_access: true\n",
        "    <<: &cleared {clearance: official-sensitive, exempt_access: true}\n",
    )
    assert problems_in(tmp_path, text) == []
    text = mutate(text, "    slack_user_id: U0TOR00001\n", "    <<: *cleared\n    colour: blue\n")
    [problem] = problems_in(tmp_path, text)
    assert (problem.key, problem.line) == ("members[1].colour", line_of(text, "colour: blue"))


# --- applying to the database ---------------------------------------------------------------


def count(session: Session, model: type[Any]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def load_text(tmp_path: Path, text: str, name: str = "collaboration.yaml") -> Collaboration:
    return load_collaboration(write(tmp_path, text, name))


WITHOUT_SIAN = mutate(
    cut(BASE, "  - slug: sian-hughes\n", "channels:\n"),
    "[ceri-morgan, sian-hughes]",
    "[ceri-morgan]",
)


@pytest.fixture
def base_applied(session: Session, tmp_path: Path) -> None:
    """The database after applying BASE, committed."""
    apply_collaboration(session, load_text(tmp_path, BASE, "base.yaml"))
    session.commit()


def test_apply_twice_is_idempotent_and_audits_only_the_first_time(session: Session) -> None:
    collaboration = load_collaboration(EXAMPLE)
    first = apply_collaboration(session, collaboration)
    session.commit()
    assert dict(first.created) == {"partner": 6, "board": 3, "member": 15, "channel": 16}
    assert count(session, AuditEvent) == 40
    assert {e.verb for e in session.scalars(select(AuditEvent))} == {"create"}

    second = apply_collaboration(session, load_collaboration(EXAMPLE))
    session.commit()
    assert not second.changed
    assert dict(second.unchanged) == {"partner": 6, "board": 3, "member": 15, "channel": 16}
    assert second.lines()[-1] == "Nothing changed."
    assert count(session, AuditEvent) == 40

    ceri = session.scalars(select(Member).where(Member.slug == "ceri-morgan")).one()
    assert (ceri.partner.slug, ceri.roles, ceri.clearance, ceri.exempt_access, ceri.active) == (
        "srs",
        ["secretariat"],
        Marking.OFFICIAL_SENSITIVE,
        True,
        True,
    )
    strategic = session.scalars(select(Board).where(Board.slug == "strategic")).one()
    assert strategic.prefix == "SB"
    assert "tom-price" in {m.slug for m in strategic.members}
    channel = session.scalars(select(Channel).where(Channel.slug == "srs-monmouthshire")).one()
    assert (channel.language, channel.digest_cron, channel.post_empty_digest) == (
        ChannelLanguage.CY_EN,
        "30 8 * * mon",
        True,
    )
    board_channel = session.scalars(
        select(Channel).where(Channel.slug == "srs-strategic-board")
    ).one()
    assert (board_channel.board, board_channel.partner, board_channel.digest_cron) == (
        strategic,
        None,
        None,
    )


def test_a_changed_clearance_is_one_audit_event_with_before_and_after(
    base_applied: None, session: Session, tmp_path: Path
) -> None:
    events = count(session, AuditEvent)

    changed = mutate(
        BASE,
        "    roles: [scrutiny-member]\n",
        "    roles: [scrutiny-member]\n    clearance: official-sensitive\n",
    )
    summary = apply_collaboration(session, load_text(tmp_path, changed))
    session.commit()

    assert dict(summary.updated) == {"member": 1}
    [event] = session.scalars(select(AuditEvent).order_by(AuditEvent.id).offset(events)).all()
    assert (event.verb, event.entity, event.entity_ref, event.actor) == (
        "update",
        "member",
        "sian-hughes",
        "config",
    )
    assert (event.before, event.after) == (
        {"clearance": "official"},
        {"clearance": "official-sensitive"},
    )
    sian = session.scalars(select(Member).where(Member.slug == "sian-hughes")).one()
    assert sian.clearance is Marking.OFFICIAL_SENSITIVE


def test_left_out_members_are_deactivated_and_left_out_channels_lose_their_digest(
    base_applied: None, session: Session, tmp_path: Path
) -> None:
    without = cut(WITHOUT_SIAN, "  - slug: srs-torfaen\n", "  - slug: teams-strategic\n")

    summary = apply_collaboration(session, load_text(tmp_path, without, "smaller.yaml"))
    session.commit()

    assert summary.deactivated == ["sian-hughes"]
    assert summary.digests_stopped == ["srs-torfaen"]
    sian = session.scalars(select(Member).where(Member.slug == "sian-hughes")).one()
    assert not sian.active and sian.slack_user_id == "U0TOR00001"
    channel = session.scalars(select(Channel).where(Channel.slug == "srs-torfaen")).one()
    assert (channel.digest_cron, channel.external_id) == (None, "C0TORF0001")
    assert count(session, Member) == 2 and count(session, Channel) == 3
    verbs = [
        (e.verb, e.entity, e.entity_ref, e.after)
        for e in session.scalars(select(AuditEvent).where(AuditEvent.verb != "create"))
    ]
    assert sorted(verbs, key=str) == sorted(
        [
            ("deactivate", "member", "sian-hughes", {"active": False}),
            ("update", "channel", "srs-torfaen", {"digest_cron": None}),
            ("update", "board", "strategic", {"members": ["ceri-morgan"]}),
        ],
        key=str,
    )
    assert any("no digest" in line for line in summary.lines())

    again = apply_collaboration(session, load_text(tmp_path, without, "smaller.yaml"))
    assert not again.changed


def test_a_member_who_left_gives_up_the_chat_ids_another_member_takes(
    base_applied: None, session: Session, tmp_path: Path
) -> None:
    text = mutate(WITHOUT_SIAN, "slack_user_id: U0SEC00001", "slack_user_id: U0TOR00001")

    summary = apply_collaboration(session, load_text(tmp_path, text))
    session.commit()

    assert summary.deactivated == ["sian-hughes"]
    members = {m.slug: m for m in session.scalars(select(Member))}
    assert members["ceri-morgan"].slack_user_id == "U0TOR00001"
    assert (members["sian-hughes"].slack_user_id, members["sian-hughes"].active) == (None, False)
    event = session.scalars(
        select(AuditEvent).where(
            AuditEvent.entity_ref == "sian-hughes", AuditEvent.verb != "create"
        )
    ).one()
    assert (event.verb, event.before, event.after) == (
        "deactivate",
        {"slack_user_id": "U0TOR00001", "active": True},
        {"slack_user_id": None, "active": False},
    )


def test_apply_refuses_a_model_built_by_hand_with_a_bad_reference(
    session: Session, tmp_path: Path
) -> None:
    collaboration = load_text(tmp_path, BASE)
    broken = collaboration.model_copy(deep=True)
    broken.members[1].partner = "torfean"
    with pytest.raises(ConfigError) as raised:
        apply_collaboration(session, broken)
    assert [p.key for p in raised.value.problems] == ["members[1].partner"]
    assert count(session, Partner) == 0


def test_new_slug_with_the_same_identity_renames_the_row(
    base_applied: None, session: Session, tmp_path: Path
) -> None:
    ids = {
        "member": session.scalars(select(Member.id).where(Member.slug == "sian-hughes")).one(),
        "channel": session.scalars(select(Channel.id).where(Channel.slug == "srs-torfaen")).one(),
        "board": session.scalars(select(Board.id).where(Board.slug == "finance-governance")).one(),
    }
    renamed = BASE.replace("sian-hughes", "sian-hughes-torfaen")
    renamed = mutate(renamed, "  - slug: srs-torfaen", "  - slug: torfaen-scrutiny")
    renamed = mutate(renamed, "  - slug: finance-governance", "  - slug: finance")

    summary = apply_collaboration(session, load_text(tmp_path, renamed))
    session.commit()

    assert not summary.created and not summary.deactivated and not summary.digests_stopped
    assert session.get(Member, ids["member"]).slug == "sian-hughes-torfaen"  # type: ignore[union-attr]
    assert session.get(Channel, ids["channel"]).slug == "torfaen-scrutiny"  # type: ignore[union-attr]
    assert session.get(Board, ids["board"]).slug == "finance"  # type: ignore[union-attr]
    event = session.scalars(select(AuditEvent).where(AuditEvent.entity_ref == "finance")).one()
    assert (event.before, event.after) == ({"slug": "finance-governance"}, {"slug": "finance"})


def test_swapped_identities_apply_without_tripping_unique_constraints(
    base_applied: None, session: Session, tmp_path: Path
) -> None:
    swapped = (
        BASE.replace("U0SEC00001", "SWAP")
        .replace("U0TOR00001", "U0SEC00001")
        .replace("SWAP", "U0TOR00001")
    )
    swapped = (
        swapped.replace("prefix: SB", "prefix: X")
        .replace("prefix: FG", "prefix: SB")
        .replace("prefix: X", "prefix: FG")
    )
    swapped = (
        swapped.replace("C0SECR0001", "X")
        .replace("C0TORF0001", "C0SECR0001")
        .replace(": X\n", ": C0TORF0001\n")
    )

    summary = apply_collaboration(session, load_text(tmp_path, swapped))
    session.commit()

    assert dict(summary.updated) == {"member": 2, "board": 2, "channel": 2}
    slack = dict(session.execute(select(Member.slug, Member.slack_user_id)).all())
    assert slack == {"ceri-morgan": "U0TOR00001", "sian-hughes": "U0SEC00001"}
    prefixes = dict(session.execute(select(Board.slug, Board.prefix)).all())
    assert prefixes == {"strategic": "FG", "finance-governance": "SB"}
    chats = dict(session.execute(select(Channel.slug, Channel.external_id)).all())
    assert chats["srs-secretariat"] == "C0TORF0001" and chats["srs-torfaen"] == "C0SECR0001"


def test_a_prefix_held_by_a_board_outside_the_file_is_refused(
    base_applied: None, session: Session, tmp_path: Path
) -> None:
    text = cut(BASE, "  - slug: strategic\n", "  - slug: finance-governance\n")
    text = mutate(text, "prefix: FG", "prefix: SB")
    text = mutate(text, "    board: strategic", "    board: finance-governance")
    path = write(tmp_path, text)
    events = count(session, AuditEvent)

    with pytest.raises(ConfigError) as raised:
        apply_collaboration(session, load_collaboration(path))
    session.rollback()

    [problem] = raised.value.problems
    assert (problem.key, problem.line) == ("boards[0].prefix", line_of(text, "prefix: SB"))
    assert 'belongs to board "strategic"' in problem.message
    assert dict(session.execute(select(Board.slug, Board.prefix)).all()) == {
        "strategic": "SB",
        "finance-governance": "FG",
    }
    assert count(session, AuditEvent) == events


# --- the command line -----------------------------------------------------------------------


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {
        "DATABASE_URL": database_url,
        "SCRUTINY_CONFIG": str(tmp_path / "default.yaml"),
        "SCRUTINY_LANGUAGE": "en",
    }


def test_config_check_reports_a_valid_file(runner: CliRunner, cli_env: dict[str, str]) -> None:
    result = runner.invoke(cli, ["config", "check", str(EXAMPLE)], env=cli_env)
    assert result.exit_code == 0, result.output
    assert (
        result.stdout
        == f"{EXAMPLE} is valid: 6 organisations, 3 boards, 15 members, 16 channels.\n"
    )


def test_config_check_lists_every_problem_and_exits_1(
    runner: CliRunner, cli_env: dict[str, str], tmp_path: Path
) -> None:
    text = mutate(BASE, "prefix: FG", "prefix: fgb")
    text = mutate(text, "C0TORF0001\n    partner: torfaen", "C0TORF0001\n    partner: torfean")
    Path(cli_env["SCRUTINY_CONFIG"]).write_text(text, encoding="utf-8")
    result = runner.invoke(cli, ["config", "check"], env=cli_env)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(
        f"{cli_env['SCRUTINY_CONFIG']}:{line_of(text, 'fgb')}: boards[1].prefix: "
    )
    assert lines[1].startswith(
        f"{cli_env['SCRUTINY_CONFIG']}:{line_of(text, 'torfean')}: channels[1].partner: "
    )
    assert lines[2] == f"2 problems in {cli_env['SCRUTINY_CONFIG']}"


def snapshot(engine: Engine) -> dict[str, Any]:
    with Session(engine) as s:
        return {
            "partners": s.scalars(select(Partner.slug).order_by(Partner.slug)).all(),
            "members": s.execute(
                select(Member.slug, Member.clearance, Member.active).order_by(Member.slug)
            ).all(),
            "channels": s.execute(
                select(Channel.slug, Channel.digest_cron).order_by(Channel.slug)
            ).all(),
            "audit": s.scalar(select(func.count()).select_from(AuditEvent)),
        }


def test_config_load_applies_once_and_a_broken_file_writes_nothing(
    runner: CliRunner, cli_env: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    broken = write(tmp_path, mutate(BASE, "platform: teams", "platform: discord"), "broken.yaml")
    result = runner.invoke(cli, ["config", "load", str(broken)], env=cli_env)
    assert result.exit_code == 1
    assert "channels[2].platform" in result.stderr and "1 problem in" in result.stderr
    assert snapshot(engine)["partners"] == []

    good = write(tmp_path, BASE, "good.yaml")
    result = runner.invoke(cli, ["config", "load", str(good)], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "Members: 2 created, 0 updated, 0 unchanged." in result.stdout
    before = snapshot(engine)
    assert before["audit"] == 9

    # A real change next to a mistake: the change must not be written either.
    half = mutate(
        BASE,
        "    roles: [scrutiny-member]\n",
        "    roles: [scrutiny-member]\n    clearance: official-sensitive\n",
    )
    half = mutate(half, "C0TORF0001\n    partner: torfaen", "C0TORF0001\n    partner: torfean")
    result = runner.invoke(
        cli, ["config", "load", str(write(tmp_path, half, "half.yaml"))], env=cli_env
    )
    assert result.exit_code == 1
    assert 'unknown partner "torfean"' in result.stderr
    assert snapshot(engine) == before

    result = runner.invoke(cli, ["config", "load", str(good)], env=cli_env)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "Nothing changed."
    assert snapshot(engine) == before


# --- property: random damage never crashes the checker --------------------------------------

EXAMPLE_DOC: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
REFERENCES = [
    ("members", "partner", "partners"),
    ("channels", "partner", "partners"),
    ("channels", "board", "boards"),
]
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 500),
    st.text(max_size=30),
    st.lists(st.text(max_size=8), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=2),
)


def _mappings(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _mappings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _mappings(value)


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, bool]:
    """A damaged copy of the example as YAML text, and whether the damage must be reported."""
    doc = copy.deepcopy(EXAMPLE_DOC)
    kind = draw(
        st.sampled_from(
            [
                "drop-required",
                "bad-reference",
                "duplicate",
                "any-value",
                "drop-entry",
                "rename-key",
                "mangle-line",
            ]
        )
    )
    section = draw(st.sampled_from(list(SECTIONS)))
    entries = doc[section]
    entry = entries[draw(st.integers(0, len(entries) - 1))]
    if kind == "drop-required":
        required = [
            name for name, info in SECTIONS[section].model_fields.items() if info.is_required()
        ]
        del entry[draw(st.sampled_from(required))]
        return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), True
    if kind == "bad-reference":
        owner, key, target = draw(st.sampled_from(REFERENCES))
        known = {item["slug"] for item in doc[target]}
        holders = [item for item in doc[owner] if key in item]
        holder = draw(st.sampled_from(holders))
        holder[key] = draw(st.text(min_size=1, max_size=20).filter(lambda s: s not in known))
        return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), True
    if kind == "duplicate":
        entries.append(copy.deepcopy(entry))
        return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), True
    if kind == "any-value":
        mapping = draw(st.sampled_from(list(_mappings(doc))))
        mapping[draw(st.sampled_from(sorted(mapping)))] = draw(ANY_VALUE)
    elif kind == "drop-entry":
        entries.remove(entry)
    elif kind == "rename-key":
        mapping = draw(st.sampled_from(list(_mappings(doc))))
        old = draw(st.sampled_from(sorted(mapping)))
        mapping[draw(st.text(min_size=1, max_size=12))] = mapping.pop(old)
    else:
        lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
        lines[draw(st.integers(0, len(lines) - 1))] = draw(st.text(max_size=40))
        return "\n".join(lines) + "\n", False
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), False


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("damaged") / "collaboration.yaml"


@hypothesis_settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=damaged())
def test_damage_is_reported_or_the_document_loads(scratch: Path, case: tuple[str, bool]) -> None:
    text, must_fail = case
    scratch.write_text(text, encoding="utf-8")
    problems = check_collaboration(scratch)
    line_count = max(1, len(text.splitlines()))
    for problem in problems:
        assert problem.line is None or 1 <= problem.line <= line_count + 1, problem
        assert problem.message and str(problem).startswith(str(scratch))
    if must_fail:
        assert problems
    if not problems:
        assert isinstance(load_collaboration(scratch), Collaboration)
    else:
        with pytest.raises(ConfigError):
            load_collaboration(scratch)
