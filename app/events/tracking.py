"""Bringing the repository and issue of a delivery into the database (every issues handler starts here)."""

from __future__ import annotations

from typing import Any

from gidgethub import sansio
from sqlalchemy.orm import Session

from app import logs
from app.store.models import Issue, Repository
from app.store.queries import upsert_issue, upsert_repository


class MissingField(ValueError):
    """The payload lacks a field the handler needs; the delivery is skipped, naming it."""


def field(data: Any, *path: str) -> Any:
    value = data
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            raise MissingField(f"payload has no {'.'.join(path)}")
        value = value[key]
    return value


def installation_id(event: sansio.Event) -> int | None:
    inst = event.data.get("installation")
    return inst.get("id") if isinstance(inst, dict) else None


def track_issue(session: Session, event: sansio.Event) -> tuple[Repository, Issue, bool]:
    """Upsert the delivery's repository and issue; True when the issue is new here."""
    for path in (("repository", "id"), ("repository", "full_name"), ("issue", "number")):
        field(event.data, *path)
    repo_data, issue_data = event.data["repository"], event.data["issue"]
    logs.note(repository=repo_data["full_name"], issue=issue_data["number"])
    repo = upsert_repository(session, repo_data, installation_id(event))
    labels_changed = event.data.get("action") in ("labeled", "unlabeled")
    issue, created = upsert_issue(session, repo, issue_data, labels_changed)
    return repo, issue, created
