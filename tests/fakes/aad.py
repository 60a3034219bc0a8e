"""A fake Microsoft Entra ID (the identity platform MSAL signs in at) over HTTPS on 127.0.0.1.

MSAL accepts nothing but an https authority, so the fake serves TLS with a self-signed
certificate for IP 127.0.0.1 made here with `cryptography`; tests trust it through
REQUESTS_CA_BUNDLE (azure-identity talks to Entra through azure-core's requests transport).
Endpoints: the tenant's OpenID configuration, the token endpoint (client credentials, the
device code grant, refresh tokens) and the device authorization endpoint, which a poll answers
at once. Every request is recorded, so a test can show the sign-in went nowhere else.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from tests.fakes.graph_api import FAKE_TOKEN, LocalServer, send_json

USER_ID = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
USERNAME = "scrutiny-bot@srs.example"


def self_signed(
    key: CertificateIssuerPrivateKeyTypes,
    common_name: str,
    valid_for: timedelta,
    *extensions: tuple[x509.ExtensionType, bool],
) -> x509.Certificate:
    """A certificate for `key`, signed with it, valid from five minutes ago for `valid_for`;
    each extension given with whether it is critical."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + valid_for)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256())


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway key and certificate for IP 127.0.0.1; (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed(
        key,
        "fake entra",
        timedelta(hours=1),
        (x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
        (x509.BasicConstraints(ca=True, path_length=None), True),
    )
    cert_path, key_path = folder / "fake-entra.pem", folder / "fake-entra.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class EntraCall:
    """One request the fake received: method, path and form fields."""

    method: str
    path: str
    form: dict[str, str]


@dataclass
class FakeEntra(LocalServer):
    """Run with `with FakeEntra(folder, tenant, client_id) as entra`; `entra.authority` is the
    GRAPH_AUTHORITY_HOST and `entra.ca_file` the certificate to trust."""

    folder: Path
    tenant: str
    client_id: str
    access_token: str = FAKE_TOKEN
    """What the client-credentials grant hands out."""
    client_credentials: Callable[[dict[str, str], str], tuple[int, Any]] | None = None
    """When set, answers the client-credentials grant instead (the form, the token endpoint's
    address): to check the client's secret or signed assertion."""
    calls: list[EntraCall] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _device_scope: str = ""
    ca_file: Path = field(init=False)

    def _tls(self) -> ssl.SSLContext:
        self.ca_file, key_file = self_signed_certificate(self.folder)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(self.ca_file, key_file)
        return tls

    @property
    def authority(self) -> str:
        """https://127.0.0.1:port"""
        return self.origin

    def grants(self) -> list[str]:
        """The grant types of the token requests so far, in order."""
        with self._lock:
            return [c.form.get("grant_type", "") for c in self.calls if c.path.endswith("/token")]

    # -- serving ------------------------------------------------------------------------------
    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        path = urlsplit(request.path).path
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length).decode() if length else ""
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        with self._lock:
            self.calls.append(EntraCall(method, path, form))
        status, answer = self._answer(method, path, form)
        send_json(request, status, answer)

    def _answer(self, method: str, path: str, form: dict[str, str]) -> tuple[int, Any]:
        base = f"{self.authority}/{self.tenant}"
        if method == "GET" and path == f"/{self.tenant}/v2.0/.well-known/openid-configuration":
            return 200, {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            }
        if method == "POST" and path == f"/{self.tenant}/oauth2/v2.0/devicecode":
            self._device_scope = form.get("scope", "")
            return 200, {
                "device_code": "fake-device-code",
                "user_code": "FAKE-CODE",
                "verification_uri": f"{self.authority}/devicelogin",
                "expires_in": 900,
                "interval": 1,
                "message": "Sign in with FAKE-CODE",
            }
        if method == "POST" and path == f"/{self.tenant}/oauth2/v2.0/token":
            if form.get("client_id") != self.client_id:
                return 400, {"error": "unauthorized_client"}
            grant = form.get("grant_type")
            if grant == "client_credentials" and self.client_credentials is not None:
                return self.client_credentials(form, f"{base}/oauth2/v2.0/token")
            if grant == "client_credentials":
                token = self.access_token
                return 200, {"token_type": "Bearer", "expires_in": 3600, "access_token": token}
            if grant == "urn:ietf:params:oauth:grant-type:device_code":
                # Entra grants what the device code was asked for (the poll names no scope).
                return 200, self._user_tokens(self._device_scope)
            if grant == "refresh_token":
                return 200, self._user_tokens(form.get("scope", ""))
            return 400, {"error": "unsupported_grant_type"}
        return 404, {"error": "not_found", "error_description": path}

    def _user_tokens(self, scope: str) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": f"{self.authority}/{self.tenant}/v2.0",
            "sub": USER_ID,
            "oid": USER_ID,
            "tid": self.tenant,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 3600,
            "preferred_username": USERNAME,
        }
        # MSAL reads the id_token's claims without checking a signature; none is made here.
        id_token = ".".join(
            [_b64(b'{"alg":"none","typ":"JWT"}'), _b64(json.dumps(claims).encode()), ""]
        )
        client_info = _b64(json.dumps({"uid": USER_ID, "utid": self.tenant}).encode())
        return {
            "token_type": "Bearer",
            "scope": " ".join(s for s in scope.split() if s.startswith("https://")),
            "expires_in": 3600,
            "access_token": FAKE_TOKEN,
            "refresh_token": "fake-refresh-token",
            "id_token": id_token,
            "client_info": client_info,
        }
