"""GET /dashboard: the statistics of /api/stats as a page."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from app.stats.resolution import compute_stats
from app.web.api import issue_records
from app.web.render import render_dashboard

router = APIRouter()


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, repo: str | None = Query(None, description="owner/name")) -> HTMLResponse:
    name, records = await run_in_threadpool(issue_records, request.app.state.services, repo)
    title = f"PTM Triage: {name}" if name else "PTM Triage"
    return HTMLResponse(render_dashboard(compute_stats(records, repo=name), title=title))
