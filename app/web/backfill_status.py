"""``GET /api/backfill``: how the import of each repository's existing issues is going."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from app.store.queries import backfills as backfills_of
from app.web.access import ViewerDep
from app.web.api import scope_of, tracked_repository
from app.web.deps import ServicesDep, SessionDep
from app.web.schemas import Backfills
from app.workflow import backfill

router = APIRouter()


@router.get("/api/backfill", response_model=Backfills)
def backfills(services: ServicesDep, session: SessionDep, viewer: ViewerDep,
              repo: str | None = Query(None, description="owner/name")) -> dict[str, Any]:
    found = tracked_repository(session, repo, viewer)
    rows = backfills_of(session, scope_of(session, found, viewer))
    body: dict[str, Any] = {"dry_run": services.dry_run, "backfills": [backfill.status_json(b) for b in rows]}
    if services.dry_run:
        body["note"] = backfill.DRY_RUN_MESSAGE
    return body
