"""Microsoft 365 through `msgraph-sdk`: clients, sign-in and the sync's reader. It only reads;
the bot posts to Teams as the app through the Bot Connector (bot.platforms.teams).

The one module that imports msgraph, kiota and azure-identity (tests/test_architecture.py).

Two identities, because Graph allows no other way:
- the app (client credentials: GRAPH_TENANT_ID, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET) reads
  SharePoint lists (application permission Sites.Read.All, or Sites.Selected);
- an account signed in once with `scrutiny-bot calendar login` (device code; token cache
  persisted, refreshed by azure-identity) reads group calendars: Graph's group calendar API
  takes only the delegated Group.Read.All, never an application permission. The sign-in asks
  for nothing else (MSAL adds offline_access itself, for the refresh token).

The SDK is asynchronous; the sync is not. The reader owns an event loop in a daemon thread
(`AsyncRunner`) that its clients live on; the SDK's RetryHandler honours 429/503 Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.generated.groups.item.calendar.calendar_view.calendar_view_request_builder import (
    CalendarViewRequestBuilder,
)
from msgraph.generated.sites.item.lists.item.items.items_request_builder import (
    ItemsRequestBuilder,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_options
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory  # type: ignore[import-untyped]
from sqlalchemy.orm import Session, sessionmaker

from bot.collaboration import GraphConfig
from bot.entra import microsoft_cloud
from bot.outbox import PermanentError, RateLimited, SendError, TransientError
from bot.services.graph_sync import (
    CalendarEvent,
    ListItem,
    SyncFailed,
    SyncReport,
    sync_graph,
)
from bot.settings import Settings

log = logging.getLogger(__name__)

GRAPH_RESOURCE = "https://graph.microsoft.com"
APP_SCOPES = [f"{GRAPH_RESOURCE}/.default"]
CALENDAR_SCOPES = [f"{GRAPH_RESOURCE}/Group.Read.All"]
"""The one delegated permission asked for at `calendar login`: reading group calendars."""
AUTH_RECORD = "authentication-record.json"
SYNC_ACTOR = "graph-sync"
READ_RETRIES = 3
PAGE_LIMIT = 500
"""Pages followed per collection at most: a nextLink loop must not run forever."""

_T = TypeVar("_T")


class AsyncRunner:
    """An event loop in a daemon thread, so synchronous code can await the SDK."""

    def __init__(self, name: str = "graph") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        """Run `work` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


def graph_client(
    credential: TokenCredential,
    scopes: list[str],
    base_url: str,
    *,
    retry: bool,
    timeout: float = 30.0,
) -> GraphServiceClient:
    """The real SDK client against `base_url` (GRAPH_API_URL); `retry` switches the SDK's
    RetryHandler (429/503/504, honouring Retry-After) on or off."""
    options = dict(graph_options)
    options[RetryHandlerOption.get_key()] = RetryHandlerOption(
        delay=1.0, max_retries=READ_RETRIES if retry else 0, should_retry=retry
    )
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0)), options=options
    )
    auth = AzureIdentityAuthenticationProvider(credential, scopes=scopes)
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = base_url.rstrip("/")
    return GraphServiceClient(request_adapter=adapter)


# -- credentials ------------------------------------------------------------------------------
def app_credential(settings: Settings) -> TokenCredential:
    """Client credentials of the app registration (reading SharePoint lists)."""
    from azure.identity import ClientSecretCredential

    if not (settings.graph_tenant_id and settings.graph_client_id and settings.graph_client_secret):
        raise ValueError("GRAPH_TENANT_ID, GRAPH_CLIENT_ID and GRAPH_CLIENT_SECRET must all be set")
    return ClientSecretCredential(
        settings.graph_tenant_id,
        settings.graph_client_id,
        settings.graph_client_secret,
        authority=settings.graph_authority_host,
        disable_instance_discovery=not microsoft_cloud(settings.graph_authority_host),
    )


