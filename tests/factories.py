"""Rows for tests, made through the ORM (no import or config code involved)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain import ActionStatus, ChannelLanguage, Marking, Platform, Rag, Role
from bot.models import Action, Board, Channel, Decision, Meeting, Member, Partner

PARTNERS = [
    (
        "blaenau-gwent",
        "Blaenau Gwent County Borough Council",
        "Cyngor Bwrdeistref Sirol Blaenau Gwent",
        "partner",
    ),
    ("monmouthshire", "Monmouthshire County Council", "Cyngor Sir Fynwy", "partner"),
    ("newport", "Newport City Council", "Cyngor Dinas Casnewydd", "partner"),
    ("torfaen", "Torfaen County Borough Council", "Cyngor Bwrdeistref Sirol Torfaen", "partner"),
    ("gwent-police", "Gwent Police", "Heddlu Gwent", "partner"),
    ("srs", "SRS central team", "Tîm canolog y GAR", "central"),
]
BOARDS = [
    ("strategic", "SB", "Strategic Board", "Bwrdd Strategol"),
    ("finance-governance", "FG", "Finance & Governance Board", "Bwrdd Cyllid a Llywodraethu"),
    (
        "business-collaboration",
        "BC",
        "Business & Collaboration Board",
        "Bwrdd Busnes a Chydweithio",
    ),
]


@dataclass
class Seed:
    """Handles on the seeded rows, by slug or ref."""

    partners: dict[str, Partner] = field(default_factory=dict)
    boards: dict[str, Board] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    actions: dict[str, Action] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    meetings: list[Meeting] = field(default_factory=list)


SeedIds = dict[str, dict[str, int]]
"""Which rows a seed made: for each of its handles (`partners`, ..., `meetings`), each row's
slug, ref or position (meetings) and its id."""

_SEED_MODELS: dict[str, type[Any]] = {
    "partners": Partner,
    "boards": Board,
    "members": Member,
    "channels": Channel,
    "actions": Action,
    "decisions": Decision,
    "meetings": Meeting,
}


def seed_ids(seed: Seed) -> SeedIds:
    """The ids of a seed's rows, to load the same handles from a copy of its database."""
    ids: SeedIds = {}
    for name in _SEED_MODELS:
        rows = getattr(seed, name)
        keyed = rows.items() if isinstance(rows, dict) else enumerate(rows)
        ids[name] = {str(key): row.id for key, row in keyed}
    return ids


def load_seed(session: Session, ids: SeedIds) -> Seed:
    """The handles of a seed (`seed_collaboration`) whose rows a database already holds, loaded
    into `session` in the order they were made: copying a seeded database costs far less than
    seeding every test's own through the ORM."""
    seed = Seed()
    for name, model in _SEED_MODELS.items():
        wanted = ids[name]
        found = {
            row.id: row
            for row in session.scalars(select(model).where(model.id.in_(wanted.values())))
        }
        missing = [key for key, row_id in wanted.items() if row_id not in found]
        if missing:
            raise LookupError(f"seeded {name} {missing} are not in the test database")
        if name == "meetings":
            seed.meetings = [found[row_id] for row_id in wanted.values()]
        else:
            getattr(seed, name).update({key: found[row_id] for key, row_id in wanted.items()})
    return seed


def add_action(
    session: Session, seed: Seed, ref: str, owner_partner: str, due: date | None, **extra: Any
) -> Action:
    """One tactical-plan action owned by partner slug `owner_partner`."""
    values: dict[str, Any] = {
        "title": f"Action {ref}",
        "owner": "A. Person",
        "status": ActionStatus.IN_PROGRESS,
        "rag": Rag.AMBER,
        "theme": "Infrastructure",
        "marking": Marking.OFFICIAL,
        "restricted_to": [],
    }
    values.update(extra)
    action = Action(ref=ref, owner_partner=seed.partners[owner_partner], due_date=due, **values)
    session.add(action)
    seed.actions[ref] = action
    return action


def add_decision(
    session: Session, seed: Seed, ref: str, board: str, decided_on: date, **extra: Any
) -> Decision:
    """One decision of board slug `board`."""
    values: dict[str, Any] = {
        "title": f"Decision {ref}",
        "summary": "",
        "marking": Marking.OFFICIAL,
        "restricted_to": [],
        "partners": [],
        "recorded_at": datetime.combine(decided_on, datetime.min.time(), tzinfo=UTC),
    }
    values.update(extra)
    decision = Decision(ref=ref, board=seed.boards[board], decided_on=decided_on, **values)
    session.add(decision)
    seed.decisions[ref] = decision
    return decision


