"""GET /dashboard: the statistics of /api/stats as a page, raw and balanced."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from app.stats.resolution import Filters, compute_stats
from app.web.api import METHOD_HELP, Method, balanced, issue_records, stats_filters
from app.web.deps import ServicesDep, SessionDep
from app.web.render import render_dashboard

router = APIRouter()


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(
    services: ServicesDep,
    session: SessionDep,
    repo: str | None = Query(None, description="owner/name"),
    method: Method = Query("balanced", description=METHOD_HELP + " (raw hides the balanced section)"),
    seed: int = Query(0),
    filters: Filters = Depends(stats_filters),
) -> HTMLResponse:
    name, records = issue_records(session, services, repo)
    title = f"PTM Triage: {name}" if name else "PTM Triage"
    comparison = balanced(records, filters, seed, name) if method == "balanced" else None
    raw = compute_stats(records, repo=name, filters=filters)
    return HTMLResponse(render_dashboard(raw, title=title, balanced=comparison))
