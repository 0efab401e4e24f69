"""The store's upserts, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from app.store.db import Database
from app.store.models import Base, LabelChange
from app.store.queries import upsert_issue, upsert_repository


def payload(labels: list[str], updated: datetime) -> dict:
    return {"number": 7, "title": "CUDA OOM", "created_at": "2024-01-01T00:00:00Z",
            "updated_at": updated.isoformat().replace("+00:00", "Z"), "labels": [{"name": n} for n in labels]}


def test_a_payload_older_than_the_apps_own_label_write_does_not_undo_it(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    event_time = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    with db.session() as session:
        repo = upsert_repository(session, {"id": 1, "full_name": "o/r"}, None)
        issue, _ = upsert_issue(session, repo, payload([], event_time))
        issue.labels = ["ptm: related"]  # what the app just wrote
        session.add(LabelChange(issue_id=issue.id, label="ptm: related", action="added", by_app=True))
    with db.session() as session:
        repo = upsert_repository(session, {"id": 1, "full_name": "o/r"}, None)
        stale, _ = upsert_issue(session, repo, payload([], event_time))  # a delivery made before the app labelled
        assert stale.labels == ["ptm: related"]
        later, _ = upsert_issue(session, repo, payload(["bug"], datetime.now(UTC) + timedelta(seconds=5)))
        assert later.labels == ["bug"], "a newer payload is the truth"
        unlabeled, _ = upsert_issue(session, repo, payload([], event_time), labels_changed=True)
        assert unlabeled.labels == [], "a label event's labels are the truth whatever its time"
    db.dispose()


def test_the_migrations_build_the_schema_the_models_describe(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    with db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    db.dispose()
    assert differences == []
