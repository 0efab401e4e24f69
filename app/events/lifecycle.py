"""Resolution tracking: openings, closures, reopenings, deletions and transfers of issues.

Which closure counts: the one that currently stands. A reopen clears ``closed_at``;
the next close sets it again, so resolution time runs from creation to the final close
(every close and reopen stays in ``issue_events``). A deleted issue, or one transferred
to another repository, leaves the statistics of its repository; a transferred issue
arrives in its new repository as ``issues.opened``. An issue converted to a discussion
reaches the app as ``issues.deleted`` and is treated like one.
"""

from __future__ import annotations

import logging
from datetime import datetime

from gidgethub import routing, sansio
from sqlalchemy.orm import Session

from app.events.tracking import track_issue
from app.services import Services
from app.store.models import Issue, utcnow
from app.store.queries import add_issue_event, parse_github_time

log = logging.getLogger(__name__)
router = routing.Router()


def _when(event: sansio.Event, key: str) -> datetime:
    return parse_github_time(event.data["issue"].get(key)) or utcnow()


def record_opening(session: Session, issue: Issue, event: sansio.Event) -> None:
    """The opening of a tracked issue (``events/issue_text.py`` records it before triage)."""
    add_issue_event(session, issue, "opened", issue.created_at, event.delivery_id)


@router.register("issues", action="closed")
async def issue_closed(event: sansio.Event, services: Services) -> None:
    with services.db.session() as session:
        _, issue, _ = track_issue(session, event)
        closed_at = _when(event, "closed_at")
        issue.state, issue.closed_at = "closed", closed_at
        issue.state_reason = event.data["issue"].get("state_reason")
        add_issue_event(session, issue, "closed", closed_at, event.delivery_id)


@router.register("issues", action="reopened")
async def issue_reopened(event: sansio.Event, services: Services) -> None:
    with services.db.session() as session:
        _, issue, _ = track_issue(session, event)
        issue.state, issue.closed_at, issue.state_reason = "open", None, None
        issue.reopen_count += 1
        add_issue_event(session, issue, "reopened", _when(event, "updated_at"), event.delivery_id)


@router.register("issues", action="deleted")
async def issue_deleted(event: sansio.Event, services: Services) -> None:
    with services.db.session() as session:
        _, issue, _ = track_issue(session, event)
        issue.deleted_at = utcnow()
        add_issue_event(session, issue, "deleted", issue.deleted_at, event.delivery_id)


@router.register("issues", action="transferred")
async def issue_transferred(event: sansio.Event, services: Services) -> None:
    """The issue left this repository; the new one arrives as ``issues.opened`` in its new home."""
    with services.db.session() as session:
        _, issue, _ = track_issue(session, event)
        issue.transferred_at = utcnow()
        add_issue_event(session, issue, "transferred", issue.transferred_at, event.delivery_id)


@router.register("issues", action="locked")
@router.register("issues", action="unlocked")
async def issue_lock_changed(event: sansio.Event, services: Services) -> None:
    """Locking changes who may comment, not whether the issue is resolved: recorded, nothing more."""
    with services.db.session() as session:
        _, issue, _ = track_issue(session, event)
        add_issue_event(session, issue, event.data["action"], _when(event, "updated_at"), event.delivery_id)
