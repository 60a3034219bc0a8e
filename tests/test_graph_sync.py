"""Microsoft 365 sync through the real msgraph-sdk against the fake Graph: paging, throttling
honoured by the SDK's RetryHandler, interruption without partial writes, idempotent re-runs,
refused rows named by list item and field, and the collaboration file's graph section."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.collaboration import GraphConfig, check_collaboration
from bot.microsoft365.graph import APP_SCOPES, CALENDAR_SCOPES, GraphReader, graph_client
from bot.models import Action, AuditEvent, Decision, Meeting
from bot.services.graph_sync import SyncFailed, SyncReport, claim_slot, sync_graph
from tests.conftest import NOW
from tests.factories import Seed
from tests.fakes.graph_api import FakeCredential, FakeGraph, event, list_item

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

STRATEGIC_GROUP = "5a0e2c1b-1111-4111-8111-000000000001"
FINANCE_GROUP = "5a0e2c1b-2222-4222-8222-000000000002"
SITE = "contoso.sharepoint.com,1f0a,2b0c"
CONFIG = GraphConfig.model_validate(
    {
        "calendars": {"strategic": STRATEGIC_GROUP, "finance-governance": FINANCE_GROUP},
        "sharepoint": {
            "site": SITE,
            "decisions": {
                "list": "decisions-register",
                "fields": {
                    "ref": "Title",
                    "board": "Board",
                    "decided_on": "DecidedOn",
                    "title": "DecisionTitle",
                    "summary": "Summary",
                },
            },
            "actions": {
                "list": "tactical-plan",
                "fields": {
                    "ref": "Title",
                    "title": "ActionTitle",
                    "owner_partner": "Owner",
                    "due_date": "Due",
                    "status": "Status",
                },
            },
        },
    }
)


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph(page_size=2) as graph:
        graph.events[STRATEGIC_GROUP] = [
            event(f"sb{n}", "Strategic Board", f"2027-0{n}-11T10:00", f"2027-0{n}-11T12:00")
            for n in range(1, 6)
        ]
        graph.events[FINANCE_GROUP] = [
            event("fg1", "Finance & Governance Board", "2027-01-20T14:00", "2027-01-20T16:00"),
            event("fg2", "cancelled", "2027-02-20T14:00", "2027-02-20T16:00", isCancelled=True),
        ]
        graph.items[(SITE, "decisions-register")] = [
            list_item(
                n,
                Title=f"SB-2027-00{n}",
                Board="SB",
                # A SharePoint date column: local midnight (BST in July) as a UTC instant.
                DecidedOn=f"2026-07-0{n}T23:00:00Z",
                DecisionTitle=f"Decision {n}",
                Summary=None,
            )
            for n in range(1, 4)
        ]
        graph.items[(SITE, "tactical-plan")] = [
            list_item(
                10 + n,
                Title=f"TP-10{n}",
                ActionTitle=f"Action {n}",
                Owner="Torfaen",
                Due="2027-01-31T00:00:00Z",
                Status="in progress",
            )
            for n in range(1, 4)
        ]
        yield graph


@pytest.fixture
def reader(fake: FakeGraph) -> Iterator[GraphReader]:
    credential = FakeCredential()
    found = GraphReader(
        graph_client(credential, APP_SCOPES, fake.url, retry=True),
        graph_client(credential, CALENDAR_SCOPES, fake.url, retry=True),
    )
    yield found
    found.close()


def sync(app: ScrutinyApp, reader: GraphReader) -> SyncReport:
    return sync_graph(
        app.sessions, reader, CONFIG, actor="graph-sync", zone=app.settings.timezone, now=NOW
    )


def counts(session: Session) -> dict[str, int]:
    # A fresh read: on SQLite an open read keeps its snapshot of before the sync.
    session.rollback()
    found = {
        model.__name__: session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Meeting, Decision, Action, AuditEvent)
    }
    session.rollback()
    return found


def changes(report: SyncReport) -> dict[str, tuple[int, int, int]]:
    return {k: (r.created, r.updated, r.unchanged) for k, r in report.imported.items()}


def test_paged_calendars_and_lists_are_upserted_once_and_a_rerun_changes_nothing(
    app: ScrutinyApp, session: Session, seed: Seed, fake: FakeGraph, reader: GraphReader
) -> None:
    before = counts(session)
    report = sync(app, reader)
    assert report.ok
    assert changes(report) == {
        "meetings": (6, 0, 0),
        "decisions": (3, 0, 0),
        "actions": (3, 0, 0),
    }
    # Three pages of the strategic calendar, two of each list, all followed.
    assert len(fake.calls_to(f"/groups/{STRATEGIC_GROUP}/calendar/calendarView")) == 3
    assert len(fake.calls_to("/lists/tactical-plan/items")) == 2
    session.rollback()
    decision = session.scalar(select(Decision).where(Decision.ref == "SB-2027-001"))
    assert decision is not None and decision.decided_on.isoformat() == "2026-07-02"
    action = session.scalar(select(Action).where(Action.ref == "TP-101"))
    assert action is not None and action.owner_partner.slug == "torfaen"
    meeting = session.scalar(select(Meeting).where(Meeting.source_uid == "uid-fg1"))
    assert meeting is not None and meeting.board.slug == "finance-governance"
    after = counts(session)
    assert after["AuditEvent"] - before["AuditEvent"] == 12

    again = sync(app, reader)
    assert changes(again) == {
        "meetings": (0, 0, 6),
        "decisions": (0, 0, 3),
        "actions": (0, 0, 3),
    }
    assert counts(session) == after


def test_throttling_is_waited_out_by_the_sdk_retry_handler(
    app: ScrutinyApp, seed: Seed, fake: FakeGraph, reader: GraphReader
) -> None:
    fake.fail("calendarView", 429, retry_after="1")
    fake.fail("/lists/tactical-plan/items", 503, retry_after="1")
    report = sync(app, reader)
    assert report.ok and report.imported["actions"].created == 3
    statuses = [c.status for c in fake.calls_to("/lists/tactical-plan/items")]
    assert statuses == [503, 200, 200]
    assert [c.status for c in fake.calls_to("calendarView")][:2] == [429, 200]


def test_a_sync_interrupted_half_way_writes_nothing_and_a_rerun_completes_it(
    app: ScrutinyApp, session: Session, seed: Seed, fake: FakeGraph, reader: GraphReader
) -> None:
    before = counts(session)
    # Page 2 of the lists fails for good, after every calendar was read in full.
    fake.fail("$top=200&$skiptoken", 500, times=None)
    with pytest.raises(SyncFailed, match="500"):
        sync(app, reader)
    assert len(fake.calls_to(f"/groups/{STRATEGIC_GROUP}/calendar/calendarView")) == 3
    assert counts(session) == before

    fake.heal()
    report = sync(app, reader)
    assert changes(report)["actions"] == (3, 0, 0)
    assert changes(sync(app, reader))["meetings"] == (0, 0, 6)
    assert counts(session)["Action"] == before["Action"] + 3


def test_a_bad_list_item_refuses_its_kind_naming_the_item_and_field(
    app: ScrutinyApp, session: Session, seed: Seed, fake: FakeGraph, reader: GraphReader
) -> None:
    items: list[dict[str, Any]] = fake.items[(SITE, "tactical-plan")]
    items[1]["fields"]["Owner"] = "Torfan"
    items[2]["fields"]["Due"] = "31/02/2027"
    before = counts(session)
    report = sync(app, reader)
    assert not report.ok and set(report.imported) == {"meetings", "decisions"}
    shown = [str(problem) for problem in report.refused["actions"]]
    assert shown[0].startswith('SharePoint list tactical-plan, item 12, Owner "Torfan": ')
    assert 'did you mean "torfaen"?' in shown[0]
    assert shown[1].startswith('SharePoint list tactical-plan, item 13, Due "31/02/2027": ')
    assert counts(session)["Action"] == before["Action"]
    assert counts(session)["Decision"] == before["Decision"] + 3


def test_the_worker_syncs_once_per_half_hour_slot(app: ScrutinyApp, seed: Seed) -> None:
    assert claim_slot(app.sessions, NOW)
    assert not claim_slot(app.sessions, NOW + timedelta(minutes=29))
    assert claim_slot(app.sessions, NOW + timedelta(minutes=30))


EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "collaboration.example.yaml"


def test_graph_section_problems_are_reported_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "collaboration.yaml"
    shutil.copy(EXAMPLE, path)
    text = path.read_text(encoding="utf-8")
    start = len(text.splitlines())
    path.write_text(
        text
        + "\ngraph:\n"
        + "  calendars:\n"
        + f"    strategc: {STRATEGIC_GROUP}\n"
        + "    finance-governance: not-a-guid\n"
        + "  sharepoint:\n"
        + f"    site: {SITE}\n"
        + "    actions:\n"
        + "      list: tactical-plan\n"
        + "      fields: {ref: Title, titel: ActionTitle, owner: 'Bad Name'}\n",
        encoding="utf-8",
    )
    problems = [str(p) for p in check_collaboration(path)]
    joined = "\n".join(problems)
    assert f':{start + 4}: graph.calendars.strategc: unknown board "strategc"' in joined
    assert 'did you mean "strategic"?' in joined
    assert "not a Microsoft Entra object id" in joined
    assert '"titel" is not a actions column' in joined
    assert 'the required column "title" is not mapped' in joined
    assert 'the required column "owner_partner" is not mapped' in joined
    assert "is not a SharePoint internal field name" in joined


def test_welsh_columns_come_from_the_field_map_and_a_welsh_location_survives_a_sync(
    app: ScrutinyApp, session: Session, seed: Seed, fake: FakeGraph, reader: GraphReader
) -> None:
    mapped = CONFIG.model_dump()
    mapped["sharepoint"]["decisions"]["fields"].update(
        title_cy="TeitlPenderfyniad", summary_cy="Crynodeb"
    )
    mapped["sharepoint"]["actions"]["fields"]["title_cy"] = "TeitlCam"
    config = GraphConfig.model_validate(mapped)
    for item in fake.items[(SITE, "decisions-register")]:
        item["fields"]["TeitlPenderfyniad"] = "Penderfyniad " + item["fields"]["Title"]
        item["fields"]["Crynodeb"] = "Crynodeb yn Gymraeg."
    for item in fake.items[(SITE, "tactical-plan")]:
        item["fields"]["TeitlCam"] = "Cam " + item["fields"]["Title"]
    report = sync_graph(
        app.sessions, reader, config, actor="graph-sync", zone=app.settings.timezone, now=NOW
    )
    assert report.ok
    session.rollback()
    decision = session.scalars(select(Decision).where(Decision.ref == "SB-2027-001")).one()
    assert (decision.title_cy, decision.summary_cy) == (
        "Penderfyniad SB-2027-001",
        "Crynodeb yn Gymraeg.",
    )
    action = session.scalars(select(Action).where(Action.ref == "TP-101")).one()
    assert action.title_cy == "Cam TP-101"

    meeting = session.scalars(select(Meeting).where(Meeting.source_uid == "uid-fg1")).one()
    meeting.location_cy = "Canolfan Ddinesig, Pont-y-pŵl"
    session.commit()
    again = sync_graph(
        app.sessions, reader, config, actor="graph-sync", zone=app.settings.timezone, now=NOW
    )
    assert changes(again)["meetings"] == (0, 0, 6)
    session.rollback()
    kept = session.scalars(select(Meeting).where(Meeting.source_uid == "uid-fg1")).one()
    assert kept.location_cy == "Canolfan Ddinesig, Pont-y-pŵl"
