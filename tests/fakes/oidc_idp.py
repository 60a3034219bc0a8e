"""A fake OpenID Connect identity provider on 127.0.0.1, in the shape of Microsoft Entra ID
(metadata under /<tenant>/v2.0/) or Sign in with Slack (metadata at the root, user id claim).

The authorization endpoint signs in `user` at once (no login form) and redirects back with a
code; the token endpoint checks the client secret, the redirect URI and the PKCE verifier, and
answers an RS256 ID token signed with a key published at the JWKS endpoint. A test can ask it
to sign with a key it does not publish, or for another audience, to see the token refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.graph_api import serve_locally

TENANT = "11111111-2222-3333-4444-555555555555"


@dataclass
class FakeIdentityProvider:
    """State of one fake provider: who signs in, what was asked, how tokens are signed."""

    style: str
    """"entra" or "slack"."""
    client_id: str
    client_secret: str
    now: datetime
    user: dict[str, Any] = field(default_factory=dict)
    """Claims of the person the next sign-in is for (e.g. {"oid": ...} or {"sub": "U..."})."""
    sign_with_unpublished_key: bool = False
    audience_override: str | None = None
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "fake-key-1"

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def prefix(self) -> str:
        return f"/{TENANT}/v2.0" if self.style == "entra" else ""

    @property
    def issuer(self) -> str:
        return f"{self.base}{self.prefix}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self) -> FakeIdentityProvider:
        self.server = serve_locally(self._handle)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def _jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        public.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [public]}

    def _id_token(self, nonce: str) -> str:
        claims = {
            "iss": self.issuer,
            "aud": self.audience_override or self.client_id,
            "iat": int(self.now.timestamp()),
            "exp": int(self.now.timestamp()) + 3600,
            "nonce": nonce,
            "sub": self.user.get("sub", "subject"),
            **self.user,
        }
        key = self.other_key if self.sign_with_unpublished_key else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})

    def _send(self, request: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        self.calls.append(f"{method} {parts.path}")
        path = parts.path.removeprefix(self.prefix)
        if path == "/.well-known/openid-configuration":
            self._send(
                request,
                200,
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/keys",
                    "id_token_signing_alg_values_supported": ["RS256"],
                },
            )
        elif path == "/keys":
            self._send(request, 200, self._jwks())
        elif path == "/authorize":
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            code = secrets.token_urlsafe(16)
            self.codes[code] = query
            target = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
            request.send_response(302)
            request.send_header("Location", target)
            request.send_header("Content-Length", "0")
            request.end_headers()
        elif path == "/token" and method == "POST":
            length = int(request.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(request.rfile.read(length).decode()).items()}
            asked = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .decode()
                .rstrip("=")
            )
            if (
                asked is None
                or form.get("client_secret") != self.client_secret
                or form.get("redirect_uri") != asked["redirect_uri"]
                or asked.get("code_challenge_method") != "S256"
                or challenge != asked.get("code_challenge")
            ):
                self._send(request, 400, {"error": "invalid_grant"})
                return
            self._send(
                request,
                200,
                {
                    "access_token": "x",
                    "token_type": "Bearer",
                    "id_token": self._id_token(asked["nonce"]),
                },
            )
        else:
            self._send(request, 404, {"error": "not_found"})
