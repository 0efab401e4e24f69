"""gidgethub clients for the app and for its installations, over one httpx client."""

from __future__ import annotations

from collections.abc import Mapping

import gidgethub.httpx
import httpx

from app.github.auth import AppAuth, InstallationTokenCache


class _AppGitHubAPI(gidgethub.httpx.GitHubAPI):
    """Authenticates as the app, with a freshly signed JWT on every request."""

    def __init__(self, client: httpx.AsyncClient, requester: str, *, auth: AppAuth,
                 base_url: str) -> None:
        super().__init__(client, requester, base_url=base_url)
        self._auth = auth

    async def _request(self, method: str, url: str, headers: Mapping[str, str],
                       body: bytes = b"") -> tuple[int, Mapping[str, str], bytes]:
        if "authorization" not in headers:
            headers = {**headers, "authorization": f"bearer {self._auth.jwt()}"}
        return await super()._request(method, url, headers, body)


class _InstallationGitHubAPI(gidgethub.httpx.GitHubAPI):
    """Authenticates as an installation; on a 401 it fetches a new token and retries once."""

    def __init__(self, client: httpx.AsyncClient, requester: str, *, token: str, base_url: str,
                 tokens: InstallationTokenCache, app: gidgethub.httpx.GitHubAPI,
                 installation_id: int) -> None:
        super().__init__(client, requester, oauth_token=token, base_url=base_url)
        self._tokens = tokens
        self._app = app
        self._installation_id = installation_id

    async def _request(self, method: str, url: str, headers: Mapping[str, str],
                       body: bytes = b"") -> tuple[int, Mapping[str, str], bytes]:
        response = await super()._request(method, url, headers, body)
        if response[0] != 401 or headers.get("authorization") != f"token {self.oauth_token}":
            return response
        self._tokens.invalidate(self._installation_id)
        self.oauth_token = await self._tokens.token(self._app, self._installation_id)
        return await super()._request(
            method, url, {**headers, "authorization": f"token {self.oauth_token}"}, body)


class GitHubClientFactory:
    """Hands out gidgethub clients that share one connection pool and one token cache."""

    def __init__(self, api_url: str, auth: AppAuth, http: httpx.AsyncClient,
                 requester: str = "ptm-triage", tokens: InstallationTokenCache | None = None) -> None:
        self.api_url = api_url
        self.tokens = tokens or InstallationTokenCache(auth)
        self._auth = auth
        self._http = http
        self._requester = requester

    async def app_client(self) -> gidgethub.httpx.GitHubAPI:
        return _AppGitHubAPI(self._http, self._requester, auth=self._auth, base_url=self.api_url)

    async def for_installation(self, installation_id: int) -> gidgethub.httpx.GitHubAPI:
        app = await self.app_client()
        token = await self.tokens.token(app, installation_id)
        return _InstallationGitHubAPI(self._http, self._requester, token=token,
                                      base_url=self.api_url, tokens=self.tokens, app=app,
                                      installation_id=installation_id)

    def invalidate(self, installation_id: int) -> None:
        self.tokens.invalidate(installation_id)

    async def aclose(self) -> None:
        await self._http.aclose()
