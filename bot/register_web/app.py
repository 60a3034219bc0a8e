"""The register's pages: Starlette routes rendering `templates/web/*.html.j2` for the signed-in
member. Every read goes through the query services (and so the visibility rule) with the
member's own audience, exactly as in a direct message; every change is audited."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from bot.context import UserError
from bot.db import unit_of_work
from bot.domain import ActionStatus, Rag, Role
from bot.i18n import LANGUAGES, N_, Translator, translations
from bot.models import Action, Board, CalendarFeed, Meeting, Member, Partner
from bot.permalinks import RegisterLinks
from bot.register_web.oidc import OidcClient, Pending, Provider, SignInFailed
from bot.rendering import TEMPLATES_DIR, in_reader_language
from bot.runtime import Runtime
from bot.services import attendance as attendance_service
from bot.services import calendar_feeds, queries, register_export, trail
from bot.services.questions.pack import build_pack
from bot.services.register import (
    DECISION_FIELDS,
    InvalidInput,
    next_decision_refs,
    record_decision,
    update_action_status,
)
from bot.settings import PROJECT_ROOT
from bot.visibility import Audience, audience_of_member
from handlers.home import overview

log = logging.getLogger(__name__)

SESSION_COOKIE = "scrutiny_register"
SESSION_HOURS = 8
LOOPBACK = "127.0.0.1"
PER_PAGE = 20
DUE_SOON_DAYS = 14
WEB_DIR = TEMPLATES_DIR / "web"
Clock = Callable[[], datetime]


@cache
def _environment(language: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["dict_without"] = lambda values, key: {k: v for k, v in values.items() if k != key}

    @jinja2.pass_context
    def localised(context: jinja2.runtime.Context, record: object, field: str) -> str:
        return in_reader_language(record, field, context["language"], context["t"])

    env.filters["localised"] = localised
    return env


def session_secret(app: Runtime, folder: Path) -> str:
    """WEB_SESSION_SECRET, else a secret made once and kept in `folder` (single machine)."""
    if app.settings.web_session_secret:
        return app.settings.web_session_secret
    path = folder / "web-session-secret"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def providers_of(app: Runtime) -> dict[str, Provider]:
    """The identity providers the settings configure, by name."""
    settings = app.settings
    found: dict[str, Provider] = {}
    entra_url = settings.entra_signin_metadata_url
    if entra_url and settings.web_entra_client_id:
        found["entra"] = Provider(
            "entra",
            entra_url,
            settings.web_entra_client_id,
            settings.web_entra_client_secret or "",
            ("oid",),
            tenant=settings.graph_tenant_id,
        )
    if settings.web_slack_client_id:
        found["slack"] = Provider(
            "slack",
            settings.web_slack_metadata_url,
            settings.web_slack_client_id,
            settings.web_slack_client_secret or "",
            ("https://slack.com/user_id", "sub"),
        )
    return found


class RegisterSite:
    """The pages and the state they share: the bot, the clock and the sign-in clients."""

    def __init__(self, app: Runtime, clock: Clock) -> None:
        self.app = app
        self.clock = clock
        self.zone = app.settings.timezone
        self.links = RegisterLinks(app.settings.web_base_url)
        self.clients = {name: OidcClient(p) for name, p in providers_of(app).items()}

    # -- plumbing -------------------------------------------------------------------------
    def dev_signin_allowed(self, request: Request) -> bool:
        """Only with no identity provider configured, and only from this machine."""
        client = request.client.host if request.client else ""
        return not self.app.settings.web_signin_configured and client == LOOPBACK

    def language(self, request: Request, member: Member | None) -> str:
        """The session's chosen language, else the member's, else English."""
        chosen = request.session.get("lang")
        if chosen in LANGUAGES:
            return str(chosen)
        return member.language if member is not None and member.language in LANGUAGES else "en"

    def not_found(self, request: Request) -> Response:
        """A plain 404 in the visitor's language (nothing here says whether the thing exists)."""
        t = Translator(self.language(request, None), self.zone)
        return PlainTextResponse(t._("Not found"), status_code=404)

    @staticmethod
    def csrf_token(request: Request) -> str:
        """This session's form token (made on first use)."""
        token = request.session.get("csrf")
        if not isinstance(token, str):
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return token

    async def form(self, request: Request) -> dict[str, str]:
        """The posted form, refused unless it carries this session's CSRF token."""
        form = await request.form()
        sent = str(form.get("csrf_token", ""))
        expected = request.session.get("csrf")
        if not isinstance(expected, str) or not secrets.compare_digest(sent, expected):
            raise CsrfRefused
        return {k: str(v) for k, v in form.items() if k != "csrf_token" and isinstance(v, str)}

    def render(
        self,
        request: Request,
        template: str,
        member: Member | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """A page in the reader's language."""
        language = self.language(request, member)
        t = Translator(language, self.zone)
        html = (
            _environment(language)
            .get_template(f"web/{template}.html.j2")
            .render(
                t=t,
                language=language,
                member=member,
                links=self.links,
                csrf_token=self.csrf_token(request),
                path=request.url.path,
                query=request.url.query,
                is_secretariat=member is not None and Role.SECRETARIAT.value in member.roles,
                **context,
            )
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def member_of(self, request: Request, session: Session) -> Member | None:
        """The signed-in, still active member, or None."""
        member_id = request.session.get("member_id")
        if not isinstance(member_id, int):
            return None
        member = session.scalar(
            select(Member)
            .options(joinedload(Member.partner), joinedload(Member.boards))
            .where(Member.id == member_id, Member.active.is_(True))
        )
        return member

    def now(self) -> datetime:
        """The injected clock's instant."""
        return self.clock()

    def today(self) -> date:
        """Today in the collaboration's wall-clock zone."""
        return self.now().astimezone(self.zone).date()


class CsrfRefused(Exception):
    """A form came without this session's token."""


TEAMS_FRAME_ANCESTORS = (
    "https://teams.microsoft.com",
    "https://*.teams.microsoft.com",
    "https://*.cloud.microsoft",
    "https://*.microsoft365.com",
    "https://*.office.com",
    "https://outlook.office.com",
    "https://outlook.office365.com",
)
"""Who may show the register in a frame: Microsoft's list of Teams and Microsoft 365 hosts for
tabs (learn.microsoft.com, "Tab requirements"), so a team can pin it and members open their
Home tab; any other site is refused (no clickjacking)."""
TEAMS_JS = {
    "url": "https://res.cdn.office.net/teams-js/2.23.0/js/MicrosoftTeams.min.js",
    "integrity": "sha384-08XJvrutoSVYTA8PQeUgetTKn8B7JE73C5BdAfWnHZ5WnSFFQO6g1FGmSqxsrAzb",
}
"""Teams' JavaScript library (TeamsJS, 2.19 or later for the cloud.microsoft hosts), pinned
with the hash Microsoft publishes for it; only the Teams tab pages load it."""

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "script-src 'self' https://res.cdn.office.net; "
        "form-action 'self' https:; frame-ancestors 'self' " + " ".join(TEAMS_FRAME_ANCESTORS)
    ),
}


