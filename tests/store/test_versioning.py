"""Repositories' data versions rise with every change to their issues, and only then."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from app.store.db import Database
from app.store.models import LabelChange, Repository
from app.store.queries import (
    add_issue_event,
    add_prediction,
    data_version,
    find_issue,
    upsert_issue,
    upsert_repository,
)

ISSUE = {"number": 7, "title": "CUDA OOM", "created_at": "2024-01-01T00:00:00Z", "labels": []}


def test_every_kind_of_change_raises_its_repositorys_version_and_no_other(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    seen: list[tuple[int, ...]] = []

    def versions() -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        with db.session() as session:
            return data_version(session, 1), data_version(session, 2), data_version(session)

    with db.session() as session:
        first = upsert_repository(session, {"id": 1, "full_name": "o/one"}, None)
        upsert_repository(session, {"id": 2, "full_name": "o/two"}, None)
        issue, _ = upsert_issue(session, first, ISSUE)
        issue_id = issue.id
    seen.append(versions()[0])
    other_before, all_before = versions()[1:]

    def change(step: str) -> None:
        with db.session() as session:
            issue = find_issue(session, 1, 7)
            assert issue is not None
            if step == "title":
                issue.title = "CUDA out of memory"
            elif step == "prediction":
                add_prediction(session, issue, model_version="m", ptm=True, ptm_score=0.9, labels=["ptm: related"])
            elif step == "label":
                session.add(LabelChange(issue_id=issue_id, label="bug", action="added", by_app=False))
            elif step == "event":
                add_issue_event(session, issue, "closed", datetime.now(UTC), None)
        seen.append(versions()[0])

    for step in ("title", "prediction", "label", "event"):
        change(step)
        assert seen[-1] > seen[-2], f"a {step} change left the version at {seen[-1]}"
    with db.session() as session:  # reading, and writing what is there already, changes nothing
        repo = session.get(Repository, 1)
        assert repo is not None
        upsert_issue(session, repo, {**ISSUE, "title": "CUDA out of memory"})
    assert versions()[0] == seen[-1]
    assert versions()[1] == other_before
    assert versions()[2] > all_before
    with db.session() as session:  # removing a repository (a Core update) shows in the installation-wide version
        before = data_version(session)
        session.execute(update(Repository).where(Repository.id == 2).values(removed_at=datetime.now(UTC)))
    with db.session() as session:
        assert data_version(session) != before
    db.dispose()
