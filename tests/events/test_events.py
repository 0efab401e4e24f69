"""How the webhook handlers are composed: one handler per event action, its steps in order."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from gidgethub import sansio

from app.events import issue_text, router
from tests.conftest import WEBHOOK_EXAMPLES

EXAMPLES = sorted(WEBHOOK_EXAMPLES.glob("*/*.json"))


def event_of(path: Path) -> sansio.Event:
    return sansio.Event(json.loads(path.read_bytes()), event=path.parent.name, delivery_id="d-1")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_delivery_reaches_two_handlers(path: Path) -> None:
    assert len(router.fetch(event_of(path))) <= 1


@pytest.mark.parametrize("action", ["opened", "edited"])
async def test_an_issue_is_tracked_before_it_is_triaged(action: str, monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[str] = []

    async def triage(event: sansio.Event, services: Any, tracked: Any) -> None:
        steps.append(f"triage {tracked}")

    def track(session: Any, event: sansio.Event) -> tuple[str, str, bool]:
        steps.append("track")
        return "repo", "issue", False

    monkeypatch.setattr(issue_text, "track_issue", track)
    monkeypatch.setattr(issue_text, "record_opening", lambda session, issue, e: steps.append(f"opening of {issue}"))
    monkeypatch.setattr(issue_text.TrackedIssue, "of", staticmethod(lambda repo, issue: f"{repo}/{issue}"))
    monkeypatch.setattr(issue_text, "triage_issue", triage)

    class Db:
        def session(self) -> Any:
            return nullcontext(None)

    services = type("Services", (), {"db": Db()})()
    event = sansio.Event({"action": action, "issue": {"number": 1}, "repository": {"id": 1}}, event="issues",
                         delivery_id="d-2")
    await router.dispatch(event, services)
    opening = ["opening of issue"] if action == "opened" else []
    assert steps == ["track", *opening, "triage repo/issue"]