def _signin_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)


def _safe_next(value: str | None) -> str:
    """Only a path on this site (never //host or a scheme)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/decisions"
    return value


def _int(value: str | None, default: int = 1) -> int:
    try:
        return max(1, int(value or default))
    except ValueError:
        return default


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


REGISTER_TAB_VIEWS = {
    "decisions": N_("Decisions"),
    "actions": N_("Actions"),
    "meetings": N_("Meetings"),
    "attendance": N_("Attendance"),
}
"""What a team's register tab can open on (its configuration page offers these)."""

PageHandler = Callable[[Request, Session, Member, Audience], Response]
FormHandler = Callable[[Request, Session, Member, dict[str, str]], Response]


def build_register(app: Runtime, clock: Clock, *, var_dir: Path | None = None) -> Starlette:
    """The register as a Starlette app to mount at the site's root."""
    site = RegisterSite(app, clock)
    https = urlsplit(app.settings.web_base_url).scheme == "https"
    folder = var_dir or PROJECT_ROOT / "var"

    def member_page(handler: PageHandler) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            with unit_of_work(app.sessions) as session:
                member = site.member_of(request, session)
                if member is None:
                    return _signin_redirect(request)
                return handler(request, session, member, audience_of_member(member))

        return endpoint

    def teams_page(handler: PageHandler) -> Callable[[Request], Response]:
        """A page Teams shows in a tab. Signed out, it offers sign-in in a window of its own:
        Microsoft's sign-in page refuses to open inside the tab's frame."""

        def endpoint(request: Request) -> Response:
            with unit_of_work(app.sessions) as session:
                member = site.member_of(request, session)
                if member is not None:
                    return handler(request, session, member, audience_of_member(member))
            popup = "/signin/entra?next=/teams/signed-in" if "entra" in site.clients else ""
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return site.render(
                request,
                "teams_signin",
                None,
                next=_safe_next(target),
                popup_url=popup,
                teams_js=TEAMS_JS,
            )

        return endpoint

    def secretariat_only(member: Member) -> bool:
        return Role.SECRETARIAT.value in member.roles

    def member_form(
        handler: FormHandler, *, secretariat: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """A form's POST endpoint: the form read (and refused without this session's CSRF
        token), the signed-in member (and, with `secretariat`, the role) checked, then
        `handler` run in one unit of work."""

        async def endpoint(request: Request) -> Response:
            values = await site.form(request)
            with unit_of_work(app.sessions) as session:
                member = site.member_of(request, session)
                if member is None:
                    return _signin_redirect(request)
                if secretariat and not secretariat_only(member):
                    return site.render(request, "forbidden", member, status=403)
                return handler(request, session, member, values)

        return endpoint

    # -- sign-in --------------------------------------------------------------------------
    def signin(request: Request) -> Response:
        with unit_of_work(app.sessions) as session:
            member = site.member_of(request, session)
            examples: list[Member] = []
            if site.dev_signin_allowed(request):
                examples = list(
                    session.scalars(
                        select(Member)
                        .options(joinedload(Member.partner))
                        .where(Member.active.is_(True))
                        .order_by(Member.name)
                    )
                )
            return site.render(
                request,
                "signin",
                member,
                providers=sorted(site.clients),
                examples=examples,
                next=_safe_next(request.query_params.get("next")),
                problem=request.query_params.get("problem", ""),
            )

    async def signin_dev(request: Request) -> Response:
        if not site.dev_signin_allowed(request):
            return site.not_found(request)
        values = await site.form(request)
        with unit_of_work(app.sessions) as session:
            member = session.scalar(
                select(Member).where(Member.slug == values.get("member", ""), Member.active)
            )
            if member is None:
                return RedirectResponse("/signin?problem=unknown", status_code=303)
            _start_session(request, member)
        return RedirectResponse(_safe_next(values.get("next")), status_code=303)

    def _start_session(request: Request, member: Member) -> None:
        # A fresh session on sign-in: nothing from before (a planted token) carries over.
        request.session.clear()
        request.session["member_id"] = member.id
        request.session["csrf"] = secrets.token_urlsafe(32)

    def callback_url(name: str) -> str:
        return f"{site.links.base_url}/signin/{name}/callback"

    def signin_start(request: Request) -> Response:
        name = request.path_params["provider"]
        client = site.clients.get(name)
        if client is None:
            return site.not_found(request)
        try:
            url, pending = client.start(callback_url(name))
        except SignInFailed as failure:
            log.warning("sign-in with %s could not start: %s", name, failure)
            return RedirectResponse("/signin?problem=provider", status_code=303)
        request.session["pending"] = {
            **pending.as_dict(),
            "provider": name,
            "next": _safe_next(request.query_params.get("next")),
        }
        return RedirectResponse(url, status_code=303)

    def signin_callback(request: Request) -> Response:
        name = request.path_params["provider"]
        client = site.clients.get(name)
        stored = request.session.pop("pending", None)
        if client is None or not isinstance(stored, dict) or stored.get("provider") != name:
            return RedirectResponse("/signin?problem=expired", status_code=303)
        pending = Pending(stored["state"], stored["nonce"], stored["verifier"])
        try:
            identity = client.finish(
                request.query_params.get("code", ""),
                request.query_params.get("state", ""),
                pending,
                callback_url(name),
                site.now(),
            )
        except SignInFailed as failure:
            log.warning("sign-in with %s refused: %s", name, failure)
            return RedirectResponse("/signin?problem=refused", status_code=303)
        column = Member.entra_object_id if name == "entra" else Member.slack_user_id
        with unit_of_work(app.sessions) as session:
            member = session.scalar(select(Member).where(column == identity, Member.active))
            if member is None:
                return RedirectResponse("/signin?problem=unknown", status_code=303)
            _start_session(request, member)
        return RedirectResponse(_safe_next(stored.get("next")), status_code=303)

    async def signout(request: Request) -> Response:
        await site.form(request)
        request.session.clear()
        return RedirectResponse("/signin", status_code=303)

    async def choose_language(request: Request) -> Response:
        values = await site.form(request)
        if values.get("lang") in LANGUAGES:
            request.session["lang"] = values["lang"]
        return RedirectResponse(_safe_next(values.get("next")), status_code=303)

    # -- decisions ------------------------------------------------------------------------
    def decisions(
        request: Request, session: Session, member: Member, audience: Audience
    ) -> Response:
        q = request.query_params
        words = (q.get("q") or "").strip() or None
        page = queries.find_decisions(
            session,
            audience,
            board=q.get("board") or None,
            partner=q.get("partner") or None,
            since=_date(q.get("since")),
            until=_date(q.get("until")),
            text=words,
            page=_int(q.get("page")),
            per_page=PER_PAGE,
            count_up_to=queries.COUNT_UP_TO,
        )
        return site.render(
            request,
            "decisions",
            member,
            page=page,
            filters=dict(q),
            boards=queries.board_views(session).values(),
            partners=queries.partner_views(session).values(),
        )

    def decision(
        request: Request, session: Session, member: Member, audience: Audience
    ) -> Response:
        found = queries.get_decision(session, audience, request.path_params["ref"])
        if not isinstance(found, queries.Found):
            # Withheld and missing look the same: the page never says a hidden item exists.
            return site.render(request, "not_found", member, status=404)
        item = found.item
        if item.ref != request.path_params["ref"]:
            return RedirectResponse(site.links.path("decisions", item.ref), status_code=301)
        now = site.now()
        followed = trail.decision_trail(
            session, audience, item.ref, viewer=member, now=now, zone=site.zone
        )
        return site.render(request, "decision", member, decision=item, trail=followed)

    def decision_form(
        request: Request,
        session: Session,
        member: Member,
        values: Mapping[str, str],
        errors: Mapping[str, str],
        status: int = 200,
    ) -> Response:
        return site.render(
            request,
            "decision_form",
            member,
            status=status,
            values=values,
            errors=errors,
            boards=queries.board_views(session).values(),
            suggested=next_decision_refs(session, site.today().year),
        )

    def new_decision(request: Request, session: Session, member: Member, _a: Audience) -> Response:
        if not secretariat_only(member):
            return site.render(request, "forbidden", member, status=403)
        return decision_form(request, session, member, {}, {})

    def record_decision_post(
        request: Request, session: Session, member: Member, values: dict[str, str]
    ) -> Response:
        t = Translator(site.language(request, member), site.zone)
        fields = {k: v for k, v in values.items() if k in DECISION_FIELDS}
        try:
            with session.begin_nested():
                made = record_decision(
                    session, fields, actor=f"web:{member.slug}", now=site.now(), t=t
                )
        except InvalidInput as refused:
            return decision_form(request, session, member, fields, refused.errors, 422)
        ref = made.ref
        return RedirectResponse(site.links.path("decisions", ref), status_code=303)

    # -- actions --------------------------------------------------------------------------
    def actions(request: Request, session: Session, member: Member, audience: Audience) -> Response:
        q = request.query_params
        timing = q.get("timing", "")
        statuses = [s for s in ActionStatus if s.value == q.get("status")]
        rags = [r for r in Rag if r.value == q.get("rag")]
        page = queries.find_actions(
            session,
            audience,
            today=site.today(),
            partner=q.get("partner") or None,
            status=statuses or None,
            rag=rags or None,
            overdue=timing == "overdue",
            due_within_days=DUE_SOON_DAYS if timing == "due-soon" else None,
            text=(q.get("q") or "").strip() or None,
            page=_int(q.get("page")),
            per_page=PER_PAGE,
            count_up_to=queries.COUNT_UP_TO,
        )
        return site.render(
            request,
            "actions",
            member,
            page=page,
            filters=dict(q),
            partners=queries.partner_views(session).values(),
            statuses=list(ActionStatus),
            rags=list(Rag),
        )

    def action_page(
        request: Request,
        session: Session,
        member: Member,
        audience: Audience,
        errors: Mapping[str, str] | None = None,
        values: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        found = queries.get_action(
            session, audience, request.path_params["ref"], today=site.today()
        )
        if not isinstance(found, queries.Found):
            return site.render(request, "not_found", member, status=404)
        item = found.item
        if item.ref != request.path_params["ref"]:
            return RedirectResponse(site.links.path("actions", item.ref), status_code=301)
        sources, hidden_sources = trail.decisions_behind(session, audience, item.decision_refs)
        questions, withheld = trail.questions_about(
            session, audience, [item.ref], viewer=member, now=site.now(), zone=site.zone
        )
        return site.render(
            request,
            "action",
            member,
            status=status,
            action=item,
            sources=sources,
            questions=questions,
            withheld_count=withheld + hidden_sources,
            statuses=list(ActionStatus),
            rags=list(Rag),
            errors=errors or {},
            values=values or {},
        )

    def update_action_post(
        request: Request, session: Session, member: Member, values: dict[str, str]
    ) -> Response:
        ref = request.path_params["ref"]
        audience = audience_of_member(member)
        t = Translator(site.language(request, member), site.zone)
        actor = f"web:{member.slug}"
        errors: dict[str, str] = {}
        links, unknown = trail.parse_decision_refs(session, values.get("decisions", ""), audience)
        if unknown:
            errors["decisions"] = t._(
                "{refs}: no such decision in the register; give decision references such "
                "as SB-2026-014, separated by spaces."
            ).format(refs=", ".join(unknown))
        status_values = {k: values.get(k, "") for k in ("status", "rag", "note") if values.get(k)}
        changed = False
        try:
            with session.begin_nested():
                if status_values:
                    update_action_status(
                        session,
                        ref,
                        status_values,
                        actor=actor,
                        audience=audience,
                        today=site.today(),
                        t=t,
                    )
                    changed = True
                if errors:
                    raise InvalidInput(errors, t)
                action = session.scalar(select(Action).where(Action.ref == ref.upper()))
                if action is not None and trail.link_decisions(session, action, links, actor=actor):
                    changed = True
        except InvalidInput as refused:
            if not changed and "status" in refused.errors and not errors:
                refused.errors.pop("status", None)
            merged = {**refused.errors, **errors}
            return action_page(request, session, member, audience, merged, values, 422)
        except UserError:
            return site.render(request, "not_found", member, status=404)
        return RedirectResponse(site.links.path("actions", ref.upper()), status_code=303)

    # -- meetings -------------------------------------------------------------------------
    def meetings(request: Request, session: Session, member: Member, _a: Audience) -> Response:
        board = request.query_params.get("board") or None
        statement = select(Meeting).options(joinedload(Meeting.board)).order_by(Meeting.starts_at)
        if board:
            statement = statement.where(
                Meeting.board_id.in_(select(Board.id).where(Board.slug == board))
            )
        now = site.now()
        rows = list(session.scalars(statement))
        return site.render(
            request,
            "meetings",
            member,
            meetings=[(m.id, queries.MeetingView.of(m, now)) for m in rows],
            boards=queries.board_views(session).values(),
            filters=dict(request.query_params),
            now=now,
        )

    def meeting_row(session: Session, request: Request) -> Meeting | None:
        try:
            meeting_id = int(request.path_params["meeting_id"])
        except ValueError:
            return None
        return session.scalar(
            select(Meeting).options(joinedload(Meeting.board)).where(Meeting.id == meeting_id)
        )

    def meeting_page(
        request: Request,
        session: Session,
        member: Member,
        audience: Audience,
        errors: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        row = meeting_row(session, request)
        if row is None:
            return site.render(request, "not_found", member, status=404)
        now = site.now()
        pack = build_pack(session, row, audience, now=now, zone=site.zone)
        partners = {p.slug: p for p in attendance_service.partners_expected(session)}
        return site.render(
            request,
            "meeting",
            member,
            status=status,
            meeting_id=row.id,
            meeting=queries.MeetingView.of(row, now),
            pack=pack,
            attendance=attendance_service.attendance_of(session, row),
            partners=partners,
            attendance_statuses=attendance_service.STATUSES,
            status_labels=attendance_service.STATUS_LABELS,
            errors=errors or {},
        )

    def attendance_post(
        request: Request, session: Session, member: Member, values: dict[str, str]
    ) -> Response:
        row = meeting_row(session, request)
        if row is None:
            return site.render(request, "not_found", member, status=404)
        t = Translator(site.language(request, member), site.zone)
        statuses = {k[len("partner:") :]: v for k, v in values.items() if k.startswith("partner:")}
        try:
            checked = attendance_service.check_statuses(session, statuses, t)
        except attendance_service.AttendanceInvalid as refused:
            return meeting_page(
                request, session, member, audience_of_member(member), refused.errors, 422
            )
        attendance_service.record_attendance(session, row, checked, actor=f"web:{member.slug}")
        target = f"/meetings/{row.id}"
        return RedirectResponse(target, status_code=303)

    def attendance(request: Request, session: Session, member: Member, _a: Audience) -> Response:
        q = request.query_params
        year = _int(q.get("year"), site.today().year)
        board = q.get("board") or None
        figures = attendance_service.attendance_report(session, site.zone, year=year, board=board)
        partners = attendance_service.partners_expected(session)
        return site.render(
            request,
            "attendance",
            member,
            figures=figures,
            year=year,
            board=board or "",
            boards=queries.board_views(session).values(),
            partners=partners,
            chart=_attendance_chart(figures, partners),
        )

    # -- calendars ------------------------------------------------------------------------
    def calendars(request: Request, session: Session, member: Member, _a: Audience) -> Response:
        feeds = calendar_feeds.feeds_of(session, member)
        made = request.session.pop("new_feed", None)
        return site.render(
            request,
            "calendars",
            member,
            feeds=feeds,
            new_feed=made,
            boards=queries.board_views(session).values(),
        )

    def calendar_create(
        request: Request, session: Session, member: Member, values: dict[str, str]
    ) -> Response:
        board = session.scalar(select(Board).where(Board.slug == values.get("board", "")))
        _feed, token = calendar_feeds.create_feed(
            session,
            actor=member.slug,
            board=board,
            member=None if board else member,
            now=site.now(),
        )
        request.session["new_feed"] = site.links.url(f"/calendars/{token}.ics")
        return RedirectResponse("/calendars", status_code=303)

    def calendar_revoke(
        request: Request, session: Session, member: Member, values: dict[str, str]
    ) -> Response:
        feed = session.scalar(
            select(CalendarFeed).where(
                CalendarFeed.id == _int(values.get("feed"), 0),
                CalendarFeed.created_by == member.slug,
            )
        )
        if feed is not None:
            calendar_feeds.revoke_feed(session, feed, actor=member.slug, now=site.now())
        return RedirectResponse("/calendars", status_code=303)

    def calendar_file(request: Request) -> Response:
        token = request.path_params["token"]
        with unit_of_work(app.sessions) as session:
            feed = calendar_feeds.live_feed(session, token)
            if feed is None:
                return site.not_found(request)
            language = feed.member.language if feed.member else "en"
            t = Translator(language if language in LANGUAGES else "en", site.zone)
            name = feed.board.name if feed.board else (feed.member.name if feed.member else "")
            body = calendar_feeds.calendar_of(
                calendar_feeds.feed_meetings(session, feed),
                name=name,
                host=urlsplit(site.links.base_url).hostname or "scrutiny-bot",
                zone=site.zone,
                t=t,
                now=site.now(),
            )
        return Response(body, media_type="text/calendar; charset=utf-8")

    # -- export ---------------------------------------------------------------------------
    def export(request: Request, session: Session, member: Member, audience: Audience) -> Response:
        fmt = request.path_params["fmt"]
        sheets = register_export.register_rows(session, audience, today=site.today())
        stamp = site.today().isoformat()
        if fmt == "xlsx":
            return Response(
                register_export.as_xlsx(sheets),
                media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                headers={"Content-Disposition": f'attachment; filename="register-{stamp}.xlsx"'},
            )
        sheet = request.query_params.get("sheet", "decisions")
        if sheet not in sheets:
            return site.render(request, "not_found", member, status=404)
        return Response(
            register_export.as_csv(sheets[sheet]),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{sheet}-{stamp}.csv"'},
        )

    def stylesheet(_request: Request) -> Response:
        return Response(
            (WEB_DIR / "register.css").read_text(encoding="utf-8"),
            media_type="text/css",
            headers={"Cache-Control": "max-age=3600"},
        )

    def home(_request: Request) -> Response:
        return RedirectResponse("/decisions", status_code=303)

    # -- Microsoft Teams tabs -------------------------------------------------------------
    def teams_home(
        request: Request, session: Session, member: Member, audience: Audience
    ) -> Response:
        now = site.now()
        facts = overview(session, audience, member, today=site.today(), now=now)
        return site.render(request, "teams_home", member, teams_js=TEAMS_JS, **facts)

    def teams_register(
        request: Request, _session: Session, _member: Member, _a: Audience
    ) -> Response:
        view = request.query_params.get("view", "")
        board = request.query_params.get("board", "")
        target = f"/{view}" if view in REGISTER_TAB_VIEWS else "/decisions"
        if board and target in ("/decisions", "/meetings", "/attendance"):
            target += f"?board={quote(board)}"
        return RedirectResponse(target, status_code=303)

    def teams_register_config(
        request: Request, session: Session, member: Member, _a: Audience
    ) -> Response:
        t = Translator(site.language(request, member), site.zone)
        return site.render(
            request,
            "teams_register_config",
            member,
            teams_js=TEAMS_JS,
            views=[(view, t._(label)) for view, label in REGISTER_TAB_VIEWS.items()],
            boards=queries.board_views(session).values(),
        )

    def teams_signed_in(request: Request) -> Response:
        return site.render(request, "teams_signed_in", None, teams_js=TEAMS_JS)

    def teams_script(_request: Request) -> Response:
        return Response(
            (WEB_DIR / "teams-tab.js").read_text(encoding="utf-8"),
            media_type="text/javascript",
            headers={"Cache-Control": "max-age=3600", **SECURITY_HEADERS},
        )

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        """Answer a form without this session's CSRF token with 403, changing nothing."""

        async def endpoint(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except CsrfRefused:
                return PlainTextResponse(
                    "This form has expired or did not come from this site; "
                    "go back, reload the page and send it again.",
                    status_code=403,
                )
            return response

        return endpoint

    routes = [
        Route("/", home),
        Route("/register.css", stylesheet),
        Route("/signin", signin),
        Route("/signin/dev", guarded(signin_dev), methods=["POST"]),
        Route("/signin/{provider}", signin_start),
        Route("/signin/{provider}/callback", signin_callback),
        Route("/signout", guarded(signout), methods=["POST"]),
        Route("/language", guarded(choose_language), methods=["POST"]),
        Route("/decisions", member_page(decisions)),
        Route("/decisions/new", member_page(new_decision)),
        Route(
            "/decisions/new",
            guarded(member_form(record_decision_post, secretariat=True)),
            methods=["POST"],
        ),
        Route("/decisions/{ref}", member_page(decision)),
        Route("/actions", member_page(actions)),
        Route("/actions/{ref}", member_page(action_page)),
        Route(
            "/actions/{ref}",
            guarded(member_form(update_action_post, secretariat=True)),
            methods=["POST"],
        ),
        Route("/meetings", member_page(meetings)),
        Route("/meetings/{meeting_id}", member_page(meeting_page)),
        Route(
            "/meetings/{meeting_id}/attendance",
            guarded(member_form(attendance_post, secretariat=True)),
            methods=["POST"],
        ),
        Route("/attendance", member_page(attendance)),
        Route("/calendars", member_page(calendars)),
        Route("/calendars/new", guarded(member_form(calendar_create)), methods=["POST"]),
        Route("/calendars/revoke", guarded(member_form(calendar_revoke)), methods=["POST"]),
        Route("/calendars/{token}.ics", calendar_file),
        Route("/export/register.{fmt:str}", member_page(export)),
        Route("/teams/home", teams_page(teams_home)),
        Route("/teams/register", teams_page(teams_register)),
        Route("/teams/register/config", teams_page(teams_register_config)),
        Route("/teams/signed-in", teams_signed_in),
        Route("/teams/tab.js", teams_script),
    ]
    middleware = [
        Middleware(
            SessionMiddleware,
            secret_key=session_secret(app, folder),
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_HOURS * 3600,
            # Inside a Teams tab the register is a third-party frame: its cookie goes with
            # requests there only as SameSite=None (which needs https); every form still
            # carries the session's CSRF token.
            same_site="none" if https else "lax",
            https_only=https,
        )
    ]
    return Starlette(routes=routes, middleware=middleware)


def _attendance_chart(
    figures: list[attendance_service.AttendanceFigure], partners: list[Partner]
) -> list[dict[str, Any]]:
    """Bars for the SVG chart: each partner's share of recorded meetings attended."""
    bars = []
    for index, partner in enumerate(partners):
        mine = [f for f in figures if f.partner == partner.slug]
        present = sum(f.present for f in mine)
        recorded = sum(f.recorded for f in mine)
        percent = round(100 * present / recorded) if recorded else 0
        bars.append(
            {
                "slug": partner.slug,
                "name": partner.name,
                "name_cy": partner.name_cy,
                "present": present,
                "recorded": recorded,
                "percent": percent,
                "y": 10 + index * 40,
                "width": percent * 4,
            }
        )
    return bars
