"""JSON routes: health, tracked issues, resolution statistics."""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy.orm import Session

from app.stats.comparison import balanced_comparison
from app.stats.resolution import Filters, IssueRecord, compute_stats, resolution_days
from app.stats.results import Balanced, Stats
from app.store.models import Issue, Prediction, RepoConfig, Repository
from app.store.queries import (
    Scope,
    delivery_counts,
    latest_predictions,
    repository_by_name,
    tracked_issues,
)
from app.taxonomy import ISSUE_TYPES
from app.web.access import Viewer, ViewerDep
from app.web.deps import ServicesDep, SessionDep
from app.web.schemas import Health, IssuePage, RepositoryConfig
from app.workflow import repo_config, repo_share
from app.workflow.records import repository_records

router = APIRouter()
REPO_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def tracked_repository(session: Session, repo: str | None, viewer: Viewer) -> Repository | None:
    """The tracked repository named ``repo`` (None for all); 422 when malformed, 404 when unknown or
    when the viewer may not read it (the same answer: a private repository's name is not told)."""
    if repo is None:
        return None
    if not REPO_PATTERN.match(repo):
        raise HTTPException(422, f"repo must look like owner/name, got {repo!r}")
    found = repository_by_name(session, repo)
    if found is None or not viewer.may_read(found):
        hint = " (or you may not read it: sign in at /login)" if viewer.kind == "anonymous" else " (or you may not read it)"
        raise HTTPException(404, f"repository {repo!r} is not tracked{hint}")
    return found


def scope_of(session: Session, found: Repository | None, viewer: Viewer) -> Scope:
    """The repository asked for, or every one the viewer may read."""
    return found.id if found is not None else viewer.scope(session)


def _issue_json(issue: Issue, prediction: Prediction | None) -> dict[str, Any]:
    return {
        "repo": issue.repository.full_name,
        "number": issue.number,
        "title": issue.title,
        "state": issue.state,
        "labels": issue.labels,
        "created_at": issue.created_at.isoformat(),
        "closed_at": issue.closed_at.isoformat() if issue.closed_at else None,
        "resolution_days": resolution_days(issue.created_at, issue.closed_at) if issue.closed_at else None,
        "reopen_count": issue.reopen_count,
        "labels_locked_by_human": issue.labels_locked_by_human,
        "prediction": None if prediction is None else {
            "model": prediction.model_version,
            "ptm": prediction.ptm,
            "ptm_score": prediction.ptm_score,
            "themes": prediction.themes,
            "theme_scores": prediction.theme_scores,
            "subthemes": prediction.subthemes,
            "subtheme_scores": prediction.subtheme_scores,
            "type": prediction.type,
            "type_scores": prediction.type_scores,
            "labels": prediction.labels,
            "abstained": prediction.abstained,
            "abstain_reason": prediction.abstain_reason,
        },
    }


@router.get("/healthz", response_model=Health)
def healthz(services: ServicesDep, session: SessionDep) -> dict[str, Any]:
    return {
        "status": "ok",
        "model": services.classifier.version,
        "dry_run": services.dry_run,
        "database": services.db.backend,
        "deliveries": delivery_counts(session),
    }


Method = Literal["raw", "balanced"]
METHOD_HELP = "raw: every closed issue; balanced: the paper's method (equal PTM and non-PTM samples per repository)"


def _day(value: str | None, name: str) -> date | None:
    """A day from a query parameter; empty (a form's blank date field) is none."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"{name} must be a day as YYYY-MM-DD, got {value!r}") from None


def stats_filters(
    include_not_planned: bool = Query(True, description="count issues closed as not planned"),
    include_bots: bool = Query(True, description="count issues opened by bots"),
    since: str | None = Query(None, description="issues created on or after this day (YYYY-MM-DD)"),
    until: str | None = Query(None, description="issues created on or before this day (YYYY-MM-DD)"),
    theme: str | None = Query(None, description="PTM issues of this theme only (code, e.g. HR); non-PTM stay whole"),
    issue_type: str | None = Query(None, alias="type", description="issues of this type only: " + ", ".join(ISSUE_TYPES)),
) -> Filters:
    """Which issues count; by default every closed one, the paper's definition."""
    if issue_type and issue_type not in ISSUE_TYPES:
        raise HTTPException(422, f"unknown issue type {issue_type!r}; one of {', '.join(ISSUE_TYPES)}")
    try:
        return Filters(include_not_planned=include_not_planned, include_bots=include_bots, since=_day(since, "since"),
                       until=_day(until, "until"), theme=theme or None, type=issue_type or None)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None


def balanced(records: list[IssueRecord], filters: Filters, seed: int, repo: str | None) -> Balanced:
    kept = [r for r in records if filters.exclusion(r) is None]
    return balanced_comparison(kept, seed=seed, repo=repo)


@router.get("/api/stats", response_model=Stats | Balanced)
def stats(
    services: ServicesDep,
    session: SessionDep,
    viewer: ViewerDep,
    repo: str | None = Query(None, description="owner/name"),
    method: Method = Query("raw", description=METHOD_HELP),
    seed: int = Query(0, description="sampling seed of the balanced method"),
    filters: Filters = Depends(stats_filters),
) -> Stats | Balanced:
    found = tracked_repository(session, repo, viewer)
    name = found.full_name if found else None
    scope = scope_of(session, found, viewer)

    def answer(session: Session) -> Stats | Balanced:
        records = repository_records(session, scope, services.policy)
        if method == "balanced":
            return balanced(records, filters, seed, name)
        return compute_stats(records, repo=name, filters=filters)

    answered: Stats | Balanced = services.computed.answer(
        session, (("stats", name, method, seed, filters), scope, answer))
    return answered


@router.get("/api/issues", response_model=IssuePage)
def issues(
    session: SessionDep,
    viewer: ViewerDep,
    repo: str | None = Query(None, description="owner/name"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    found = tracked_repository(session, repo, viewer)
    tracked = tracked_issues(session, scope_of(session, found, viewer))
    page = tracked[offset: offset + limit]
    predictions = latest_predictions(session, [i.id for i in page])
    return {
        "total": len(tracked), "limit": limit, "offset": offset,
        "issues": [_issue_json(i, predictions.get(i.id)) for i in page],
    }


@router.get("/api/config", response_model=RepositoryConfig)
def config(services: ServicesDep, session: SessionDep, viewer: ViewerDep,
           repo: str = Query(..., description="owner/name")) -> dict[str, Any]:
    """The configuration in force for a repository, where it came from, and what was wrong with it;
    and the share of PTM-related issues its decisions are made at (``app.workflow.repo_share``)."""
    found = tracked_repository(session, repo, viewer)
    assert found is not None  # repo is required
    row = session.get(RepoConfig, found.id)
    loaded = repo_config.interpret(row, services.policy) if row else None
    return {
        "repo": found.full_name,
        "source": loaded.source if loaded else None,
        "error": loaded.error if loaded else None,
        "fetched_at": row.fetched_at.isoformat() if row else None,
        "settings": (loaded.settings if loaded else repo_config.RepoSettings()).model_dump(),
        "ptm_share": share.json() if (share := repo_share.current(services, session, found.id)) else None,
    }