def _device_code(settings: Settings, **options: Any) -> Any:
    from azure.identity import DeviceCodeCredential, TokenCachePersistenceOptions

    if not (settings.graph_tenant_id and settings.graph_client_id):
        raise ValueError("GRAPH_TENANT_ID and GRAPH_CLIENT_ID must be set")
    # Servers have no keyring: the cache falls back to a file readable by this user only.
    cache = TokenCachePersistenceOptions(
        name=settings.graph_token_cache_name, allow_unencrypted_storage=True
    )
    record = options.get("authentication_record")
    if record is None:
        # A signed-in account's record names its own authority; azure-identity refuses both.
        options["authority"] = settings.graph_authority_host
    authority = record.authority if record is not None else settings.graph_authority_host
    options["disable_instance_discovery"] = not microsoft_cloud(authority)
    return DeviceCodeCredential(
        client_id=settings.graph_client_id,
        tenant_id=settings.graph_tenant_id,
        cache_persistence_options=cache,
        **options,
    )


def login(settings: Settings, prompt: Callable[[str, str, datetime], None]) -> Path:
    """Sign in, with a device code, the account that reads group calendars; save its
    AuthenticationRecord (not a secret: it names the account whose tokens the persistent cache
    holds). Returns its path."""
    credential = _device_code(settings, prompt_callback=prompt)
    # The SDK's auth provider asks for CAE tokens, which azure-identity caches apart from the
    # others ("<name>.cae"): a sign-in without CAE would leave the bot's cache empty.
    record = credential.authenticate(scopes=CALENDAR_SCOPES, enable_cae=True)
    folder = settings.graph_token_cache
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / AUTH_RECORD
    path.write_text(record.serialize(), encoding="utf-8")
    return path


def calendar_credential(settings: Settings) -> TokenCredential | None:
    """The account signed in to read group calendars, or None before `scrutiny-bot calendar
    login`."""
    from azure.identity import AuthenticationRecord

    path = settings.graph_token_cache / AUTH_RECORD
    if not path.is_file():
        return None
    record = AuthenticationRecord.deserialize(path.read_text(encoding="utf-8"))
    # Never prompt from a server: an expired sign-in fails and says to log in again.
    credential: TokenCredential = _device_code(
        settings, authentication_record=record, disable_automatic_authentication=True
    )
    return credential


# -- failures ---------------------------------------------------------------------------------
def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def classify(error: BaseException) -> SendError:
    """A Graph failure as a RateLimited, TransientError or PermanentError (which say why)."""
    if isinstance(error, SendError):
        return error
    status: int | None = None
    headers: Mapping[str, str] | None = None
    if isinstance(error, APIError):
        status, headers = error.response_status_code, error.response_headers
    elif isinstance(error, httpx.HTTPStatusError):
        status, headers = error.response.status_code, error.response.headers
    if status is not None:
        wait = _retry_after(headers)
        if status == 429 or (status == 503 and wait is not None):
            return RateLimited(wait if wait is not None else 5.0, f"HTTP {status}")
        if status >= 500:
            return TransientError(f"HTTP {status}", maybe_posted=True)
        return PermanentError(f"HTTP {status}: {str(error)[:200]}")
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
        return TransientError(f"{type(error).__name__}: {error}", maybe_posted=False)
    if isinstance(error, httpx.TransportError | TimeoutError):
        return TransientError(f"{type(error).__name__}: {error}", maybe_posted=True)
    if isinstance(error, ClientAuthenticationError):
        return PermanentError(
            f"the account that reads group calendars cannot sign in ({error}); "
            "run: scrutiny-bot calendar login"
        )
    return TransientError(f"{type(error).__name__}: {error}", maybe_posted=True)


