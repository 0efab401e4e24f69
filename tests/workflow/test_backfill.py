"""Backfill: importing a repository's existing issues, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from scipy import stats as scipy_stats
from sqlalchemy import func, select

from app.config import Settings
from app.github.client import GitHubClientFactory, RetryPolicy
from app.services import Services, build_services
from app.store.db import Database
from app.store.models import Issue, IssueEvent, Prediction
from app.store.queries import (
    repository_by_name,
    schedule_backfill,
    upsert_installation,
    upsert_repository,
)
from app.triage.classifier import Classifier
from app.triage.loader import load_classifier
from app.web.main import create_app
from app.workflow import backfill
from tests.backfill_data import MadeIssue, populate
from tests.conftest_github import limit_errors
from tests.e2e import INSTALLATION, POLICY, REPO, Stack
from tests.github_sim import GitHubSimulator
from tests.servers import serve
from tests.test_end_to_end import OTHER_BODY, OTHER_TITLE, PTM_BODY, PTM_TITLE
from tests.waiting import HTTP_TIMEOUT_S, wait_until

N_ISSUES = 2500
BACKFILL_PATIENCE_S = 900.0
"""Thousands of issues classified and labelled over HTTP: minutes on a loaded machine, the bound far above."""


def backfill_of(stack: Stack) -> dict[str, Any]:
    (only,) = stack.get("/api/backfill", repo=REPO)["backfills"]
    return only


def wait_for(stack: Stack, done: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def there() -> dict[str, Any] | None:
        found[:] = stack.get("/api/backfill", repo=REPO)["backfills"]
        return found[0] if found and done(found[0]) else None

    return wait_until(there, lambda: f"{what}: {found}", timeout_s=BACKFILL_PATIENCE_S, interval_s=0.2)


def all_issues(stack: Stack) -> list[dict[str, Any]]:
    first = stack.get("/api/issues", repo=REPO, limit="1000")
    issues = first["issues"]
    while len(issues) < first["total"]:
        issues += stack.get("/api/issues", repo=REPO, limit="1000", offset=str(len(issues)))["issues"]
    return issues


def counts(url: str) -> dict[str, int]:
    db = Database(Settings(_env_file=None, database_url=url).sqlalchemy_url)
    try:
        with db.session() as session:
            return {
                "issues": session.scalar(select(func.count()).select_from(Issue)),
                "predictions": session.scalar(select(func.count()).select_from(Prediction)),
                "predicted_issues": session.scalar(select(func.count(func.distinct(Prediction.issue_id)))),
                "events": session.scalar(select(func.count()).select_from(IssueEvent)),
            }
    finally:
        db.dispose()


def independent_stats(made: list[MadeIssue], issues: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Resolution days of the closed issues from the simulator's data, grouped by the recorded predictions."""
    ptm_by_number = {i["number"]: POLICY.decode(i["prediction"]["labels"])[0] for i in issues}
    groups: dict[bool, list[int]] = {True: [], False: []}
    for issue in made:
        ptm = ptm_by_number[issue.number]
        if issue.closed is not None and ptm is not None:
            groups[ptm].append((issue.closed.date() - issue.created.date()).days)
    return {"ptm": groups[True], "non_ptm": groups[False]}


def rate_limit_used_up(sim: GitHubSimulator) -> bool:
    return any(x.response_headers.get("x-ratelimit-remaining") == "0" and x.path.startswith("/repos/")
               for x in sim.exchanges)


