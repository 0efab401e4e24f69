"""``repository`` events: a repository made private or public, renamed or transferred, as the
access control reads it (``app.web.access``): a repository made private is hidden at once from
whoever may not read it."""

from __future__ import annotations

import logging

from gidgethub import routing, sansio

from app.events.tracking import field, installation_id
from app.services import Services
from app.store.models import Repository
from app.store.queries import upsert_repository

log = logging.getLogger(__name__)
router = routing.Router()


@router.register("repository", action="privatized")
@router.register("repository", action="publicized")
@router.register("repository", action="renamed")
@router.register("repository", action="transferred")
async def repository_changed(event: sansio.Event, services: Services) -> None:
    data = field(event.data, "repository")
    field(data, "id")
    field(data, "full_name")
    with services.db.session() as session:
        if session.get(Repository, data["id"]) is None:  # not one the app tracks
            return
        repo = upsert_repository(session, data, installation_id(event))
        log.info("repository %s %s; private: %s", repo.full_name, event.data.get("action"), repo.private)