def seed_collaboration(session: Session) -> Seed:
    """Partners, boards, five members, four channels, some actions, decisions and meetings."""
    seed = Seed()
    for slug, name, name_cy, kind in PARTNERS:
        seed.partners[slug] = Partner(slug=slug, name=name, name_cy=name_cy, kind=kind)
    for slug, prefix, name, name_cy in BOARDS:
        seed.boards[slug] = Board(slug=slug, prefix=prefix, name=name, name_cy=name_cy)
    session.add_all([*seed.partners.values(), *seed.boards.values()])

    def member(
        slug: str,
        partner: str,
        roles: list[Role],
        clearance: Marking,
        exempt: bool,
        lang: str,
        slack: str,
    ) -> None:
        seed.members[slug] = Member(
            slug=slug,
            name=slug.replace("-", " ").title(),
            partner=seed.partners[partner],
            roles=[r.value for r in roles],
            clearance=clearance,
            exempt_access=exempt,
            language=lang,
            slack_user_id=slack,
            entra_object_id=f"00000000-0000-0000-0000-{slack[-6:].rjust(12, '0')}",
        )

    member(
        "ceri-morgan",
        "srs",
        [Role.SECRETARIAT],
        Marking.OFFICIAL_SENSITIVE,
        True,
        "en",
        "U0SEC00001",
    )
    member(
        "sian-hughes",
        "torfaen",
        [Role.SCRUTINY_MEMBER],
        Marking.OFFICIAL_SENSITIVE,
        True,
        "en",
        "U0TOR00001",
    )
    member(
        "rhys-evans",
        "gwent-police",
        [Role.SCRUTINY_MEMBER],
        Marking.OFFICIAL_SENSITIVE,
        True,
        "en",
        "U0POL00001",
    )
    member(
        "eleri-jones",
        "monmouthshire",
        [Role.SCRUTINY_MEMBER],
        Marking.OFFICIAL,
        False,
        "cy",
        "U0MON00001",
    )
    member("tom-price", "newport", [Role.BOARD_MEMBER], Marking.OFFICIAL, False, "en", "U0NEW00001")
    session.add_all(seed.members.values())

    def channel(
        slug: str, ext: str, partner: str | None, clearance: Marking, exempt: bool, **extra: Any
    ) -> None:
        seed.channels[slug] = Channel(
            slug=slug,
            name=f"#{slug}",
            platform=Platform.SLACK,
            external_id=ext,
            partner=seed.partners[partner] if partner else None,
            clearance=clearance,
            exempt_access=exempt,
            language=extra.pop("language", ChannelLanguage.EN),
            **extra,
        )

    channel(
        "srs-secretariat", "C0SEC00001", "srs", Marking.OFFICIAL_SENSITIVE, True, secretariat=True
    )
    channel(
        "srs-torfaen", "C0TOR00001", "torfaen", Marking.OFFICIAL, False, digest_cron="0 9 * * mon"
    )
    channel("srs-police", "C0POL00001", "gwent-police", Marking.OFFICIAL_SENSITIVE, True)
    channel(
        "srs-strategic-board",
        "C0SBB00001",
        None,
        Marking.OFFICIAL_SENSITIVE,
        True,
        board=seed.boards["strategic"],
    )
    session.add_all(seed.channels.values())

    add_action(
        session,
        seed,
        "TP-001",
        "torfaen",
        date(2026, 9, 30),
        title="Migrate file shares to SharePoint Online",
        rag=Rag.RED,
        owner="S. Hughes",
    )
    add_action(
        session,
        seed,
        "TP-002",
        "torfaen",
        date(2026, 11, 30),
        title="Replace core network switches",
    )
    add_action(
        session,
        seed,
        "TP-003",
        "torfaen",
        date(2026, 10, 1),
        title="Exempt contract renewal",
        exempt_paragraph=14,
    )
    add_action(
        session,
        seed,
        "TP-004",
        "gwent-police",
        date(2026, 10, 15),
        title="Police-only network segregation",
        restricted_to=["gwent-police"],
        marking=Marking.OFFICIAL_SENSITIVE,
    )
    add_action(
        session,
        seed,
        "TP-005",
        "newport",
        date(2026, 8, 1),
        title="Data centre move phase 2",
        status=ActionStatus.DONE,
    )
    add_action(
        session,
        seed,
        "TP-006",
        "monmouthshire",
        date(2026, 11, 1),
        title="Sensitive cyber assessment",
        marking=Marking.OFFICIAL_SENSITIVE,
    )

    add_decision(
        session,
        seed,
        "SB-2026-031",
        "strategic",
        date(2026, 11, 19),
        title="Approved the data centre move business case (phase 2)",
        summary="The board approved phase 2 of the move to the Blaenavon data centre.",
    )
    add_decision(
        session,
        seed,
        "FG-2026-044",
        "finance-governance",
        date(2026, 11, 20),
        title="Agreed the 2027/28 partner contributions",
    )
    add_decision(
        session,
        seed,
        "SB-2026-032",
        "strategic",
        date(2026, 11, 19),
        title="Exempt procurement award",
        exempt_paragraph=14,
    )
    add_decision(
        session,
        seed,
        "BC-2026-010",
        "business-collaboration",
        date(2026, 3, 5),
        title="Police-only records system",
        restricted_to=["gwent-police"],
    )

    for board, when in (
        ("strategic", datetime(2026, 12, 3, 10, 0, tzinfo=UTC)),
        ("finance-governance", datetime(2026, 12, 10, 14, 0, tzinfo=UTC)),
    ):
        meeting = Meeting(
            board=seed.boards[board],
            starts_at=when,
            location="Blaenavon data centre",
            questions_open=datetime(2026, 11, 19, 9, 0, tzinfo=UTC),
            questions_close=datetime(2026, 11, 27, 17, 0, tzinfo=UTC),
        )
        session.add(meeting)
        seed.meetings.append(meeting)
    session.flush()
    return seed


def add_digest_channels(session: Session, seed: Seed, count: int) -> None:
    """`count` more Slack channels, mixed partners, clearances and languages, each with a
    Monday 9am digest; committed."""
    partners = ["torfaen", "gwent-police", "newport", None]
    for n in range(count):
        partner = partners[n % len(partners)]
        session.add(
            Channel(
                slug=f"fan-{n}",
                name=f"#fan-{n}",
                platform=Platform.SLACK,
                external_id=f"C0FAN{n:05d}",
                partner=seed.partners[partner] if partner else None,
                clearance=Marking.OFFICIAL_SENSITIVE if n % 2 else Marking.OFFICIAL,
                language=[ChannelLanguage.EN, ChannelLanguage.CY_EN][n % 2],
                digest_cron="0 9 * * mon",
            )
        )
    session.commit()