def test_installation_backfills_every_issue_once_through_a_limit_a_failure_and_a_restart(
    settings_for: Callable[..., Settings], simulator: GitHubSimulator, database_url: str,
) -> None:
    made = populate(simulator, REPO, N_ISSUES)
    # What is tested is the import, on the faster model; BERT serves in tests/test_end_to_end.py.
    serving = settings_for(model_kind="baseline")
    # The first process uses up its rate limit early and sits out the reset, half an hour away;
    # it is stopped while it waits. (The wait itself is timed in the tests below, on a test clock.)
    simulator.rate_limit, simulator.rate_limit_window_s = 60, 1800
    with serve(create_app(serving)) as url:
        stack = Stack(simulator, url)
        assert stack.send("installation", simulator.installation_payload("created", INSTALLATION)).status_code == 202
        wait_until(lambda: rate_limit_used_up(simulator), "the first process used up its rate limit")
        assert backfill_of(stack)["status"] == "running"
    stopped = counts(database_url)
    assert 0 < stopped["issues"] < N_ISSUES
    assert limit_errors(simulator) == [], "it waited for the reset instead of asking on"

    # The next process (a new token: a new limit) resumes; the first page it asks for fails once.
    simulator.rate_limit = 5000
    simulator.fail_next("GET", f"/repos/{REPO}/issues", 502)
    with serve(create_app(serving)) as url:
        stack = Stack(simulator, url)
        done = wait_for(stack, lambda b: b["status"] != "running", "the resumed backfill finished")
        issues = all_issues(stack)
        stats = stack.get("/api/stats", repo=REPO)["overall"]
        assert stack.get("/api/backfill")["backfills"] == [done]
        assert httpx.get(f"{url}/api/backfill", params={"repo": "nobody/nothing"},
                         timeout=HTTP_TIMEOUT_S).status_code == 404

    last_page = -(-max(i.number for i in made) // backfill.PER_PAGE)
    assert done["status"] == "done" and done["error"] is None
    assert (done["imported"], done["last_page"], done["next_page"]) == (N_ISSUES, last_page, last_page + 1)
    assert any(x.status == 502 and x.path == f"/repos/{REPO}/issues" for x in simulator.exchanges)
    assert limit_errors(simulator) == []

    # Every issue once, pull requests none, one prediction each.
    assert sorted(i["number"] for i in issues) == [i.number for i in made]
    assert counts(database_url) == {"issues": N_ISSUES, "predictions": N_ISSUES, "predicted_issues": N_ISSUES,
                                    "events": N_ISSUES + sum(i.closed is not None for i in made)}
    by_number = {i["number"]: i for i in issues}
    for issue in made:
        assert by_number[issue.number]["closed_at"] == (issue.closed.isoformat() if issue.closed else None)

    # Labels written on open issues only ("open", the default).
    labelled = {n for n in by_number if any(POLICY.is_app_label(name) for name in stack.labels_on(n))}
    wanted_open = {n for n, i in by_number.items() if i["state"] == "open" and i["prediction"]["labels"]}
    assert labelled == wanted_open and done["labelled"] == len(wanted_open) > 0

    # /api/stats covers the history: the same as computed here from the simulator's dates.
    expected = independent_stats(made, issues)
    for group in ("ptm", "non_ptm"):
        days = expected[group]
        assert stats[group]["n"] == len(days) > 100
        assert stats[group]["mean"] == pytest.approx(statistics.fmean(days))
        assert stats[group]["median"] == statistics.median(days)
        assert stats[group]["max"] == max(days)
    p = scipy_stats.mannwhitneyu(expected["ptm"], expected["non_ptm"], alternative="greater").pvalue
    assert stats["mann_whitney"]["p"] == pytest.approx(p) and p < 0.05


# In process, against the simulator through httpx's ASGI transport ------------------------

SMALL_REPO = "octo/models"
SMALL_INSTALLATION = 5


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return load_classifier("baseline", None)


@pytest.fixture
def services(make_settings: Callable[..., Settings], database_url: str, github_factory: GitHubClientFactory,
             github_sim: GitHubSimulator, classifier: Classifier) -> Iterator[Services]:
    github_sim.add_installation(SMALL_INSTALLATION, "octo", [SMALL_REPO])
    settings = make_settings(database_url=database_url)
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    yield Services(settings=settings, db=db, classifier=classifier, policy=POLICY, github=github_factory)
    db.dispose()


def scheduled(services: Services, sim: GitHubSimulator) -> int:
    with services.db.session() as session:
        upsert_installation(session, {"id": SMALL_INSTALLATION, "account": {"login": "octo"}})
        repo = upsert_repository(session, {"id": sim.state.find_repo(SMALL_REPO).id, "full_name": SMALL_REPO},
                                 SMALL_INSTALLATION)
        schedule_backfill(session, repo.id, SMALL_INSTALLATION)
        return repo.id


def predictions_per_issue(services: Services) -> dict[int, int]:
    with services.db.session() as session:
        rows = session.execute(select(Issue.number, func.count(Prediction.id))
                               .outerjoin(Prediction, Prediction.issue_id == Issue.id).group_by(Issue.number))
        return dict(rows.all())


def app_labels(sim: GitHubSimulator, number: int) -> set[str]:
    return {label["name"] for label in sim.issue(SMALL_REPO, number)["labels"] if POLICY.is_app_label(label["name"])}


@pytest.mark.parametrize("mode", ["open", "all", "none"])
async def test_which_issues_get_labels_humans_first(services: Services, github_sim: GitHubSimulator,
                                                    mode: str) -> None:
    github_sim.set_file(SMALL_REPO, ".github/ptm-triage.yml", f"backfill:\n  labels: {mode}\n")
    preset = POLICY.label_name("HR")
    numbers = {
        "open": github_sim.add_issue(SMALL_REPO, PTM_TITLE, PTM_BODY)["number"],
        "closed": github_sim.add_issue(SMALL_REPO, PTM_TITLE, PTM_BODY, state="closed")["number"],
        "preset": github_sim.add_issue(SMALL_REPO, PTM_TITLE, PTM_BODY, labels=[preset])["number"],
        "bot": github_sim.add_issue(SMALL_REPO, PTM_TITLE, PTM_BODY, user="dependabot[bot]", user_type="Bot")["number"],
        "other": github_sim.add_issue(SMALL_REPO, OTHER_TITLE, OTHER_BODY)["number"],
    }
    done = await backfill.run(services, scheduled(services, github_sim))

    written = {name for name, number in numbers.items() if app_labels(github_sim, number) - {preset}}
    assert written == {"none": set(), "open": {"open"}, "all": {"open", "closed"}}[mode]
    assert app_labels(github_sim, numbers["preset"]) == {preset}
    assert done["status"] == "done" and done["imported"] == 5 and done["labelled"] == len(written)
    assert predictions_per_issue(services) == {n: int(name != "bot") for name, n in numbers.items()}
    with services.db.session() as session:
        assert session.scalar(select(Issue.labels_locked_by_human).where(Issue.number == numbers["preset"]))


async def test_an_interrupted_page_is_done_again_without_doubling(services: Services,
                                                                   github_sim: GitHubSimulator) -> None:
    numbers = [github_sim.add_issue(SMALL_REPO, PTM_TITLE, PTM_BODY)["number"] for _ in range(150)]
    github_sim.fail_next("POST", f"/repos/{SMALL_REPO}/issues/130/labels", 404)  # not retried: page 2 stops midway
    repository_id = scheduled(services, github_sim)

    failed = await backfill.run(services, repository_id)
    assert failed["status"] == "failed" and "404" in failed["error"]
    assert (failed["next_page"], failed["imported"], failed["labelled"]) == (2, 100, 100)
    assert sum(predictions_per_issue(services).values()) == 129

    with services.db.session() as session:  # as an installation event does: back to pending, same page
        schedule_backfill(session, repository_id, SMALL_INSTALLATION)
    done = await backfill.run(services, repository_id)
    assert done["status"] == "done" and done["error"] is None
    assert (done["next_page"], done["last_page"], done["imported"], done["labelled"]) == (3, 2, 150, 150)
    assert predictions_per_issue(services) == {n: 1 for n in numbers}
    assert all(POLICY.ptm_label in app_labels(github_sim, n) for n in numbers)


def limited_repository(sim: GitHubSimulator, services: Services) -> int:
    """30 PTM issues, the app's labels there already (an earlier installation), two requests a minute."""
    sim.add_labels(SMALL_REPO, [spec.name for spec in POLICY.all_labels()])
    for _ in range(30):
        sim.add_issue(SMALL_REPO, PTM_TITLE, PTM_BODY)
    sim.rate_limit, sim.rate_limit_window_s = 2, 60
    return scheduled(services, sim)


async def test_the_backfill_sleeps_until_each_reset_instead_of_drawing_a_403(
    services: Services, github_sim: GitHubSimulator, patient: RetryPolicy, sleeps: list[float],
) -> None:
    """On the test's clock: every answer, 404s and 422s too, tells the client what is left and when it resets."""
    done = await backfill.run(services, limited_repository(github_sim, services), retry=patient)
    assert done["status"] == "done" and (done["imported"], done["labelled"]) == (30, 30)
    assert limit_errors(github_sim) == []
    windows = {x.response_headers["x-ratelimit-reset"] for x in github_sim.exchanges if x.path.startswith("/repos/")}
    assert len(sleeps) == len(windows) - 1 > 10, "one sleep for each window it used up"
    assert all(0 < s <= github_sim.rate_limit_window_s + 1 for s in sleeps), "until the reset, no longer"


async def test_a_backfill_that_did_not_wait_would_draw_a_403(
    services: Services, github_sim: GitHubSimulator, patient: RetryPolicy, sleeps: list[float],
) -> None:
    """The simulator holds the limit on the test's clock, so the test above fails if the client asks on."""
    asks_on = replace(patient, max_wait_s=0)
    failed = await backfill.run(services, limited_repository(github_sim, services), retry=asks_on)
    assert failed["status"] == "failed" and "403" in failed["error"] and "rate limit" in failed["error"]
    assert limit_errors(github_sim) == [403] and sleeps == []


async def test_a_limit_met_reading_the_configuration_is_no_missing_file(
    services: Services, github_sim: GitHubSimulator, patient: RetryPolicy,
) -> None:
    """Taken for "no file", it would label a repository whose file turns the app off."""
    github_sim.set_file(SMALL_REPO, ".github/ptm-triage.yml", "enabled: false\n")
    number = github_sim.add_issue(SMALL_REPO, PTM_TITLE, PTM_BODY)["number"]
    github_sim.fail_next("GET", f"/repos/{SMALL_REPO}/contents/", 403, headers={"x-ratelimit-remaining": "0"},
                         message=f"API rate limit exceeded for installation ID {SMALL_INSTALLATION}.")
    repository_id = scheduled(services, github_sim)
    failed = await backfill.run(services, repository_id, retry=replace(patient, max_wait_s=0))
    assert failed["status"] == "failed" and "403" in failed["error"]

    with services.db.session() as session:  # the next installation event
        schedule_backfill(session, repository_id, SMALL_INSTALLATION)
    done = await backfill.run(services, repository_id, retry=patient)
    assert done["status"] == "done" and done["imported"] == 1 and not app_labels(github_sim, number)
    assert predictions_per_issue(services) == {number: 0}


async def test_dry_run_says_backfill_cannot_run(make_settings: Callable[..., Settings],
                                                caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(backfill.BackfillUnavailable, match="dry-run"):
        await backfill.run_backfill_cli(make_settings(), SMALL_REPO, progress=False)
    services = build_services(make_settings())
    runner = backfill.BackfillRunner(services)
    await runner.start()
    await runner.stop()
    await services.aclose()
    assert "backfills stay pending: the service is in dry-run" in caplog.text


def test_cli_finds_the_installation_and_a_second_run_starts_over(
    settings_for: Callable[..., Settings], simulator: GitHubSimulator,
) -> None:
    numbers = [simulator.add_issue(REPO, PTM_TITLE, PTM_BODY)["number"] for _ in range(3)]
    simulator.add_issue(REPO, "Bump torch", "Automated.", pull_request=True)
    settings = settings_for()
    first = asyncio.run(backfill.run_backfill_cli(settings, REPO, progress=False))
    again = asyncio.run(backfill.run_backfill_cli(settings, REPO, progress=False))
    assert first["status"] == again["status"] == "done"
    assert first["imported"] == again["imported"] == 3 and again["labelled"] == 3
    assert {"/app/installations", "/installation/repositories"} <= {x.path for x in simulator.exchanges}
    db = Database(settings.sqlalchemy_url)
    with db.session() as session:
        assert repository_by_name(session, REPO).installation_id == INSTALLATION
        assert session.scalar(select(func.count()).select_from(Prediction)) == len(numbers)
    db.dispose()
