"""``ptm-triage demo``: the example deliveries go through the real webhook path into a database of its own."""

from __future__ import annotations

from app.demo import REPOSITORIES, deliveries, demo_issues, run_demo


def test_demo_issues_are_fixed_and_shaped_like_github_deliveries() -> None:
    issues = demo_issues()
    assert issues == demo_issues() and len(issues) == 60 * len(REPOSITORIES)
    sent = list(deliveries(issues))
    closed = [i for i in issues if i.closed is not None]
    assert len(sent) == len(issues) + len(closed)
    assert [p["action"] for _, p in sent] == ["opened"] * len(issues) + ["closed"] * len(closed)
    event, last = sent[-1]
    assert event == "issues" and last["issue"]["state"] == "closed" and last["issue"]["closed_at"]


def test_demo_processes_every_delivery_and_counts_the_closed_issues(capsys) -> None:
    summary = run_demo("127.0.0.1", 0, once=True)
    issues = demo_issues()
    closed = sum(i.closed is not None for i in issues)
    assert summary["deliveries"] == {"done": len(issues) + closed} == {"done": summary["sent"]}
    assert 0 < summary["ptm_closed"] and 0 < summary["non_ptm_closed"]
    assert summary["ptm_closed"] + summary["non_ptm_closed"] <= closed
    assert f"dashboard: {summary['url']}/dashboard" in capsys.readouterr().out
