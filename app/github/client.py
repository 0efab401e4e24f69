"""gidgethub clients for the app and for its installations, over one httpx client.

How a client meets GitHub's failures is its ``RetryPolicy``, carried out by tenacity around
each request: 5xx answers, timeouts and connection resets are retried with doubling backoff;
a primary rate limit (``x-ratelimit-remaining: 0``) waits until ``x-ratelimit-reset``, a
secondary one as long as ``Retry-After`` says (a minute when it says nothing); a wait longer
than the policy's ``max_wait_s``, and every other answer (404, 410, 422 …), is raised at once.
A webhook delivery's client (``DELIVERY``) retries briefly and leaves longer waits to the queue,
which reschedules the delivery (``app.queue.dispatch``); the backfill's (``PATIENT``) sits out
rate limits for up to an hour.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gidgethub.httpx
import httpx
import tenacity
from gidgethub import GitHubBroken, HTTPException, RateLimitExceeded, sansio

from app.github.auth import AppAuth, InstallationTokenCache

log = logging.getLogger(__name__)

SECONDARY_LIMIT_WAIT_S = 60.0
"""GitHub's advice for a secondary limit that names no ``Retry-After``: wait at least a minute."""


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` bounds the extra attempts of one request, whatever made it fail.

    A rate-limit wait longer than ``max_wait_s`` is not sat out: the error is raised.
    5xx answers and transport errors wait ``backoff_s``, doubling each time. Every
    method is retried, POST too (as octokit's retry plugin does): the app's POSTs
    add labels, create labels and fetch tokens, all safe to repeat.
    """

    retries: int = 0
    max_wait_s: float = 0.0
    backoff_s: float = 1.0
    reset_margin_s: float = 1.0  # past x-ratelimit-reset, for clock skew with GitHub
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.time

    def backoff(self, attempt: int) -> float:
        return self.backoff_s * 2.0 ** (attempt - 1)

    def until(self, epoch: float) -> float:
        return max(epoch + self.reset_margin_s - self.clock(), 0.0)


AnswerHook = Callable[[str, str, str, int | None], None]
"""Told of every answer: (client: 'app' or 'installation:ID', method, status or 'transport-error',
requests left in the rate limit or None); ``app.metrics`` counts them."""


def _ignore(client: str, method: str, status: str, remaining: int | None) -> None:
    """The hook when nobody listens."""


FAIL_FAST = RetryPolicy()
DELIVERY = RetryPolicy(retries=3, max_wait_s=5.0, backoff_s=0.25)
PATIENT = RetryPolicy(retries=5, max_wait_s=3600.0, backoff_s=0.5)


@dataclass(frozen=True)
class Page:
    """One page of a list endpoint, with the page numbers its ``Link`` header names."""

    items: list[Any]
    next_page: int | None
    last_page: int | None


def link_pages(header: str | None) -> dict[str, int]:
    """``{rel: page number}`` of a ``Link`` header."""
    pages = {}
    for part in (header or "").split(","):
        url, _, params = part.partition(";")
        rel = params.split("rel=")[-1].strip().strip('"')
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url.strip().strip("<>")).query)
        if rel and query.get("page", [""])[0].isdigit():
            pages[rel] = int(query["page"][0])
    return pages


class GitHubClient(gidgethub.httpx.GitHubAPI):
    """Waits out rate limits and retries failures as its policy allows; keeps the last headers."""

    def __init__(self, client: httpx.AsyncClient, requester: str, *, retry: RetryPolicy = FAIL_FAST,
                 name: str = "app", on_answer: AnswerHook = _ignore, **kwargs: Any) -> None:
        # gidgethub 6 annotates its client as httpx2.AsyncClient whenever httpx2 is installed (huggingface_hub
        # brings it); it only calls ``client.request``, which httpx's AsyncClient has with the same signature.
        super().__init__(client, requester, **kwargs)  # type: ignore[arg-type]
        self.retry = retry
        self.name = name
        self.on_answer = on_answer
        self.last_headers: Mapping[str, str] = {}

    async def sleep(self, seconds: float) -> None:
        await self.retry.sleep(seconds)

    async def get_page(self, url: str) -> Page:
        items = await self.getitem(url)
        pages = link_pages(self.last_headers.get("link"))
        return Page(items, pages.get("next"), pages.get("last"))

    async def manage_rate_limit(self, *, method: str, url: str) -> None:
        """Before a request: when the last answer left no requests, wait for the reset if allowed."""
        limit = self.rate_limit
        if limit is None or limit.remaining >= 0:  # gidgethub has already counted this request
            return
        wait = self.retry.until(limit.reset_datetime.timestamp())
        if 0 < wait <= self.retry.max_wait_s:
            log.info("GitHub rate limit used up; waiting %.0fs for its reset", wait)
            await self.sleep(wait)

    async def _make_request(self, *args: Any, **kwargs: Any) -> tuple[bytes, str | None, int]:
        """gidgethub's request, tried again as the policy allows (tenacity)."""
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception(self._passes), wait=self._wait,
            stop=tenacity.stop_after_attempt(self.retry.retries + 1), sleep=self.retry.sleep,
            before_sleep=self._say_retry, reraise=True)
        answer: tuple[bytes, str | None, int] = await retrying(super()._make_request, *args, **kwargs)
        return answer

    def _passes(self, exc: BaseException) -> bool:
        """A failure that may pass by waiting, no longer than the policy sits out."""
        if isinstance(exc, (GitHubBroken, httpx.TransportError)):
            return True
        wait = _limit_wait(exc, self.retry) if isinstance(exc, HTTPException) else None
        return wait is not None and wait <= self.retry.max_wait_s

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        limit = _limit_wait(exc, self.retry) if isinstance(exc, HTTPException) else None
        return limit if limit is not None else self.retry.backoff(state.attempt_number)

    def _say_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        what = exc.status_code if isinstance(exc, HTTPException) else repr(exc)
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("GitHub request failed (%s); attempt %d in %.1fs", what, state.attempt_number + 1, wait)

    async def _request(self, method: str, url: str, headers: Mapping[str, str],
                       body: bytes = b"") -> tuple[int, Mapping[str, str], bytes]:
        try:
            response = await super()._request(method, url, headers, body)
        except httpx.TransportError:
            self.on_answer(self.name, method, "transport-error", None)
            raise
        self.last_headers = response[1]
        # gidgethub learns the limit from successful answers only; a 4xx or 5xx spends a
        # request too, and its headers tell when a window GitHub started meanwhile resets.
        self.rate_limit = sansio.RateLimit.from_http(response[1]) or self.rate_limit
        self.on_answer(self.name, method, str(response[0]), self.rate_limit.remaining if self.rate_limit else None)
        return response


def is_rate_limited(exc: HTTPException) -> bool:
    """A primary or secondary rate limit, not a missing permission or resource: it passes with time."""
    return _limit_wait(exc, FAIL_FAST) is not None


def _limit_wait(exc: HTTPException, retry: RetryPolicy) -> float | None:
    """Seconds a primary or secondary rate limit asks to wait; None for any other failure."""
    if isinstance(exc, RateLimitExceeded):
        return retry.until(exc.rate_limit.reset_datetime.timestamp())
    if exc.status_code not in (403, 429):
        return None
    retry_after = exc.headers.get("retry-after", "")
    if retry_after.isdigit():
        return float(retry_after)
    if exc.status_code == 429 or "secondary rate limit" in str(exc).lower():
        return SECONDARY_LIMIT_WAIT_S
    return None  # a 403 that is no limit: a missing permission


class _AppGitHubAPI(GitHubClient):
    """Authenticates as the app, with a freshly signed JWT on every request."""

    def __init__(self, client: httpx.AsyncClient, requester: str, *, auth: AppAuth,
                 base_url: str, retry: RetryPolicy, on_answer: AnswerHook) -> None:
        super().__init__(client, requester, base_url=base_url, retry=retry, on_answer=on_answer)
        self._auth = auth

    async def _request(self, method: str, url: str, headers: Mapping[str, str],
                       body: bytes = b"") -> tuple[int, Mapping[str, str], bytes]:
        if "authorization" not in headers:
            headers = {**headers, "authorization": f"bearer {self._auth.jwt()}"}
        return await super()._request(method, url, headers, body)


class _InstallationGitHubAPI(GitHubClient):
    """Authenticates as an installation; on a 401 it fetches a new token and retries once."""

    def __init__(self, client: httpx.AsyncClient, requester: str, *, token: str, base_url: str,
                 tokens: InstallationTokenCache, app: GitHubClient,
                 installation_id: int) -> None:
        super().__init__(client, requester, oauth_token=token, base_url=base_url, retry=app.retry,
                         name=f"installation:{installation_id}", on_answer=app.on_answer)
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
    """Hands out gidgethub clients that share one connection pool and one token cache.

    Clients fail fast unless asked for another ``retry`` policy.
    """

    def __init__(self, api_url: str, auth: AppAuth, http: httpx.AsyncClient,
                 requester: str = "ptm-triage", tokens: InstallationTokenCache | None = None,
                 on_answer: AnswerHook = _ignore) -> None:
        self.api_url = api_url
        self.on_answer = on_answer
        self.tokens = tokens or InstallationTokenCache(auth)
        self._auth = auth
        self._http = http
        self._requester = requester

    async def app_client(self, retry: RetryPolicy = FAIL_FAST) -> GitHubClient:
        return _AppGitHubAPI(self._http, self._requester, auth=self._auth, base_url=self.api_url,
                             retry=retry, on_answer=self.on_answer)

    async def for_installation(self, installation_id: int, retry: RetryPolicy = FAIL_FAST) -> GitHubClient:
        app = await self.app_client(retry)
        token = await self.tokens.token(app, installation_id)
        return _InstallationGitHubAPI(self._http, self._requester, token=token,
                                      base_url=self.api_url, tokens=self.tokens, app=app,
                                      installation_id=installation_id)

    def invalidate(self, installation_id: int) -> None:
        self.tokens.invalidate(installation_id)

    def for_another_loop(self) -> GitHubClientFactory:
        """The same app's clients for another event loop (a connection pool and token cache are bound to one)."""
        return GitHubClientFactory(self.api_url, self._auth, httpx.AsyncClient(timeout=self._http.timeout),
                                   self._requester, on_answer=self.on_answer)

    async def aclose(self) -> None:
        await self._http.aclose()
