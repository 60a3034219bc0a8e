"""The Teams bot's side of Microsoft's sign-in, from settings, for the Teams SDK's `App`.

Inbound, the SDK checks every activity's bearer token itself (`InboundActivityTokenValidator`):
RS256 signature against the keys at the sibling `/keys` of the OpenID metadata URL, issuer,
audience (the app id), expiry (with its five minutes' leeway) and the `serviceurl` claim
against the activity's `serviceUrl`. It reads every endpoint from a `CloudEnvironment`, so
`cloud()` builds one from our settings (public cloud by default) and nothing else is needed.

Outbound, the SDK signs in with MSAL at the cloud's login host, but MSAL then asks
login.microsoftonline.com to vouch for any host it does not know ("instance discovery"), which
a sovereign proxy or a test's fake must not leak to (the SDK's own managed identity sign-in
does so too); so the bot hands the SDK its own token source (`OutboundTokens`, MSAL with
discovery only for Microsoft's hosts), which the outbox's sender uses as well. With a managed
identity it does what the SDK would: the identity's own token when the identity is the bot's
app (TEAMS_MANAGED_IDENTITY_CLIENT_ID = TEAMS_APP_ID), else the app's token got with the
identity's token as a federated credential (`system` for the host's system-assigned identity).
MSAL finds the identity's endpoint from the host (IDENTITY_ENDPOINT and IDENTITY_HEADER on App
Service and Container Apps, else the instance metadata service).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msal  # type: ignore[import-untyped]
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from microsoft_teams.api.auth.cloud_environment import PUBLIC, CloudEnvironment, with_overrides

from bot.entra import microsoft_cloud
from bot.settings import Settings


class SignInRefused(Exception):
    """Entra ID refused the bot a token; the message says why (never the secret)."""


def cloud(settings: Settings) -> CloudEnvironment:
    """Microsoft's endpoints as the settings give them (each defaults to the public cloud)."""
    return with_overrides(
        PUBLIC,
        login_endpoint=settings.teams_authority_host,
        openid_metadata_url=settings.teams_openid_metadata_url,
        token_issuer=settings.teams_token_issuer,
        bot_scope=settings.teams_bot_scope,
    )


def _certificate_credential(path: str) -> dict[str, str]:
    """MSAL's certificate credential from one PEM file holding the certificate and its key."""
    pem = open(path, "rb").read()  # noqa: SIM115 - read once at start
    certificate = x509.load_pem_x509_certificate(pem)
    key = serialization.load_pem_private_key(pem, password=None)
    return {
        "private_key": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        # Entra names a certificate by its SHA-1 thumbprint.
        "thumbprint": certificate.fingerprint(hashes.SHA1()).hex(),
        "public_certificate": certificate.public_bytes(serialization.Encoding.PEM).decode(),
    }


def _identity_client(client_id: str) -> Any:
    """MSAL's client of a managed identity: `system`, else a user-assigned identity's id."""
    identity = (
        msal.SystemAssignedManagedIdentity()
        if client_id == "system"
        else msal.UserAssignedManagedIdentity(client_id=client_id)
    )
    return msal.ManagedIdentityClient(identity, http_client=requests.Session())


class OutboundTokens:
    """The bot's app-only tokens for the Bot Connector, from its secret, its certificate or a
    managed identity (see the module).

    MSAL keeps each token until shortly before it expires, so a post costs a sign-in only
    about once an hour."""

    def __init__(self, settings: Settings) -> None:
        if not settings.teams_app_id:
            raise ValueError("TEAMS_APP_ID must be set")
        identity = settings.teams_managed_identity_client_id
        self._identity: Any = None
        self._exchange_audience = settings.teams_token_exchange_audience
        credential: str | dict[str, Any]
        if settings.teams_client_secret:
            credential = settings.teams_client_secret
        elif settings.teams_certificate_path is not None:
            credential = _certificate_credential(str(settings.teams_certificate_path))
        elif identity:
            self._identity = _identity_client(identity)
            if identity == settings.teams_app_id:
                self._client = None
                return
            credential = {"client_assertion": self._federated_assertion}
        else:
            raise ValueError(
                "set TEAMS_CLIENT_SECRET, TEAMS_CERTIFICATE_PATH or "
                "TEAMS_MANAGED_IDENTITY_CLIENT_ID"
            )
        if not settings.teams_tenant_id:
            # Only the identity that is the app itself signs in without the app's tenant.
            raise ValueError("TEAMS_TENANT_ID must be set to sign in as the app")
        host = settings.teams_authority_host
        self._client = msal.ConfidentialClientApplication(
            settings.teams_app_id,
            client_credential=credential,
            authority=f"{host}/{settings.teams_tenant_id}",
            instance_discovery=microsoft_cloud(host),
        )

    def _identity_token(self, resource: str) -> dict[str, Any]:
        result: dict[str, Any] = self._identity.acquire_token_for_client(resource=resource)
        return result

    def _federated_assertion(self) -> str:
        """The managed identity's token, which Entra takes in place of the app's secret."""
        result = self._identity_token(self._exchange_audience)
        if "access_token" not in result:
            raise SignInRefused(
                "the managed identity got no token for the federated credential: "
                f"{result.get('error', 'no token')} {result.get('error_description', '')}"
            )
        return str(result["access_token"])

    def token(self, scope: str | list[str]) -> str:
        """An access token for `scope` (blocking: MSAL's cache, else a sign-in)."""
        scopes = [scope] if isinstance(scope, str) else list(scope)
        result: dict[str, Any]
        if self._client is None:
            # The identity is the app: its own token, for the resource the scope names.
            result = self._identity_token(scopes[0].removesuffix("/.default"))
        else:
            result = self._client.acquire_token_for_client(scopes)
        if "access_token" not in result:
            # Entra's description runs to trace and correlation ids after its first line.
            why = (str(result.get("error_description") or "").splitlines() or [""])[0]
            hint = ""
            if self._identity is not None and self._client is not None:
                # A federated credential trusts one audience, and each cloud names its own.
                hint = (
                    f" (the managed identity's token was for {self._exchange_audience}: "
                    "check TEAMS_TOKEN_EXCHANGE_AUDIENCE against the app's federated credential)"
                )
            raise SignInRefused(
                f"Entra ID refused the Teams bot a token: {result.get('error', 'no token')} "
                f"{why}{hint}"
            )
        return str(result["access_token"])

    async def __call__(self, scope: str | list[str], _tenant_id: str | None = None) -> str:
        """The SDK's token provider: the bot is single-tenant, so the tenant asked is ours."""
        return await asyncio.to_thread(self.token, scope)


def app_options(settings: Settings) -> dict[str, Any]:
    """The Teams SDK `App` options for these settings: app id, tenant, cloud, credential, and
    unauthenticated requests refused whatever the environment says."""
    if not settings.teams_bot_enabled:
        raise ValueError(
            "TEAMS_APP_ID and one of TEAMS_CLIENT_SECRET, TEAMS_CERTIFICATE_PATH or "
            "TEAMS_MANAGED_IDENTITY_CLIENT_ID must be set for the Teams bot"
        )
    options: dict[str, Any] = {
        "client_id": settings.teams_app_id,
        "tenant_id": settings.teams_tenant_id,
        "cloud": cloud(settings),
        # Explicit, so DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS in the environment is ignored.
        "dangerously_allow_unauthenticated_requests": False,
        "state": False,
    }
    options["token"] = OutboundTokens(settings)
    return options
