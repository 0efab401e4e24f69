"""Maintainers' label corrections as training data, in the format of ``../shared/data``.

An issue counts when a person changed the app's labels on it (or it came with
them set): its current labels are the maintainer's answer. An issue left with
only the abstain label says nothing and is not exported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.store.db import Database
from app.store.models import Issue, LabelChange
from app.store.queries import repository_by_name, tracked_issues
from app.taxonomy import SUBTHEMES
from app.triage.labels import LabelPolicy


def html_base(api_url: str) -> str:
    """https://github.com for api.github.com; the host of a GitHub Enterprise API URL."""
    if api_url.rstrip("/") == "https://api.github.com":
        return "https://github.com"
    return api_url.rstrip("/").removesuffix("/api/v3")


def _record(issue: Issue, policy: LabelPolicy, base: str, last: LabelChange | None) -> dict[str, Any] | None:
    ptm, themes = policy.decode(issue.labels)
    if ptm is None:
        return None
    codes = [policy.code_of(name) for name in issue.labels]
    repo = issue.repository.full_name
    return {
        "url": f"{base}/{repo}/issues/{issue.number}",
        "repo": repo,
        "number": issue.number,
        "state": issue.state,
        "created": issue.created_at.date().isoformat(),
        "labels": issue.labels,
        "title": issue.title,
        "body": issue.body or "",
        "description_shown": True,
        "ptm": ptm,
        "themes": list(themes),
        "subthemes": [c for c in codes if c in SUBTHEMES] if ptm else [],
        "type": None,
        "confidence": "high",
        "agreement": "maintainer",
        "corrected_by": last.actor if last else None,
        "corrected_at": last.at.isoformat() if last else None,
    }


def export_feedback(db: Database, policy: LabelPolicy, output: Path, api_url: str, repo: str | None = None) -> int:
    """Write one line per corrected issue; returns how many."""
    base = html_base(api_url)
    with db.session() as session:
        found = repository_by_name(session, repo) if repo else None
        if repo and found is None:
            raise ValueError(f"repository {repo!r} is not tracked")
        issues = [i for i in tracked_issues(session, found.id if found else None) if i.labels_locked_by_human]
        last_change = {
            change.issue_id: change
            for change in session.scalars(
                select(LabelChange).where(LabelChange.by_app.is_(False)).order_by(LabelChange.id)
            )
        }
        records = [r for i in issues if (r := _record(i, policy, base, last_change.get(i.id)))]
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(records)
