"""``GET /api/backfill``: how the import of each repository's existing issues is going."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from app.web.api import tracked_repository
from app.workflow import backfill

router = APIRouter()


@router.get("/api/backfill")
async def backfills(request: Request, repo: str | None = Query(None, description="owner/name")) -> dict[str, Any]:
    services = request.app.state.services

    def read() -> list[dict[str, Any]]:
        with services.db.session() as session:
            found = tracked_repository(session, repo)
        return backfill.statuses(services, found.id if found else None)

    body: dict[str, Any] = {"dry_run": services.dry_run, "backfills": await run_in_threadpool(read)}
    if services.dry_run:
        body["note"] = backfill.DRY_RUN_MESSAGE
    return body
