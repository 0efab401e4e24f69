"""What a signed-in person may read, asked of GitHub with their user-to-server token.

``GET /user/installations`` lists the installations of this App that the person can reach, and
``GET /user/installations/{id}/repositories`` the repositories of each that they may read: the
same answer GitHub gives the App's own sign-in, whatever their role in an organisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from app.github.client import GitHubClient


@dataclass(frozen=True)
class UserAccess:
    login: str
    repository_ids: frozenset[int]


async def user_access(http: httpx.AsyncClient, api_url: str, token: str) -> UserAccess:
    gh = GitHubClient(http, "ptm-triage", oauth_token=token, base_url=api_url)
    user = await gh.getitem("/user")
    readable: set[int] = set()
    async for installation in gh.getiter("/user/installations?per_page=100", iterable_key="installations"):
        async for repository in gh.getiter(f"/user/installations/{installation['id']}/repositories?per_page=100",
                                           iterable_key="repositories"):
            readable.add(repository["id"])
    return UserAccess(user["login"], frozenset(readable))
