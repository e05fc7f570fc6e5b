"""API keys: SHA-256 digests compared in constant time over the whole list; only key names leave this module."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from gateway.errors import AuthenticationFailed
from gateway.settings import ApiKey, digest_key

ANONYMOUS = "anonymous"


class KeyRing:
    """The accepted keys. Several at once is how rotation works: add the new key, then retire the old one."""

    def __init__(self, keys: tuple[ApiKey, ...], *, enabled: bool) -> None:
        self._keys = keys
        self.enabled = enabled

    def identify(self, presented: str | None) -> str:
        """The name of the key presented, or AuthenticationFailed. Never logs or returns the key itself."""
        if not self.enabled:
            return ANONYMOUS
        if not presented:
            raise AuthenticationFailed(
                "No API key provided. Send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'.",
                code="missing_api_key",
            )
        digest = digest_key(presented)
        match: str | None = None
        # Compare against every key, without stopping at the first hit, so timing says nothing about which
        # key (or how many) exist.
        for key in self._keys:
            if hmac.compare_digest(digest, key.digest) and match is None:
                match = key.name
        if match is None:
            raise AuthenticationFailed("Incorrect API key provided.")
        return match

    def rate_bucket(self, key_name: str, client_address: str | None) -> str:
        """Whose rate limit a request counts against: its key's, or with auth off its client address's (one shared
        `anonymous` bucket would let one busy caller lock everyone out)."""
        if self.enabled:
            return key_name
        return f"{ANONYMOUS}@{client_address or 'unknown'}"


def presented_key(headers: Mapping[bytes, bytes]) -> str | None:
    """The key from `Authorization: Bearer` (what the openai SDK sends) or `X-API-Key` (the seed's header).

    `headers` are the ASGI scope's raw headers, names lower-cased as the ASGI spec guarantees."""
    authorization = headers.get(b"authorization")
    if authorization:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    api_key = headers.get(b"x-api-key")
    return api_key.decode("latin-1").strip() or None if api_key else None
