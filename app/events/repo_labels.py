"""A repository's labels renamed or deleted: keep the tracked issues' label lists true."""

from __future__ import annotations

import logging

from gidgethub import routing, sansio
from sqlalchemy import select

from app.events.tracking import field
from app.services import Services
from app.store.models import Issue
from app.store.queries import repository_by_name

log = logging.getLogger(__name__)
router = routing.Router()


def _rewrite(services: Services, full_name: str, old: str, new: str | None) -> int:
    """Replace (or, with ``new`` None, drop) label ``old`` on every tracked issue of the repository."""
    services.known_labels.get(full_name, set()).discard(old.lower())
    changed = 0
    with services.db.session() as session:
        repo = repository_by_name(session, full_name)
        if repo is None:
            return 0
        for issue in session.scalars(select(Issue).where(Issue.repository_id == repo.id)):
            if any(name.lower() == old.lower() for name in issue.labels):
                issue.labels = [
                    n for n in ((new if n.lower() == old.lower() else n) for n in issue.labels) if n is not None
                ]
                changed += 1
    return changed


@router.register("label", action="edited")
async def label_edited(event: sansio.Event, services: Services) -> None:
    old = ((event.data.get("changes") or {}).get("name") or {}).get("from")
    if not old:
        return
    full_name, new = field(event.data, "repository", "full_name"), field(event.data, "label", "name")
    changed = _rewrite(services, full_name, old, new)
    log.info("%s: label %r renamed %r on %d tracked issues", full_name, old, new, changed)


@router.register("label", action="deleted")
async def label_deleted(event: sansio.Event, services: Services) -> None:
    full_name, name = field(event.data, "repository", "full_name"), field(event.data, "label", "name")
    changed = _rewrite(services, full_name, name, None)
    log.info("%s: label %r deleted; removed from %d tracked issues", full_name, name, changed)
