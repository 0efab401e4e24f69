"""The dashboard: an overview of every repository, a page per repository, and exports of what a
page shows. The figures are the ones ``/api/stats`` gives for the same filters."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import plotly
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import escape
from sqlalchemy.orm import Session

from app.computed import Recipe
from app.formatting import corrected_text, fmt_number, fmt_p, verdict
from app.services import Services
from app.stats.resolution import Filters, compute_stats, group_of
from app.stats.trends import monthly
from app.store.models import Repository
from app.store.queries import Scope, largest_repositories
from app.taxonomy import ISSUE_TYPES, THEMES
from app.web.access import Viewer, ViewerDep
from app.web.api import balanced, stats_filters, tracked_repository
from app.web.charts import chart_payload, monthly_flow, monthly_share, resolution_boxes, theme_boxes
from app.web.deps import ServicesDep, SessionDep
from app.workflow.records import repository_records
from app.workflow.repository_view import IssueRow, corrections, issue_rows

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
templates.env.globals.update(fmt_number=fmt_number, fmt_p=fmt_p, THEMES=THEMES, ISSUE_TYPES=ISSUE_TYPES)
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
LATEST = 20
STANDING_PAGES = 50
VIEWER_MARK = "<!--viewer-->"  # where base.html says who is signed in
OPEN_SHOWN = 100  # the oldest open PTM issues listed; the export has them all
GROUP_NAMES = {"ptm": "PTM-related", "non_ptm": "not PTM-related", "unsure": "the model was unsure",
               "unclassified": "not classified yet"}
EXPORT_COLUMNS = ("repo", "number", "url", "title", "state", "group", "ptm_score", "themes", "type", "created",
                  "closed", "resolution_days", "labels", "labels_set_by_person")


@router.get("/static/plotly.min.js", include_in_schema=False)
def plotly_js() -> FileResponse:
    """plotly.js as the installed plotly package carries it: nothing is fetched from the internet."""
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})


def _query(filters: Filters) -> str:
    choice = {k: v for k, v in filters.choice().items() if v is not None and v is not True}
    return "&".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in choice.items())


def _shown(rows: Sequence[IssueRow], filters: Filters) -> list[IssueRow]:
    return [row for row in rows if filters.exclusion(row.record) is None]


def _for(viewer: Viewer, request: Request, page: str) -> HTMLResponse:
    """A page as this viewer sees it: who is signed in, or a link to sign in. (The rest of a page is
    the same for everyone who may read it, and kept as such by ``app.computed``.)"""
    if viewer.kind == "user":
        bar = f'Signed in as <strong>{escape(viewer.name)}</strong> · <a href="/logout">Sign out</a>'
    elif viewer.kind == "token":
        bar = f"API token <strong>{escape(viewer.name)}</strong>"
    elif request.app.state.oauth is not None:
        bar = f'<a href="/login?{urlencode({"next": request.url.path})}">Sign in with GitHub</a> to see private repositories'
    else:
        bar = ""
    return HTMLResponse(page.replace(VIEWER_MARK, bar, 1))


@router.get("/dashboard", response_class=HTMLResponse)
def overview(request: Request, services: ServicesDep, session: SessionDep, viewer: ViewerDep,
             repo: str | None = Query(None, description="owner/name: that repository's page"),
             filters: Filters = Depends(stats_filters)) -> Response:
    if repo:
        found = tracked_repository(session, repo, viewer)
        assert found is not None
        query = _query(filters)
        return RedirectResponse(f"/dashboard/{found.full_name}" + (f"?{query}" if query else ""), status_code=307)
    return _for(viewer, request, services.computed.answer(
        session, _overview_recipe(services, viewer.scope(session), filters)))


def standing_answers(services: Services) -> Callable[[Session], list[Recipe]]:
    """The answers kept current whether asked for or not (``Computed.keep_current``): the overview as
    anyone and as an operator sees it, and the pages of the ``STANDING_PAGES`` largest repositories as
    they first open, without filters (a small repository's page takes milliseconds)."""
    anyone = Viewer("anonymous", sees_public=services.settings.public_repositories)

    def recipes(session: Session) -> list[Recipe]:
        return [_overview_recipe(services, anyone.scope(session), Filters()),
                _overview_recipe(services, None, Filters()),
                *(_page_recipe(services, found, Filters()) for found in largest_repositories(session, STANDING_PAGES))]

    return recipes


def _overview_recipe(services: Services, scope: Scope, filters: Filters) -> Recipe:
    return ("overview", filters), scope, lambda session: _overview(services, session, scope, filters)


def _page_recipe(services: Services, found: Repository, filters: Filters) -> Recipe:
    return (("repository page", found.full_name, filters), found.id,
            lambda session: _repository_page(services, session, found, filters))


def _overview(services: Services, session: Session, scope: Scope, filters: Filters) -> str:
    records = repository_records(session, scope, services.policy)
    stats = compute_stats(records, filters=filters)
    open_ptm: dict[str, int] = {}
    for record in records:
        if record.closed is None and record.ptm and filters.exclusion(record) is None:
            open_ptm[record.repo] = open_ptm.get(record.repo, 0) + 1
    repositories = [
        {"name": name, "group": group, "verdict": verdict(group), "open_ptm": open_ptm.get(name, 0),
         "share": _share(group)}
        for name, group in stats["repositories"].items()
    ]
    return templates.get_template("overview.html").render(
        title="PTM Triage", repositories=repositories, overall=stats["overall"], filters=filters,
        query=_query(filters), action="/dashboard",
    )


def _share(group: Any) -> str:
    labelled = group["ptm"]["n"] + group["non_ptm"]["n"] + group["open"]["ptm"] + group["open"]["non_ptm"]
    return "—" if not labelled else f"{100 * (group['ptm']['n'] + group['open']['ptm']) / labelled:.0f}%"


@router.get("/dashboard/{owner}/{name}", response_class=HTMLResponse)
def repository_page(owner: str, name: str, request: Request, services: ServicesDep, session: SessionDep,
                    viewer: ViewerDep, filters: Filters = Depends(stats_filters)) -> HTMLResponse:
    found = tracked_repository(session, f"{owner}/{name}", viewer)
    assert found is not None
    return _for(viewer, request, services.computed.answer(session, _page_recipe(services, found, filters)))


def _repository_page(services: Services, session: Session, found: Repository, filters: Filters) -> str:
    rows = issue_rows(session, found.id, services.policy)
    records = [r.record for r in rows]
    stats = compute_stats(records, repo=found.full_name, filters=filters)
    group = stats["overall"]
    shown = _shown(rows, filters)
    months = monthly(records, filters)
    charts = [monthly_share(months), resolution_boxes(group), theme_boxes(group), monthly_flow(months)]
    comparison = balanced(records, filters, 0, found.full_name)
    open_ptm = sorted((r for r in shown if r.record.closed is None and r.record.ptm), key=lambda r: r.record.created)
    latest = sorted((r for r in shown if r.triaged_at is not None), key=lambda r: r.triaged_at or 0, reverse=True)
    return templates.get_template("repository.html").render(
        title=f"PTM Triage: {found.full_name}", repo=found.full_name, group=group, filters=filters,
        query=_query(filters), action=f"/dashboard/{found.full_name}",
        verdict=verdict(group), corrected=corrected_text(group["corrected"]), charts=charts,
        payload=json.dumps(chart_payload(charts)).replace("</", "<\\/"),
        open_ptm=open_ptm[:OPEN_SHOWN], open_ptm_total=len(open_ptm), latest=latest[:LATEST],
        corrections=corrections(session, found, services.policy, rows),
        balanced=comparison["pooled"], group_names=GROUP_NAMES, group_of=group_of,
    )


@router.get("/dashboard/{owner}/{name}/issues.{fmt}")
def export(owner: str, name: str, fmt: str, services: ServicesDep, session: SessionDep, viewer: ViewerDep,
           filters: Filters = Depends(stats_filters)) -> Response:
    """The issues a repository page counts with these filters, as CSV or JSON."""
    if fmt not in ("csv", "json"):
        raise HTTPException(404, f"no export as {fmt!r}; csv or json")
    found = tracked_repository(session, f"{owner}/{name}", viewer)
    assert found is not None
    lines = [_export_line(row) for row in _shown(issue_rows(session, found.id, services.policy), filters)]
    filename = f"{found.full_name.replace('/', '_')}-issues.{fmt}"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if fmt == "json":
        return Response(json.dumps({"repo": found.full_name, "filters": filters.choice(), "issues": lines}, indent=1),
                        media_type="application/json", headers=disposition)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    for line in lines:
        writer.writerow({**line, "themes": " ".join(line["themes"]), "labels": "; ".join(line["labels"])})
    return Response(out.getvalue(), media_type="text/csv", headers=disposition)


def _export_line(row: IssueRow) -> dict[str, Any]:
    record = row.record
    return {
        "repo": record.repo, "number": record.number, "url": row.url, "title": row.title, "state": row.state,
        "group": group_of(record), "ptm_score": row.ptm_score, "themes": list(record.themes), "type": record.type,
        "created": record.created.isoformat(), "closed": record.closed.isoformat() if record.closed else None,
        "resolution_days": record.days, "labels": list(row.labels), "labels_set_by_person": row.labels_set_by_person,
    }
