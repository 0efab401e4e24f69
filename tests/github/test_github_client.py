"""The GitHub client's rate-limit and retry behaviour, against the simulator with a clock the test controls."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from gidgethub import BadRequest, GitHubBroken, RateLimitExceeded

from app.github.auth import AppAuth
from app.github.client import DELIVERY, FAIL_FAST, GitHubClientFactory, RetryPolicy, link_pages
from tests.conftest_github import SIM_URL, FakeClock, limit_errors
from tests.github_sim import GitHubSimulator

INSTALLATION = 3
REPO = "octo/limits"
SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."


@pytest.fixture
def sim(github_sim: GitHubSimulator) -> GitHubSimulator:
    github_sim.add_installation(INSTALLATION, "octo", [REPO])
    github_sim.rate_limit_window_s = 60
    return github_sim


async def test_a_used_up_limit_is_waited_out_before_the_next_request(
    sim: GitHubSimulator, github_factory: GitHubClientFactory, patient: RetryPolicy, sleeps: list[float],
    github_clock: FakeClock,
) -> None:
    sim.rate_limit = 2
    gh = await github_factory.for_installation(INSTALLATION, patient)
    await gh.getitem(f"/repos/{REPO}")
    await gh.getitem(f"/repos/{REPO}")
    reset = gh.rate_limit.reset_datetime.timestamp()
    assert gh.rate_limit.remaining == 0
    waited_from = github_clock()
    await gh.getitem(f"/repos/{REPO}")
    assert sleeps == [pytest.approx(reset + 1 - waited_from)] and 0 < sleeps[0] <= 61
    assert limit_errors(sim) == []


async def test_error_answers_spend_the_limit_too_and_say_when_a_new_window_resets(
    sim: GitHubSimulator, github_factory: GitHubClientFactory, patient: RetryPolicy, sleeps: list[float],
    github_clock: FakeClock,
) -> None:
    """What a backfill met: a window ran out between two pages, and the next requests answered 422."""
    sim.rate_limit = 3
    gh = await github_factory.for_installation(INSTALLATION, patient)
    label = {"name": "ptm: related", "color": "5319e7"}
    await gh.post(f"/repos/{REPO}/labels", data=label)
    github_clock.advance(sim.rate_limit_window_s + 1)  # the window the client knows of is over
    for _ in range(3):  # the new window's three requests, each "already exists"
        with pytest.raises(BadRequest):
            await gh.post(f"/repos/{REPO}/labels", data=label)
    reset = gh.rate_limit.reset_datetime.timestamp()
    assert gh.rate_limit.remaining == 0 and reset > github_clock()
    waited_from = github_clock()
    assert (await gh.getitem(f"/repos/{REPO}"))["full_name"] == REPO
    assert limit_errors(sim) == [] and sleeps == [pytest.approx(reset + 1 - waited_from)]


async def test_a_client_meeting_the_limit_waits_for_the_reset_and_retries(
    sim: GitHubSimulator, github_factory: GitHubClientFactory, patient: RetryPolicy, sleeps: list[float],
) -> None:
    sim.rate_limit = 1
    await (await github_factory.for_installation(INSTALLATION)).getitem(f"/repos/{REPO}")
    gh = await github_factory.for_installation(INSTALLATION, patient)  # same token, knows nothing of the limit
    assert (await gh.getitem(f"/repos/{REPO}"))["full_name"] == REPO
    assert limit_errors(sim) == [403] and len(sleeps) == 1 and 0 < sleeps[0] <= 61


async def test_fail_fast_by_default_and_beyond_the_longest_wait(
    sim: GitHubSimulator, github_factory: GitHubClientFactory, patient: RetryPolicy, sleeps: list[float],
) -> None:
    sim.rate_limit = 1
    webhook_time = await github_factory.for_installation(INSTALLATION)
    assert webhook_time.retry == FAIL_FAST
    await webhook_time.getitem(f"/repos/{REPO}")
    with pytest.raises(RateLimitExceeded):
        await webhook_time.getitem(f"/repos/{REPO}")
    impatient = await github_factory.for_installation(INSTALLATION, replace(patient, max_wait_s=10))
    with pytest.raises(RateLimitExceeded):
        await impatient.getitem(f"/repos/{REPO}")
    assert sleeps == []


@pytest.mark.parametrize(("status", "headers", "wait"), [
    (403, {"retry-after": "7"}, 7.0),
    (429, {"retry-after": "3"}, 3.0),
    (403, {}, 60.0),  # a secondary limit that names no wait: a minute
])
async def test_secondary_limits_wait_as_long_as_they_say(
    sim: GitHubSimulator, github_factory: GitHubClientFactory, patient: RetryPolicy, sleeps: list[float],
    status: int, headers: dict[str, str], wait: float,
) -> None:
    sim.fail_next("GET", f"/repos/{REPO}", status, headers=headers, message=SECONDARY)
    gh = await github_factory.for_installation(INSTALLATION, patient)
    assert (await gh.getitem(f"/repos/{REPO}"))["full_name"] == REPO
    assert sleeps == [wait]


async def test_a_403_that_is_no_limit_is_not_retried(
    sim: GitHubSimulator, github_factory: GitHubClientFactory, patient: RetryPolicy, sleeps: list[float],
) -> None:
    sim.fail_next("GET", f"/repos/{REPO}", 403, message="Resource not accessible by integration")
    gh = await github_factory.for_installation(INSTALLATION, patient)
    with pytest.raises(BadRequest):
        await gh.getitem(f"/repos/{REPO}")
    assert sleeps == []


async def test_5xx_is_retried_with_backoff_a_few_times(
    sim: GitHubSimulator, github_factory: GitHubClientFactory, patient: RetryPolicy, sleeps: list[float],
) -> None:
    gh = await github_factory.for_installation(INSTALLATION, patient)
    sim.fail_next("GET", f"/repos/{REPO}", 502, times=2)
    assert (await gh.getitem(f"/repos/{REPO}"))["full_name"] == REPO
    assert sleeps == [0.5, 1.0]
    sim.fail_next("POST", f"/repos/{REPO}/labels", 503, times=4)
    with pytest.raises(GitHubBroken):
        await gh.post(f"/repos/{REPO}/labels", data={"name": "x", "color": "ffffff"})
    assert sleeps == [0.5, 1.0, 0.5, 1.0, 2.0]


class FlakyTransport(httpx.AsyncBaseTransport):
    """Fails the first ``failures`` requests with ``error`` (refused, timed out, reset), then hands them to ``inner``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, failures: int,
                 error: type[httpx.TransportError] = httpx.ConnectError) -> None:
        self.inner = inner
        self.failures = failures
        self.error = error

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.failures:
            self.failures -= 1
            raise self.error("the network failed", request=request)
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError])
@pytest.mark.parametrize(("failures", "ok"), [(2, True), (4, False)])
async def test_transport_errors_are_retried_with_backoff(
    sim: GitHubSimulator, github_auth: AppAuth, patient: RetryPolicy, sleeps: list[float],
    failures: int, ok: bool, error: type[httpx.TransportError],
) -> None:
    transport = FlakyTransport(httpx.ASGITransport(app=sim.app), failures, error)
    factory = GitHubClientFactory(SIM_URL, github_auth, httpx.AsyncClient(transport=transport, base_url=SIM_URL))
    gh = await factory.app_client(patient)
    if ok:
        assert (await gh.getitem("/app"))["slug"] == "ptm-triage"
    else:
        with pytest.raises(error):
            await gh.getitem("/app")
    assert sleeps == [0.5, 1.0, 2.0][: min(failures, 3)]
    await factory.aclose()


