"""GitHub App authentication: app JWTs and cached installation tokens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import gidgethub.abc
import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

CLOCK_DRIFT_S = 60
JWT_TTL_S = 9 * 60  # from now; with the backdated iat the JWT spans 10 minutes, GitHub's maximum


class AppAuth:
    """Signs the short-lived JWTs that authenticate a GitHub App as itself."""

    def __init__(self, app_id: int | str, private_key_pem: str | bytes,
                 clock: Callable[[], float] = time.time) -> None:
        self.app_id = str(app_id)
        self._key = load_rsa_private_key(private_key_pem)
        self._clock = clock

    def jwt(self) -> str:
        now = int(self._clock())
        claims = {"iat": now - CLOCK_DRIFT_S, "exp": now + JWT_TTL_S, "iss": self.app_id}
        return jwt.encode(claims, self._key, algorithm="RS256")


def load_rsa_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("GitHub App private key is not a valid unencrypted RSA private key in "
                         "PEM format (expected '-----BEGIN RSA PRIVATE KEY-----' or "
                         "'-----BEGIN PRIVATE KEY-----')")
    return key


@dataclass(frozen=True)
class _CachedToken:
    token: str
    refresh_at: float


class InstallationTokenCache:
    """Installation access tokens, fetched once and reused until shortly before they expire.

    A token is refreshed ``margin_s`` before its ``expires_at``, or halfway through its
    life when the server hands out tokens shorter-lived than twice the margin.
    """

    def __init__(self, auth: AppAuth, clock: Callable[[], float] = time.time,
                 margin_s: float = 300) -> None:
        self._auth = auth
        self._clock = clock
        self._margin_s = margin_s
        self._tokens: dict[int, _CachedToken] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def token(self, gh: gidgethub.abc.GitHubAPI, installation_id: int) -> str:
        async with self._locks.setdefault(installation_id, asyncio.Lock()):
            cached = self._tokens.get(installation_id)
            if cached is not None and self._clock() < cached.refresh_at:
                return cached.token
            fetched_at = self._clock()
            data = await gh.post("/app/installations/{installation_id}/access_tokens",
                                 {"installation_id": installation_id}, data=b"",
                                 jwt=self._auth.jwt())
            expires_at = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00")).timestamp()
            margin = min(self._margin_s, (expires_at - fetched_at) / 2)
            token: str = data["token"]
            self._tokens[installation_id] = _CachedToken(token, expires_at - margin)
            return token

    def invalidate(self, installation_id: int) -> None:
        """Forget the installation's token, e.g. after GitHub answered 401 with it."""
        self._tokens.pop(installation_id, None)
