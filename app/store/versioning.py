"""Each repository's data version: a counter raised in the same transaction as every change to its
issues, their predictions, label changes and lifecycle events, so that what is computed from them
(the dashboard's pages) can be kept until it changes. A counter and not a timestamp: a writer whose
transaction commits after another's cannot hide its change behind the other's later clock.

Registered on a database's sessions (:func:`track_versions`); a Core statement that changes issues
would bypass it, and the app has none.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, update
from sqlalchemy.orm import Session, sessionmaker

from app.store.models import Issue, IssueEvent, LabelChange, Prediction, Repository


def _repository_of(session: Session, item: object) -> int | None:
    if isinstance(item, Repository):
        return item.id
    if isinstance(item, Issue):
        return item.repository_id
    if isinstance(item, Prediction | LabelChange | IssueEvent):
        issue = session.get(Issue, item.issue_id)  # in the identity map almost always
        return None if issue is None else issue.repository_id
    return None


def _raise_versions(session: Session, _context: Any) -> None:
    changed = [*session.new, *session.deleted, *(item for item in session.dirty if session.is_modified(item))]
    ids = {rid for rid in (_repository_of(session, item) for item in changed) if rid is not None}
    if ids:
        session.connection().execute(  # on the connection: no ORM flush inside this flush
            update(Repository).where(Repository.id.in_(ids)).values(data_version=Repository.data_version + 1)
        )


def track_versions(sessions: sessionmaker[Session]) -> None:
    """Raise repositories' data versions on every flush of the sessions ``sessions`` makes."""
    event.listen(sessions, "after_flush", _raise_versions)
