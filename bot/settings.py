"""Typed settings, read once from the environment (and an optional `.env`) at start."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain import Platform

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'var' / 'scrutiny.db'}"
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "collaboration.example.yaml"


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it and says how to fix it."""


class Settings(BaseSettings):
    """Every setting the bot reads. Environment names are the field names in upper case."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str = DEFAULT_DATABASE_URL
    scrutiny_config: Path = DEFAULT_CONFIG
    scrutiny_timezone: str = "Europe/London"
    scrutiny_language: str = Field(default="en", pattern=r"^(en|cy)$")
    scrutiny_first_digest_days: int = Field(default=30, ge=1, le=3650)
    """How far back (days since decided) a channel's first digest reaches."""
    private_answer_days: int = Field(default=30, ge=1, le=3650)
    """How long a private answer stored for its asker (a Teams channel's answer to a command
    that changes something) can be shown again; older ones are pruned."""
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_reply_processes: int = Field(default=2, ge=0, le=32)
    """Worker processes building Slack replies after the ack (0: threads in the web process).
    Processes keep reply work from holding the GIL the acknowledgements need, and run at a
    lower CPU priority, so a busy machine acknowledges first."""
    answer_cache_size: int = Field(default=1000, ge=0, le=1_000_000)
    """Rendered answers to read-only commands kept per process (0: none); each is kept until
    the register changes, the minute turns, or newer answers push it out."""
    slack_workspace_url: str | None = None
    """The workspace's address (https://srs.slack.com): posts link the earlier post they follow
    up (Slack's message permalinks, built from the stored channel and timestamp)."""

    teams_reply_processes: int = Field(default=2, ge=0, le=32)
    """Worker processes building Teams replies after the ack (0: threads in the web process),
    as SLACK_REPLY_PROCESSES does for Slack."""
    teams_bot_name: str = "Scrutiny"
    """The bot's name in Teams (the app package's short name): replies tell members in a
    channel to type `@<name> ...`."""
    teams_app_id: str | None = None
    """The Teams bot's app id (its Entra app registration's client id): the audience every
    inbound token must name and the client the bot's outbound tokens are issued to."""
    teams_tenant_id: str | None = None
    """The tenant the bot's app registration lives in (single-tenant bot)."""
    teams_client_secret: str | None = None
    """The app registration's client secret (one of the three credentials)."""
    teams_certificate_path: Path | None = None
    """A PEM file holding the app registration's certificate and its private key (instead of a
    secret)."""
    teams_managed_identity_client_id: str | None = None
    """Managed identity instead of a secret or certificate: `system` for the host's
    system-assigned identity, else a user-assigned identity's client id."""
    teams_token_exchange_audience: str = "api://AzureADTokenExchange"
    """The audience of the managed identity's token that the app registration's federated
    credential trusts (a user-assigned identity other than the app). Each cloud has its own:
    the public cloud's is the default; set the value your cloud's Entra documentation gives
    (for example `api://AzureADTokenExchangeUSGov` or `api://AzureADTokenExchangeChina`)."""
    teams_openid_metadata_url: str = (
        "https://login.botframework.com/v1/.well-known/openidconfiguration"
    )
    """The Bot Framework's OpenID metadata; the token keys are at its sibling `/keys`."""
    teams_token_issuer: str = "https://api.botframework.com"
    """The issuer every inbound activity token must name."""
    teams_authority_host: str = "https://login.microsoftonline.com"
    """Where the bot signs in for its outbound tokens (another cloud's, or a test's fake)."""
    teams_bot_scope: str = "https://api.botframework.com/.default"
    """The scope of the bot's outbound tokens (the Bot Connector's)."""
    teams_service_url: str = "https://smba.trafficmanager.net/teams"
    """The Bot Connector a post goes to when no activity has named one for its conversation."""
    graph_tenant_id: str | None = None
    graph_client_id: str | None = None
    graph_client_secret: str | None = None
    graph_api_url: str = "https://graph.microsoft.com/v1.0"
    graph_authority_host: str = "https://login.microsoftonline.com"
    """Microsoft Entra sign-in host (another cloud's, e.g. https://login.microsoftonline.us)."""
    graph_token_cache: Path = PROJECT_ROOT / "var" / "graph"
    """Folder for the AuthenticationRecord of the account that reads group calendars
    (`calendar login`)."""
    graph_token_cache_name: str = Field(default="scrutiny-bot", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    """Name of azure-identity's persistent token cache holding its tokens."""

    # The Teams app package (`scrutiny-bot teams package`), beside the bot's TEAMS_APP_ID.
    teams_app_version: str = Field(default="1.0.0", pattern=r"^\d+\.\d+\.\d+$")
    """The app package's version; raise it for every package you upload again."""
    teams_privacy_url: str | None = None
    """The collaboration's privacy notice, linked from the app's details in Teams."""
    teams_terms_url: str | None = None
    """The terms of use, linked from the app's details in Teams."""

    port: int = Field(default=3000, ge=1, le=65535)

    web_base_url: str = "http://127.0.0.1:3000"
    """Where people open the register; chat replies, digests and cards link under it."""
    web_session_secret: str | None = None
    """Signs the register's session cookies; when unset one is made and kept under `var/`."""
    web_entra_client_id: str | None = None
    web_entra_client_secret: str | None = None
    web_entra_metadata_url: str | None = None
    """Entra ID's OpenID configuration; by default derived from the authority and tenant."""
    web_slack_client_id: str | None = None
    web_slack_client_secret: str | None = None
    web_slack_metadata_url: str = "https://slack.com/.well-known/openid-configuration"

    @field_validator(
        "web_base_url",
        "web_entra_metadata_url",
        "web_slack_metadata_url",
        "teams_privacy_url",
        "teams_terms_url",
        "teams_openid_metadata_url",
        "teams_token_issuer",
        "teams_service_url",
        "slack_workspace_url",
    )
    @classmethod
    def _web_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        local = parts.hostname in ("127.0.0.1", "localhost")
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise ValueError("use an https URL (plain http only on 127.0.0.1 or localhost)")
        return value.strip().rstrip("/")

    @field_validator("scrutiny_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Europe/London"
            ) from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "only SQLite (sqlite:///path) and PostgreSQL (postgresql://...) are supported"
            )
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @field_validator("graph_api_url")
    @classmethod
    def _graph_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError("use an https URL such as https://graph.microsoft.com/v1.0")
        return value.rstrip("/")

    @field_validator("teams_openid_metadata_url")
    @classmethod
    def _keys_beside_metadata(cls, value: str) -> str:
        # The Teams SDK finds the signing keys by replacing this last segment with `keys`.
        if not value.endswith("/openidconfiguration"):
            raise ValueError(
                "must end with /openidconfiguration (the token keys are read from its sibling "
                "/keys), e.g. https://login.botframework.com/v1/.well-known/openidconfiguration"
            )
        return value

    @field_validator("teams_certificate_path")
    @classmethod
    def _readable_certificate(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file {str(value)!r}; give the PEM file's path")
        return value

    @field_validator("graph_authority_host", "teams_authority_host")
    @classmethod
    def _authority_url(cls, value: str) -> str:
        # azure-identity and MSAL accept nothing but https with a host name here.
        parts = urlsplit(value.strip())
        if parts.scheme != "https" or not parts.hostname or parts.path.strip("/"):
            raise ValueError(
                "use an https URL with a host and no path, such as https://login.microsoftonline.com"
            )
        return value.strip().rstrip("/")

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @cached_property
    def timezone(self) -> ZoneInfo:
        """The wall-clock zone schedules and displayed times use."""
        return ZoneInfo(self.scrutiny_timezone)

    @property
    def slack_enabled(self) -> bool:
        """Slack is on when both the bot token and the signing secret are set."""
        return bool(self.slack_bot_token and self.slack_signing_secret)

    @property
    def teams_bot_enabled(self) -> bool:
        """The Teams app's bot is on when its app id and a credential are set."""
        return bool(self.teams_app_id and self.teams_credential)

    @property
    def teams_credential(self) -> str | None:
        """Which credential the Teams bot signs in with: secret, certificate or managed
        identity (the first one set, in that order), or None."""
        if self.teams_client_secret:
            return "secret"
        if self.teams_certificate_path is not None:
            return "certificate"
        if self.teams_managed_identity_client_id:
            return "managed identity"
        return None

    @property
    def entra_signin_metadata_url(self) -> str | None:
        """Entra ID's OpenID configuration when web sign-in with Entra is configured."""
        if not self.web_entra_client_id:
            return None
        if self.web_entra_metadata_url:
            return self.web_entra_metadata_url
        tenant = self.graph_tenant_id or "organizations"
        return f"{self.graph_authority_host}/{tenant}/v2.0/.well-known/openid-configuration"

    @property
    def chat_links_base(self) -> str | None:
        """WEB_BASE_URL when it was set: only then do chat replies, digests and cards link to
        the register (the default is where `run` serves it on this machine, no use to others)."""
        return self.web_base_url if "web_base_url" in self.model_fields_set else None

    @property
    def web_signin_configured(self) -> bool:
        """Some identity provider is configured (the development sign-in is then off)."""
        return bool(self.web_entra_client_id or self.web_slack_client_id)

    @property
    def graph_ready(self) -> bool:
        """Microsoft 365 sync can run: the app registration's tenant and client are set."""
        return bool(self.graph_tenant_id and self.graph_client_id)

    @property
    def posting_platforms(self) -> frozenset[Platform]:
        """Platforms the worker can post to with these settings (the console always)."""
        ready = {Platform.CONSOLE}
        if self.slack_bot_token:
            ready.add(Platform.SLACK)
        # The bot's own token source (OutboundTokens) signs in with any of the three
        # credentials, for replies and outbox posts alike.
        if self.teams_bot_enabled:
            ready.add(Platform.TEAMS)
        return frozenset(ready)


def load_settings(**overrides: object) -> Settings:
    """Read the settings once; raise SettingsError naming each bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper()
            problems.append(f"{name}: {error['msg']}")
        raise SettingsError(
            "Bad setting(s):\n  "
            + "\n  ".join(problems)
            + "\nFix the environment variable(s) above."
        ) from None
