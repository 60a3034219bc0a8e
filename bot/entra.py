"""Microsoft Entra ID sign-in hosts, shared by everything that signs in with MSAL (Microsoft 365
sync and the Teams bot)."""

from __future__ import annotations

from urllib.parse import urlsplit


def microsoft_cloud(authority: str) -> bool:
    """Whether `authority` (a URL or a bare host) is one of Microsoft's own sign-in hosts.
    MSAL validates any other authority by asking login.microsoftonline.com about it ("instance
    discovery"), which a private authority (a test's fake, a proxy) must not leak to."""
    from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS  # type: ignore[import-untyped]

    host = urlsplit(authority if "//" in authority else f"//{authority}").hostname or ""
    return host.lower() in WELL_KNOWN_AUTHORITY_HOSTS
