"""Reusable fixtures that put the GitHub simulator behind real HTTP clients.

``tests/conftest.py`` registers them for every test (``pytest_plugins``).

``github_factory`` talks to the simulator in-process through httpx's
ASGITransport; ``github_sim_server`` serves it with uvicorn on 127.0.0.1
(``tests.servers.serve``) for code that needs a URL (a subprocess, a second app).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from app.github.auth import AppAuth, InstallationTokenCache
from app.github.client import GitHubClientFactory, RetryPolicy
from tests.github_sim import GitHubSimulator, generate_app_keypair
from tests.servers import serve

GITHUB_APP_ID = 4242
SIM_URL = "http://github.sim"


class FakeClock:
    """A clock for the simulator and the app alike; starts at the real time."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def github_app_keys() -> tuple[str, str]:
    """(private PEM, public PEM) of the test GitHub App."""
    return generate_app_keypair()


@pytest.fixture
def github_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> list[float]:
    """The seconds ``patient`` slept, in order."""
    return []


@pytest.fixture
def patient(github_clock: FakeClock, sleeps: list[float]) -> RetryPolicy:
    """Waits up to ten minutes and retries three times; its sleeps only move the test's clock."""

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        github_clock.advance(seconds)

    return RetryPolicy(retries=3, max_wait_s=600, backoff_s=0.5, reset_margin_s=1, sleep=sleep, clock=github_clock)


def limit_errors(sim: GitHubSimulator) -> list[int]:
    """Statuses of the simulator's answers that were a rate limit."""
    return [x.status for x in sim.exchanges if x.status in (403, 429)]


@pytest.fixture
def github_sim(github_app_keys: tuple[str, str], github_clock: FakeClock) -> GitHubSimulator:
    sim = GitHubSimulator(GITHUB_APP_ID, github_app_keys[1], clock=github_clock)
    sim.api_url = SIM_URL
    return sim


@pytest.fixture
def github_auth(github_app_keys: tuple[str, str], github_clock: FakeClock) -> AppAuth:
    return AppAuth(GITHUB_APP_ID, github_app_keys[0], clock=github_clock)


@pytest.fixture
async def github_factory(github_sim: GitHubSimulator, github_auth: AppAuth,
                         github_clock: FakeClock) -> AsyncIterator[GitHubClientFactory]:
    """The app's client factory wired to ``github_sim`` over in-process HTTP."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=github_sim.app), base_url=SIM_URL)
    factory = GitHubClientFactory(SIM_URL, github_auth, http,
                                  tokens=InstallationTokenCache(github_auth, clock=github_clock))
    yield factory
    await factory.aclose()


@pytest.fixture
def github_sim_server(github_sim: GitHubSimulator) -> Iterator[str]:
    """``github_sim`` on a real socket; yields the base URL (also set as its ``api_url``)."""
    with serve(github_sim.app) as url:
        github_sim.api_url = url
        yield url
