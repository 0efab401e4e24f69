"""Backfill: importing a repository's existing issues, on SQLite and PostgreSQL."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from scipy import stats as scipy_stats
from sqlalchemy import func, select

from app import backfill
from app.config import Settings
from app.github.simulator import GitHubSimulator
from app.services import Services, build_services
from app.store.db import Database
from app.store.models import Issue, IssueEvent, Prediction
from app.store.queries import repository_by_name
from app.web.main import create_app
from tests.backfill_data import MadeIssue, populate
from tests.e2e import INSTALLATION, POLICY, REPO, Stack
from tests.servers import serve

N_ISSUES = 2500


def backfill_of(stack: Stack) -> dict[str, Any]:
    (only,) = stack.get("/api/backfill", repo=REPO)["backfills"]
    return only


def wait_for(stack: Stack, done: Callable[[dict[str, Any]], bool], timeout_s: float = 60,
             meanwhile: Callable[[], None] = lambda: None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        meanwhile()
        found = stack.get("/api/backfill", repo=REPO)["backfills"]
        if found and done(found[0]):
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"backfill not there in {timeout_s}s: {found}")


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


def test_installation_backfills_every_issue_once_through_limits_failures_and_a_restart(
    settings_for: Callable[..., Settings], simulator: GitHubSimulator, database_url: str,
) -> None:
    made = populate(simulator, REPO, N_ISSUES)
    simulator.rate_limit_window_s = 1
    with serve(create_app(settings_for())) as url:
        stack = Stack(simulator, url)
        assert stack.send("installation", simulator.installation_payload("created", INSTALLATION)).status_code == 202
        wait_for(stack, lambda b: b["next_page"] > 4)
    stopped = counts(database_url)
    assert 0 < stopped["issues"] < N_ISSUES

    # The next process resumes; the first page it asks for fails once, and it uses up the rate limit.
    simulator.fail_next("GET", f"/repos/{REPO}/issues", 502)
    simulator.rate_limit = 3

    def lift_limit_once_used_up() -> None:
        if rate_limit_used_up(simulator):
            simulator.rate_limit = 5000

    with serve(create_app(settings_for())) as url:
        stack = Stack(simulator, url)
        done = wait_for(stack, lambda b: b["status"] != "running", meanwhile=lift_limit_once_used_up)
        issues = all_issues(stack)
        stats = stack.get("/api/stats", repo=REPO)["overall"]
        assert stack.get("/api/backfill")["backfills"] == [done]

    last_page = -(-max(i.number for i in made) // backfill.PER_PAGE)
    assert done["status"] == "done" and done["error"] is None
    assert (done["imported"], done["last_page"], done["next_page"]) == (N_ISSUES, last_page, last_page + 1)
    assert any(x.status == 502 and x.path == f"/repos/{REPO}/issues" for x in simulator.exchanges)
    assert rate_limit_used_up(simulator)
    assert not any(x.status == 403 for x in simulator.exchanges)  # it waited for the reset instead

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
    assert labelled == wanted_open and 0 < done["labelled"] <= len(wanted_open)

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
