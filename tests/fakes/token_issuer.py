"""A fake Bot Framework token issuer on 127.0.0.1: what Teams' side of a bot's sign-in does.

Inbound: the OpenID metadata (`.../v1/.well-known/openidconfiguration`) and, at its sibling
`/keys`, the JSON Web Key Set the Teams SDK checks every activity's token against; `token()`
signs an RS256 token with the claims the Bot Connector puts in one (issuer, audience, expiry,
serviceurl), each of which a test may change, or signs it with a key the set does not hold.

Outbound: the bot's client-credentials sign-in is the fake Entra ID of `tests.fakes.aad` (MSAL
accepts nothing but https there), started alongside; `authority` is its address.

Plain HTTP for the keys (the SDK reads them with urllib, which trusts no test certificate);
every request is recorded, so a test can show nothing went elsewhere.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.aad import FakeEntra
from tests.fakes.graph_api import LocalServer, send_json

APP_ID = "0b6fe6d1-fece-44f7-9a48-56465e2d5ab8"
"""The bot's app id (its Entra app registration's client id) in tests: the one of the bot the
real activities in tests/data/teams/ were sent to, so they replay unchanged."""
TENANT_ID = "3f2e1d0c-9b8a-4765-b4c3-d2e1f0a9b8c7"
CLIENT_SECRET = "fake-teams-client-secret"
METADATA_PATH = "/v1/.well-known/openidconfiguration"
KEYS_PATH = "/v1/.well-known/keys"


def _b64_int(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class FakeTokenIssuer(LocalServer):
    """Run with `with FakeTokenIssuer(folder) as issuer`; `issuer.settings()` are the TEAMS_*
    settings of a bot that trusts it and signs in at it."""

    folder: Path
    app_id: str = APP_ID
    tenant: str = TENANT_ID
    requests: list[str] = field(default_factory=list)
    """Paths of the metadata and key requests, in order."""
    key_id: str = "fake-bot-framework-key"
    _key: rsa.RSAPrivateKey = field(default_factory=_new_key)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    entra: FakeEntra = field(init=False)

    def __enter__(self) -> Self:
        super().__enter__()
        self.entra = FakeEntra(
            self.folder, self.tenant, self.app_id, access_token=self.outbound_token
        ).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.entra.__exit__()
        super().__exit__(*exc)

    # -- addresses ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """http://127.0.0.1:port, also the issuer tokens name."""
        return self.origin

    @property
    def issuer(self) -> str:
        """The `iss` of the tokens it signs (TEAMS_TOKEN_ISSUER)."""
        return self.url

    @property
    def metadata_url(self) -> str:
        """TEAMS_OPENID_METADATA_URL."""
        return self.url + METADATA_PATH

    @property
    def authority(self) -> str:
        """TEAMS_AUTHORITY_HOST: the fake Entra ID the bot signs in at for outbound calls."""
        return self.entra.authority

    def settings(self) -> dict[str, Any]:
        """The TEAMS_* settings (as keyword arguments) of a bot trusting this issuer."""
        return {
            "teams_app_id": self.app_id,
            "teams_tenant_id": self.tenant,
            "teams_client_secret": CLIENT_SECRET,
            "teams_openid_metadata_url": self.metadata_url,
            "teams_token_issuer": self.issuer,
            "teams_authority_host": self.authority,
        }

    # -- tokens -----------------------------------------------------------------------------
    def token(
        self,
        service_url: str | None,
        *,
        audience: str | None = None,
        issuer: str | None = None,
        expires_in: int = 3600,
        key: rsa.RSAPrivateKey | None = None,
        **claims: Any,
    ) -> str:
        """An RS256 token as the Bot Connector sends with an activity (None: no serviceurl);
        `key` signs with another key under the same key id (a forged token)."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": issuer or self.issuer,
            "aud": audience or self.app_id,
            "nbf": now - 60,
            "iat": now - 60,
            "exp": now + expires_in,
            **claims,
        }
        if service_url is not None:
            body["serviceurl"] = service_url
        return jwt.encode(body, key or self._key, algorithm="RS256", headers={"kid": self.key_id})

    @property
    def outbound_token(self) -> str:
        """The token the bot's sign-in gets (the SDK reads it as a JWT): for the connector."""
        return jwt.encode(
            {
                "aud": "https://api.botframework.com",
                "appid": self.app_id,
                "tid": self.tenant,
                "exp": 4102444800,
            },
            self._key,
            algorithm="RS256",
            headers={"kid": self.key_id},
        )

    @staticmethod
    def stranger_key() -> rsa.RSAPrivateKey:
        """A key this issuer never published."""
        return _new_key()

    # -- serving ------------------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        path = urlsplit(request.path).path
        with self._lock:
            self.requests.append(path)
        status, answer = 404, {"error": "not_found", "path": path}
        if method == "GET" and path == METADATA_PATH:
            status, answer = (
                200,
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.url}/v1/authorize",
                    "jwks_uri": self.url + KEYS_PATH,
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                },
            )
        elif method == "GET" and path == KEYS_PATH:
            numbers = self._key.public_key().public_numbers()
            status, answer = (
                200,
                {
                    "keys": [
                        {
                            "kty": "RSA",
                            "use": "sig",
                            "kid": self.key_id,
                            "n": _b64_int(numbers.n),
                            "e": _b64_int(numbers.e),
                            "endorsements": ["msteams"],
                        }
                    ]
                },
            )
        send_json(request, status, answer)