async def test_pages_come_with_the_numbers_their_link_header_names(
    sim: GitHubSimulator, github_factory: GitHubClientFactory,
) -> None:
    for i in range(25):
        sim.add_issue(REPO, f"issue {i}")
    gh = await github_factory.for_installation(INSTALLATION)
    url = f"/repos/{REPO}/issues?state=all&per_page=10&page={{}}"
    first, last = await gh.get_page(url.format(1)), await gh.get_page(url.format(3))
    assert (len(first.items), first.next_page, first.last_page) == (10, 2, 3)
    assert (len(last.items), last.next_page, last.last_page) == (5, None, None)
    assert link_pages(None) == {} and link_pages('<https://x/y?page=2&per_page=5>; rel="next"') == {"next": 2}


async def test_a_deliverys_client_retries_briefly_and_leaves_long_waits_to_the_queue(
    sim: GitHubSimulator, github_factory: GitHubClientFactory,
) -> None:
    """``DELIVERY``: a 502 or two is retried at once; a secondary limit asking for a minute is raised, for
    the queue to reschedule the delivery (``app.queue.dispatch``)."""
    gh = await github_factory.for_installation(INSTALLATION, DELIVERY)
    sim.fail_next("GET", f"/repos/{REPO}", 502, times=2)
    assert (await gh.getitem(f"/repos/{REPO}"))["full_name"] == REPO
    sim.fail_next("GET", f"/repos/{REPO}", 403, headers={"retry-after": "60"}, message=SECONDARY)
    with pytest.raises(BadRequest) as raised:
        await gh.getitem(f"/repos/{REPO}")
    assert raised.value.status_code == 403
