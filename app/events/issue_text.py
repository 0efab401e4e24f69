"""``issues.opened`` and ``issues.edited``: the deliveries that bring an issue's text, one handler each.

gidgethub runs a route's handlers in no fixed order, so the steps of one action are one
handler's, in this order: track the issue (its row and, when opened, its opening), then
triage it with what tracking read (``TrackedIssue``), which writes its labels.
"""

from __future__ import annotations

from gidgethub import routing, sansio

from app.events.issue_triage import TrackedIssue, triage_issue
from app.events.lifecycle import record_opening
from app.events.tracking import track_issue
from app.services import Services

router = routing.Router()


@router.register("issues", action="opened")
async def issue_opened(event: sansio.Event, services: Services) -> None:
    with services.db.session() as session:
        repo, issue, _ = track_issue(session, event)
        record_opening(session, issue, event)
        tracked = TrackedIssue.of(repo, issue)
    await triage_issue(event, services, tracked)


@router.register("issues", action="edited")
async def issue_edited(event: sansio.Event, services: Services) -> None:
    with services.db.session() as session:
        tracked = TrackedIssue.of(*track_issue(session, event)[:2])
    await triage_issue(event, services, tracked)