# -- reading for the sync ---------------------------------------------------------------------
def _moment(value: Any) -> datetime | None:
    """A Graph dateTimeTimeZone as an aware datetime."""
    if value is None or not value.date_time:
        return None
    moment = datetime.fromisoformat(value.date_time.replace("Z", ""))
    try:
        zone = ZoneInfo(value.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")  # we ask for UTC (Prefer header); anything else is unexpected
    return moment.replace(tzinfo=zone).astimezone(UTC)


async def _every_page(
    first: Awaitable[Any], follow: Callable[[str], Any], convert: Callable[[Any], _T | None]
) -> list[_T]:
    """Every item of a collection, converted, following @odata.nextLink (at most PAGE_LIMIT)."""
    found: list[_T] = []
    page = await first
    for _ in range(PAGE_LIMIT):
        if page is None:
            break
        found.extend(item for item in map(convert, page.value or []) if item is not None)
        if not page.odata_next_link:
            break
        page = await follow(page.odata_next_link).get()
    return found


class GraphReader:
    """Reads group calendars (as the signed-in account) and SharePoint lists (as the app).

    `app_client` signs in as the app (application permissions: the SharePoint lists);
    `calendar_client` holds the delegated calendar sign-in (`scrutiny-bot calendar login`),
    the only way Graph reads a group's calendar. Either is None when it is not configured.
    """

    def __init__(
        self,
        app_client: GraphServiceClient | None,
        calendar_client: GraphServiceClient | None,
        runner: AsyncRunner | None = None,
        *,
        timeout: float = 300.0,
    ) -> None:
        self.app_client = app_client
        self.calendar_client = calendar_client
        self.runner = runner or AsyncRunner("graph-reader")
        self.timeout = timeout

    def _run(self, what: str, work: Coroutine[Any, Any, _T]) -> _T:
        try:
            return self.runner.run(work, self.timeout)
        except Exception as error:
            raise SyncFailed(f"{what}: {classify(error)}") from error

    def calendar_events(self, group_id: str, start: datetime, end: datetime) -> list[CalendarEvent]:
        """Every event overlapping [start, end) in the group's calendar, following nextLink."""
        if self.calendar_client is None:
            raise SyncFailed(
                "group calendars are read as a signed-in account (Graph has no application "
                "permission for them): run scrutiny-bot calendar login"
            )
        view = self.calendar_client.groups.by_group_id(group_id).calendar.calendar_view
        query = CalendarViewRequestBuilder.CalendarViewRequestBuilderGetQueryParameters(
            start_date_time=start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            end_date_time=end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            top=100,
        )
        config = RequestConfiguration(query_parameters=query)
        config.headers.add("Prefer", 'outlook.timezone="UTC"')

        def event_of(event: Any) -> CalendarEvent | None:
            starts = _moment(event.start)
            if starts is None or not event.id:
                return None
            return CalendarEvent(
                id=event.id,
                uid=event.i_cal_u_id or event.id,
                subject=event.subject or "",
                starts_at=starts,
                ends_at=_moment(event.end),
                location=(event.location.display_name or "") if event.location else "",
                link=(event.online_meeting.join_url or "") if event.online_meeting else "",
                cancelled=bool(event.is_cancelled),
            )

        read = _every_page(view.get(request_configuration=config), view.with_url, event_of)
        return self._run(f"calendar of group {group_id}", read)

    def list_items(self, site: str, list_id: str) -> list[ListItem]:
        """Every item of the list with its fields, following nextLink."""
        if self.app_client is None:
            raise SyncFailed("SharePoint lists are read as the app: set GRAPH_CLIENT_SECRET")
        items = self.app_client.sites.by_site_id(site).lists.by_list_id(list_id).items
        query = ItemsRequestBuilder.ItemsRequestBuilderGetQueryParameters(
            expand=["fields"], top=200
        )
        config = RequestConfiguration(query_parameters=query)

        def item_of(item: Any) -> ListItem:
            return ListItem(str(item.id), dict(item.fields.additional_data if item.fields else {}))

        read = _every_page(items.get(request_configuration=config), items.with_url, item_of)
        return self._run(f"SharePoint list {list_id}", read)

    def close(self) -> None:
        """Stop the reader's loop."""
        self.runner.close()


def reader_from_settings(settings: Settings) -> GraphReader:
    """A reader with whichever identities are configured (the sync says what is missing)."""
    app = (
        graph_client(app_credential(settings), APP_SCOPES, settings.graph_api_url, retry=True)
        if settings.graph_client_secret
        else None
    )
    delegated = calendar_credential(settings)
    calendar = (
        graph_client(delegated, CALENDAR_SCOPES, settings.graph_api_url, retry=True)
        if delegated
        else None
    )
    return GraphReader(app, calendar)


def sync_from_settings(
    settings: Settings,
    sessions: sessionmaker[Session],
    config: GraphConfig,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> SyncReport:
    """One Microsoft 365 sync with the configured identities (raises SyncFailed)."""
    reader = reader_from_settings(settings)
    try:
        return sync_graph(
            sessions,
            reader,
            config,
            actor=SYNC_ACTOR,
            zone=settings.timezone,
            now=now,
            dry_run=dry_run,
        )
    finally:
        reader.close()
