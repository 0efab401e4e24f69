"""Installations and the repositories they cover."""

from __future__ import annotations

import logging
from typing import Any

from gidgethub import routing, sansio
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.events.tracking import field
from app.services import Services
from app.store.models import Repository, utcnow
from app.store.queries import schedule_backfill, upsert_installation, upsert_repository

log = logging.getLogger(__name__)
router = routing.Router()


def _add_repositories(session: Session, installation_id: int, repos: list[dict[str, Any]]) -> None:
    """Track the repositories and schedule the import of their existing issues."""
    for data in repos:
        repo = upsert_repository(session, {"id": field(data, "id"), "full_name": field(data, "full_name"),
                                           "private": data.get("private")}, installation_id)
        schedule_backfill(session, repo.id, installation_id)


@router.register("installation", action="created")
@router.register("installation", action="new_permissions_accepted")
@router.register("installation", action="unsuspend")
async def installation_active(event: sansio.Event, services: Services) -> None:
    data = field(event.data, "installation")
    field(data, "id")
    with services.db.session() as session:
        inst = upsert_installation(session, data)
        inst.suspended_at = None
        _add_repositories(session, inst.id, event.data.get("repositories") or [])
    services.backfills_scheduled()
    log.info("installation %s (%s) %s", data["id"], inst.account_login, event.data.get("action"))


@router.register("installation", action="suspend")
async def installation_suspended(event: sansio.Event, services: Services) -> None:
    data = field(event.data, "installation")
    with services.db.session() as session:
        inst = upsert_installation(session, data)
        inst.suspended_at = utcnow()


@router.register("installation", action="deleted")
async def installation_deleted(event: sansio.Event, services: Services) -> None:
    data = field(event.data, "installation")
    with services.db.session() as session:
        inst = upsert_installation(session, data)
        inst.deleted_at = utcnow()
        session.execute(
            update(Repository).where(Repository.installation_id == inst.id).values(removed_at=utcnow())
        )


@router.register("installation_repositories", action="added")
async def repositories_added(event: sansio.Event, services: Services) -> None:
    data = field(event.data, "installation")
    with services.db.session() as session:
        inst = upsert_installation(session, data)
        _add_repositories(session, inst.id, event.data.get("repositories_added") or [])
    services.backfills_scheduled()


@router.register("installation_repositories", action="removed")
async def repositories_removed(event: sansio.Event, services: Services) -> None:
    data = field(event.data, "installation")
    removed_ids = [field(repo, "id") for repo in event.data.get("repositories_removed") or []]
    with services.db.session() as session:
        upsert_installation(session, data)
        if removed_ids:
            session.execute(
                update(Repository).where(Repository.id.in_(removed_ids)).values(removed_at=utcnow())
            )
