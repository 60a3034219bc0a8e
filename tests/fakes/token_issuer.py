"""A fake Bot Framework token issuer on 127.0.0.1: what Teams' side of a bot's sign-in does.

Inbound: the OpenID metadata (`.../v1/.well-known/openidconfiguration`) and, at its sibling
`/keys`, the JSON Web Key Set the Teams SDK checks every activity's token against; `token()`
signs an RS256 token with the claims the Bot Connector puts in one (issuer, audience, expiry,
serviceurl), each of which a test may change, or signs it with a key the set does not hold.

Outbound: the bot's client-credentials sign-in is the fake Entra ID of `tests.fakes.aad` (MSAL
accepts nothing but https there), started alongside; `authority` is its address. It checks the
credential as Entra does: the client secret, or a client assertion (a JWT signed with the key
of the certificate `certificate_file()` made, naming it by thumbprint, for the token endpoint).
Each token it hands out says which credential got it (`appidacr`: 1 secret, 2 certificate).
A managed identity's token comes from the App Service style endpoint at `MSI_PATH` (what MSAL
calls when IDENTITY_ENDPOINT and IDENTITY_HEADER are set), which wants the header's secret and
knows the host's system-assigned identity, the app itself as an identity, and `USER_IDENTITY`;
Entra takes such a token, for `api://AzureADTokenExchange`, as a federated credential.

Plain HTTP for the keys (the SDK reads them with urllib, which trusts no test certificate);
every request is recorded, so a test can show nothing went elsewhere.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.aad import FakeEntra, self_signed
from tests.fakes.graph_api import LocalServer, send_json

APP_ID = "0b6fe6d1-fece-44f7-9a48-56465e2d5ab8"
"""The bot's app id (its Entra app registration's client id) in tests: the one of the bot the
real activities in tests/data/teams/ were sent to, so they replay unchanged."""
TENANT_ID = "3f2e1d0c-9b8a-4765-b4c3-d2e1f0a9b8c7"
CLIENT_SECRET = "fake-teams-client-secret"
METADATA_PATH = "/v1/.well-known/openidconfiguration"
KEYS_PATH = "/v1/.well-known/keys"
MSI_PATH = "/msi/token"
"""The managed identity endpoint (IDENTITY_ENDPOINT) on the issuer's own address."""
IDENTITY_HEADER = "fake-app-service-identity-header"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
USER_IDENTITY = "7c4d2e1f-0a9b-4c8d-9e7f-6a5b4c3d2e1f"
"""A user-assigned managed identity (not the app) the app trusts as a federated credential."""
TOKEN_EXCHANGE = "api://AzureADTokenExchange"
SECRET, CERTIFICATE = "1", "2"
"""`appidacr` of a token got with a client secret, with a certificate."""


