"""OpenID Connect sign-in (authorization code flow with PKCE, state and nonce) for Microsoft
Entra ID and Sign in with Slack. The ID token's signature is checked against the provider's
published keys (JWKS), and its issuer, audience, expiry and nonce."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

SIGNED_WITH = ["RS256", "RS384", "RS512", "ES256", "PS256"]
"""Signature algorithms accepted on ID tokens (never `none`, never a shared secret)."""
TIMEOUT = 10.0


class SignInFailed(Exception):
    """The provider's answer could not be trusted or used; the message says why (for logs)."""


@dataclass(frozen=True)
class Provider:
    """One identity provider as configured: its name, the client and where it publishes."""

    name: str
    """"entra" or "slack": also the path segment of its sign-in URLs."""
    metadata_url: str
    client_id: str
    client_secret: str
    identity_claims: tuple[str, ...]
    """Claims naming the person, first present wins: Entra's `oid`, Slack's user id."""
    tenant: str | None = None


@dataclass(frozen=True)
class Pending:
    """What the sign-in start stored in the session to check the provider's answer against."""

    state: str
    nonce: str
    verifier: str

    def as_dict(self) -> dict[str, str]:
        """For the session cookie."""
        return {"state": self.state, "nonce": self.nonce, "verifier": self.verifier}


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


class OidcClient:
    """Talks to one provider: discovery, the authorization URL, code exchange, token checks."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self._metadata: dict[str, Any] | None = None

    def metadata(self) -> dict[str, Any]:
        """The provider's OpenID configuration (fetched once)."""
        if self._metadata is None:
            self._metadata = self._get_json(self.provider.metadata_url)
        return self._metadata

    @staticmethod
    def _get_json(url: str) -> dict[str, Any]:
        try:
            response = httpx.get(url, timeout=TIMEOUT)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInFailed(f"could not read {url}: {exc}") from exc
        if not isinstance(body, dict):
            raise SignInFailed(f"{url} did not answer a JSON object")
        return body

    def start(self, redirect_uri: str) -> tuple[str, Pending]:
        """The URL to send the browser to, and what to keep until it comes back."""
        pending = Pending(
            secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        )
        query = {
            "response_type": "code",
            "client_id": self.provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid profile email",
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": _challenge(pending.verifier),
            "code_challenge_method": "S256",
        }
        return f"{self.metadata()['authorization_endpoint']}?{urlencode(query)}", pending

    def finish(
        self, code: str, state: str, pending: Pending, redirect_uri: str, now: datetime
    ) -> str:
        """Exchange the code, check the ID token, and return the person's identity claim."""
        if not secrets.compare_digest(state, pending.state):
            raise SignInFailed("state does not match the sign-in that was started")
        try:
            response = httpx.post(
                self.metadata()["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "client_id": self.provider.client_id,
                    "client_secret": self.provider.client_secret,
                    "code_verifier": pending.verifier,
                },
                timeout=TIMEOUT,
            )
            response.raise_for_status()
            token = response.json().get("id_token")
        except (httpx.HTTPError, ValueError) as exc:
            raise SignInFailed(f"token exchange failed: {exc}") from exc
        if not isinstance(token, str):
            raise SignInFailed("the provider returned no ID token")
        claims = self.verify(token, now)
        if not secrets.compare_digest(str(claims.get("nonce", "")), pending.nonce):
            raise SignInFailed("nonce does not match the sign-in that was started")
        for name in self.provider.identity_claims:
            value = claims.get(name)
            if isinstance(value, str) and value:
                return value
        raise SignInFailed("the ID token names nobody")

    def _expected_issuer(self) -> str:
        issuer = str(self.metadata()["issuer"])
        # Entra's multi-tenant metadata writes the tenant as a placeholder.
        return issuer.replace("{tenantid}", self.provider.tenant or "")

    def verify(self, token: str, now: datetime) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience and expiry check out."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise SignInFailed(f"malformed ID token: {exc}") from exc
        keys = jwt.PyJWKSet.from_dict(self._get_json(self.metadata()["jwks_uri"]))
        key = next((k for k in keys.keys if k.key_id == header.get("kid")), None)
        if key is None:
            raise SignInFailed(f"ID token signed with unknown key {header.get('kid')!r}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=SIGNED_WITH,
                audience=self.provider.client_id,
                issuer=self._expected_issuer(),
                options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise SignInFailed(f"ID token refused: {exc}") from exc
        # Expiry against the injected clock, with a minute's leeway for clock skew.
        if float(claims["exp"]) + 60 < now.timestamp():
            raise SignInFailed("ID token expired")
        return claims
