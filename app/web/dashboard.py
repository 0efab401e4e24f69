"""GET /dashboard: the statistics of /api/stats as a page, raw and balanced."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from app.stats.comparison import balanced_comparison
from app.stats.resolution import compute_stats
from app.web.api import METHOD_HELP, Method, issue_records
from app.web.render import render_dashboard

router = APIRouter()


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(
    request: Request,
    repo: str | None = Query(None, description="owner/name"),
    method: Method = Query("balanced", description=METHOD_HELP + " (raw hides the balanced section)"),
    seed: int = Query(0),
) -> HTMLResponse:
    name, records = await run_in_threadpool(issue_records, request.app.state.services, repo)
    title = f"PTM Triage: {name}" if name else "PTM Triage"
    balanced = balanced_comparison(records, seed=seed, repo=name) if method == "balanced" else None
    return HTMLResponse(render_dashboard(compute_stats(records, repo=name), title=title, balanced=balanced))