def _b64_int(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _thumbprint(certificate: x509.Certificate, algorithm: hashes.HashAlgorithm) -> str:
    return base64.urlsafe_b64encode(certificate.fingerprint(algorithm)).decode().rstrip("=")


def certificate_file(path: Path, key: rsa.RSAPrivateKey | None = None) -> x509.Certificate:
    """A self-signed certificate and its key in one PEM file at `path`, as an app registration's
    certificate credential is kept (TEAMS_CERTIFICATE_PATH)."""
    key = key or _new_key()
    certificate = self_signed(key, "scrutiny bot", timedelta(days=1))
    path.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return certificate


@dataclass
class FakeTokenIssuer(LocalServer):
    """Run with `with FakeTokenIssuer(folder) as issuer`; `issuer.settings()` are the TEAMS_*
    settings of a bot that trusts it and signs in at it."""

    folder: Path
    app_id: str = APP_ID
    tenant: str = TENANT_ID
    requests: list[str] = field(default_factory=list)
    """Paths of the metadata, key and managed identity requests, in order."""
    certificate: x509.Certificate | None = None
    """The certificate registered for the app: client assertions must be signed with its key."""
    identity_requests: list[dict[str, str]] = field(default_factory=list)
    """The query of each managed identity token request."""
    token_exchange_audience: str = TOKEN_EXCHANGE
    """The audience the app's federated credential trusts (each cloud has its own)."""
    key_id: str = "fake-bot-framework-key"
    _key: rsa.RSAPrivateKey = field(default_factory=_new_key)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    entra: FakeEntra = field(init=False)

    def __enter__(self) -> Self:
        super().__enter__()
        self.entra = FakeEntra(
            self.folder,
            self.tenant,
            self.app_id,
            access_token=self.outbound_token,
            client_credentials=self._client_credentials,
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
            # Replies in threads unless a test asks for processes: they take seconds to start.
            "teams_reply_processes": 0,
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
        """The token the bot's sign-in with its secret gets: for the connector."""
        return self.connector_token(appidacr=SECRET)

    def connector_token(self, **claims: str) -> str:
        """A token for the connector (the SDK reads it as a JWT) with these claims besides."""
        return jwt.encode(
            {
                "aud": "https://api.botframework.com",
                "appid": self.app_id,
                "tid": self.tenant,
                "exp": 4102444800,
                **claims,
            },
            self._key,
            algorithm="RS256",
            headers={"kid": self.key_id},
        )

    def identity_token(self, identity: str, resource: str) -> str:
        """What the managed identity endpoint hands `identity` for `resource` (`xms_mirid`
        names the identity)."""
        return jwt.encode(
            {
                "iss": self.issuer,
                "aud": resource,
                "sub": identity,
                "appid": self.app_id if identity == self.app_id else identity,
                "tid": self.tenant,
                "exp": 4102444800,
                "xms_mirid": f"/fake/identities/{identity}",
            },
            self._key,
            algorithm="RS256",
            headers={"kid": self.key_id},
        )

    def managed_identity_env(self) -> dict[str, str]:
        """IDENTITY_ENDPOINT and IDENTITY_HEADER, as App Service sets them, for this issuer."""
        return {"IDENTITY_ENDPOINT": self.url + MSI_PATH, "IDENTITY_HEADER": IDENTITY_HEADER}

    def _client_credentials(self, form: dict[str, str], endpoint: str) -> tuple[int, Any]:
        """Entra's check of a client-credentials grant: the secret, or the assertion."""
        if "client_secret" in form:
            if form["client_secret"] != CLIENT_SECRET:
                return 401, {"error": "invalid_client", "error_description": "AADSTS7000215"}
            return 200, self._granted(SECRET)
        if form.get("client_assertion_type") != JWT_BEARER or "client_assertion" not in form:
            return 401, {"error": "invalid_client", "error_description": "no credential"}
        assertion = form["client_assertion"]
        if not {"x5t", "x5t#S256"} & set(jwt.get_unverified_header(assertion)):
            return self._federated(assertion)
        problem = self._assertion_problem(assertion, endpoint)
        if problem:
            return 401, {"error": "invalid_client", "error_description": problem}
        return 200, self._granted(CERTIFICATE)

    def _federated(self, assertion: str) -> tuple[int, Any]:
        """A managed identity's token as the app's federated credential."""
        try:
            identity = jwt.decode(
                assertion,
                self._key.public_key(),
                algorithms=["RS256"],
                audience=self.token_exchange_audience,
                issuer=self.issuer,
            )
        except jwt.InvalidTokenError as error:
            return 401, {"error": "invalid_client", "error_description": f"AADSTS70021: {error}"}
        token = self.connector_token(appidacr=CERTIFICATE, xms_ficid=identity["xms_mirid"])
        return 200, {"token_type": "Bearer", "expires_in": 3600, "access_token": token}

    def _assertion_problem(self, assertion: str, endpoint: str) -> str | None:
        """Why Entra would refuse the client assertion, or None."""
        if self.certificate is None:
            return "AADSTS700027: no certificate is registered for the app"
        header = jwt.get_unverified_header(assertion)
        named = {
            "x5t": _thumbprint(self.certificate, hashes.SHA1()),
            "x5t#S256": _thumbprint(self.certificate, hashes.SHA256()),
        }
        # Padded or not (MSAL pads), the thumbprint must be the certificate's.
        if not any(str(header.get(k, "")).rstrip("=") == v for k, v in named.items()):
            return "AADSTS700027: the assertion names no registered certificate"
        try:
            claims = jwt.decode(
                assertion,
                self.certificate.public_key(),  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                audience=endpoint,
                issuer=self.app_id,
                options={"require": ["exp", "aud", "iss", "sub", "jti"]},
            )
        except jwt.InvalidTokenError as error:
            return f"AADSTS700027: {error}"
        return None if claims["sub"] == self.app_id else "AADSTS700023: wrong subject"

    def _granted(self, appidacr: str) -> dict[str, Any]:
        token = self.connector_token(appidacr=appidacr)
        return {"token_type": "Bearer", "expires_in": 3600, "access_token": token}

    def _identity_token(self, header: str | None, query: dict[str, str]) -> tuple[int, Any]:
        """App Service's managed identity endpoint (api-version 2019-08-01)."""
        if header != IDENTITY_HEADER:
            return 401, {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong"}
        identity = query.get("client_id", "system")
        if identity not in ("system", self.app_id, USER_IDENTITY):
            return 400, {"statusCode": 400, "message": "no identity with that client id"}
        return 200, {
            "access_token": self.identity_token(identity, query.get("resource", "")),
            "expires_on": str(int(time.time()) + 3600),
            "resource": query.get("resource", ""),
            "token_type": "Bearer",
            "client_id": identity,
        }

    @staticmethod
    def stranger_key() -> rsa.RSAPrivateKey:
        """A key this issuer never published."""
        return _new_key()

    # -- serving ------------------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        address = urlsplit(request.path)
        path = address.path
        with self._lock:
            self.requests.append(path)
        status, answer = 404, {"error": "not_found", "path": path}
        if method == "GET" and path == MSI_PATH:
            query = {k: v[0] for k, v in parse_qs(address.query).items()}
            with self._lock:
                self.identity_requests.append(query)
            status, answer = self._identity_token(request.headers.get("X-IDENTITY-HEADER"), query)
        elif method == "GET" and path == METADATA_PATH:
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
