"""The few reads and writes the rest of the app needs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, CursorResult, Text, and_, case, exists, func, or_, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, selectinload

from app.store.models import (
    Backfill,
    Delivery,
    Installation,
    Issue,
    IssueEvent,
    LabelChange,
    Prediction,
    Repository,
    utcnow,
)

MAX_STORED_BODY = 65536


def parse_github_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


Scope = int | frozenset[int] | None
"""Which repositories a query reads: one (its id), a set of them (those a viewer may read), or every one (None)."""


def _within(column: Any, scope: Scope) -> list[ColumnElement[bool]]:
    """The condition that keeps ``column`` (a repository id) within ``scope``."""
    if scope is None:
        return []
    return [column == scope] if isinstance(scope, int) else [column.in_(sorted(scope))]


# Deliveries -----------------------------------------------------------------

FINISHED = ("done", "skipped", "failed")
AGAIN = ("skipped", "failed")
"""A redelivery (the same id, a maintainer's "Redeliver") of a delivery that ended so is processed again."""
UNFINISHED = ("pending", "processing")


def store_delivery(
    session: Session, *, delivery_id: str, event: str, action: str | None,
    installation_id: int | None, payload: str, status: str = "pending", ordering_key: str | None = None,
) -> str:
    """Store a delivery: ``stored``; ``again`` for a redelivery of one that was skipped or failed
    (queued afresh with this payload); ``duplicate`` for one stored before that is done or queued."""
    found = session.get(Delivery, delivery_id)
    if found is not None:
        if found.status not in AGAIN:
            return "duplicate"
        found.event, found.action, found.installation_id, found.payload = event, action, installation_id, payload
        found.status, found.attempts, found.error, found.not_before, found.processed_at = "pending", 0, None, None, None
        found.payload_pruned_at, found.ordering_key = None, ordering_key
        return "again"
    session.add(Delivery(
        id=delivery_id, event=event, action=action, installation_id=installation_id,
        payload=payload, status=status, processed_at=utcnow() if status != "pending" else None,
        ordering_key=ordering_key,
    ))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return "duplicate"
    return "stored"


def retry_deliveries(session: Session, delivery_ids: Sequence[str] | None) -> list[str]:
    """Queue finished deliveries again (those that failed, with None); the ids queued."""
    query = select(Delivery).where(Delivery.status.in_(FINISHED) if delivery_ids else Delivery.status == "failed")
    if delivery_ids:
        query = query.where(Delivery.id.in_(delivery_ids))
    queued = []
    for delivery in session.scalars(query):
        delivery.status, delivery.attempts, delivery.not_before, delivery.processed_at = "pending", 0, None, None
        queued.append(delivery.id)
    return queued


def list_deliveries(session: Session, status: str | None = None, limit: int = 100) -> list[Delivery]:
    """The newest deliveries (of one status)."""
    query = select(Delivery).order_by(Delivery.received_at.desc(), Delivery.id).limit(limit)
    if status is not None:
        query = query.where(Delivery.status == status)
    return list(session.scalars(query))


def prune_payloads(session: Session, before: datetime) -> int:
    """Drop the payloads of deliveries finished before ``before``; their outcome rows stay."""
    result = cast("CursorResult[Any]", session.execute(  # an UPDATE's result is a CursorResult
        update(Delivery)
        .where(Delivery.status.in_(FINISHED), Delivery.processed_at < before, Delivery.payload_pruned_at.is_(None))
        .values(payload="", payload_pruned_at=utcnow())
    ))
    return result.rowcount or 0


class Due(NamedTuple):
    id: str
    ordering_key: str | None
    attempts: int


def _waits_for(state: Callable[[Any], ColumnElement[bool]]) -> ColumnElement[bool]:
    """The delivery has an earlier one about the same issue (``ordering_key``) in the ``state`` asked about."""
    earlier = aliased(Delivery)
    return exists().where(
        earlier.ordering_key == Delivery.ordering_key, state(earlier),
        or_(earlier.received_at < Delivery.received_at,
            and_(earlier.received_at == Delivery.received_at, earlier.id < Delivery.id)),
    )


def due_deliveries(session: Session, limit: int = 20, received_before: datetime | None = None,
                   first_in_line: bool = False) -> list[Due]:
    """The pending deliveries due now, oldest first, leaving out those that wait for an earlier delivery
    about the same issue that is being worked on or waits for a retry (an earlier one that is due comes
    first in the list); with ``first_in_line``, every one that waits for an earlier unfinished one."""
    now = utcnow()
    due_now = (Delivery.not_before.is_(None)) | (Delivery.not_before <= now)
    held_up = _waits_for(lambda earlier: earlier.status.in_(UNFINISHED) if first_in_line else or_(
        earlier.status == "processing",
        and_(earlier.status == "pending", earlier.not_before.is_not(None), earlier.not_before > now)))
    query = (select(Delivery.id, Delivery.ordering_key, Delivery.attempts)
             .where(Delivery.status == "pending", due_now, ~held_up)
             .order_by(Delivery.received_at, Delivery.id).limit(limit))
    if received_before is not None:
        query = query.where(Delivery.received_at < received_before)
    return [Due(*row) for row in session.execute(query)]


def next_in_line(session: Session, ordering_key: str) -> Due | None:
    """The oldest pending delivery about the issue of ``ordering_key``: the one to work after the one finished."""
    row = session.execute(
        select(Delivery.id, Delivery.ordering_key, Delivery.attempts)
        .where(Delivery.ordering_key == ordering_key, Delivery.status == "pending")
        .order_by(Delivery.received_at, Delivery.id).limit(1)
    ).first()
    return Due(*row) if row is not None else None


def claim_delivery(session: Session, delivery_id: str, lease_s: float, owner: str) -> Delivery | None:
    """Mark a pending delivery as processing by ``owner``, leased for ``lease_s`` (kept in ``not_before``);
    None when another worker took it first, or while an earlier delivery about the same issue is unfinished
    (an issue's deliveries take effect in the order they came, whichever workers take them)."""
    result = cast("CursorResult[Any]", session.execute(  # an UPDATE's result is a CursorResult
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.status == "pending",
               ~_waits_for(lambda earlier: earlier.status.in_(UNFINISHED)))
        .values(status="processing", attempts=Delivery.attempts + 1, lease_owner=owner,
                not_before=utcnow() + timedelta(seconds=lease_s))
    ))
    if result.rowcount != 1:
        return None
    return session.get(Delivery, delivery_id)


def renew_lease(session: Session, delivery_id: str, owner: str, lease_s: float) -> bool:
    """Extend ``owner``'s lease on a delivery it is working on; False when it no longer holds it."""
    result = cast("CursorResult[Any]", session.execute(
        update(Delivery).where(*_held_by(delivery_id, owner))
        .values(not_before=utcnow() + timedelta(seconds=lease_s))
    ))
    return result.rowcount == 1


def _held_by(delivery_id: str, owner: str) -> tuple[ColumnElement[bool], ...]:
    return Delivery.id == delivery_id, Delivery.status == "processing", Delivery.lease_owner == owner


def finish_delivery(session: Session, delivery_id: str, owner: str, status: str, error: str | None = None) -> bool:
    """Record the outcome of ``owner``'s work; False (nothing written) when its lease was taken over."""
    result = cast("CursorResult[Any]", session.execute(
        update(Delivery).where(*_held_by(delivery_id, owner))
        .values(status=status, error=error, processed_at=utcnow(), lease_owner=None)
    ))
    return result.rowcount == 1


def retry_delivery_later(session: Session, delivery_id: str, owner: str, error: str, delay_s: float) -> bool:
    result = cast("CursorResult[Any]", session.execute(
        update(Delivery).where(*_held_by(delivery_id, owner))
        .values(status="pending", error=error, not_before=utcnow() + timedelta(seconds=delay_s), lease_owner=None)
    ))
    return result.rowcount == 1


def requeue_expired(session: Session, max_attempts: int) -> int:
    """Deliveries whose worker's lease ran out (the process died mid-work) go back to the queue,
    or end ``failed`` once they have had ``max_attempts``: one that kills its worker each time must
    not do so for ever. Those another live worker holds stay with it. How many went back."""
    expired = (Delivery.status == "processing", (Delivery.not_before.is_(None)) | (Delivery.not_before <= utcnow()))
    session.execute(
        update(Delivery).where(*expired, Delivery.attempts >= max_attempts)
        .values(status="failed", processed_at=utcnow(),
                error=f"its worker stopped answering on each of {max_attempts} attempts")
    )
    result = cast("CursorResult[Any]", session.execute(  # an UPDATE's result is a CursorResult
        update(Delivery).where(*expired).values(status="pending", not_before=None, lease_owner=None)
    ))
    return result.rowcount or 0


def release_delivery(session: Session, delivery_id: str, owner: str) -> None:
    """Hand a delivery this worker holds back to the queue (the process is stopping)."""
    session.execute(
        update(Delivery).where(*_held_by(delivery_id, owner)).values(status="pending", not_before=None, lease_owner=None)
    )


def delivery_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
    return {status: count for status, count in rows}


# Installations and repositories ---------------------------------------------

def upsert_installation(session: Session, data: Mapping[str, Any]) -> Installation:
    account = data.get("account") or {}
    inst = session.get(Installation, data["id"])
    if inst is None:
        inst = Installation(id=data["id"], account_login=account.get("login") or "")
        session.add(inst)
    inst.account_login = account.get("login") or inst.account_login
    inst.account_type = account.get("type") or inst.account_type
    inst.deleted_at = None
    return inst


def upsert_repository(session: Session, data: Mapping[str, Any], installation_id: int | None) -> Repository:
    repo = session.get(Repository, data["id"])
    if repo is None:
        stale = session.scalar(select(Repository).where(Repository.full_name == data["full_name"]))
        if stale is not None:  # the same name now belongs to another repository id
            stale.full_name = f"{stale.full_name}#{stale.id}"
            session.flush()
        repo = Repository(id=data["id"], full_name=data["full_name"])
        session.add(repo)
    repo.full_name = data["full_name"]
    if isinstance(data.get("private"), bool):  # until a payload says, a repository counts as private
        repo.private = data["private"]
    if installation_id is not None:
        if session.get(Installation, installation_id) is None:  # its installation event has not come (yet)
            owner = (data.get("owner") or {}).get("login") or data["full_name"].split("/")[0]
            session.add(Installation(id=installation_id, account_login=owner))
            session.flush()
        repo.installation_id = installation_id
    repo.removed_at = None
    return repo


def largest_repositories(session: Session, limit: int) -> list[Repository]:
    """The ``limit`` repositories the app is installed on now with the most tracked issues."""
    counts = (select(Issue.repository_id, func.count(Issue.id).label("issues")).where(*_STILL_THERE)
              .group_by(Issue.repository_id).subquery())
    return list(session.scalars(
        select(Repository).join(counts, counts.c.repository_id == Repository.id)
        .where(Repository.removed_at.is_(None)).order_by(counts.c.issues.desc(), Repository.id).limit(limit)
    ))


def repository_by_name(session: Session, full_name: str) -> Repository | None:
    return session.scalar(select(Repository).where(func.lower(Repository.full_name) == full_name.lower()))


# Issues ------------------------------------------------------------------------

def find_issue(session: Session, repository_id: int, number: int) -> Issue | None:
    return session.scalar(
        select(Issue).where(Issue.repository_id == repository_id, Issue.number == number)
    )


def upsert_issue(session: Session, repo: Repository, data: Mapping[str, Any],
                 labels_changed: bool = False) -> tuple[Issue, bool]:
    """Create or refresh an issue from a GitHub issue object; True when it was new.

    ``labels_changed``: the payload is about a label change (``issues.labeled``/``unlabeled``),
    so its labels are taken even when the app wrote labels since its ``updated_at``."""
    issue, created = _refresh_issue(session, repo, find_issue(session, repo.id, data["number"]), data,
                                    labels_changed)
    session.flush()
    return issue, created


def add_missing_issues(session: Session, repo: Repository,
                       items: Sequence[Mapping[str, Any]]) -> list[tuple[Issue, bool]]:
    """The repository's issues for these GitHub issue objects, True for those created now.

    Issues stored already are left as they are: webhook deliveries keep them current,
    and a listing may be older than the delivery that last changed one.
    """
    numbers = [data["number"] for data in items]
    stored = session.scalars(select(Issue).where(Issue.repository_id == repo.id, Issue.number.in_(numbers)))
    existing = {issue.number: issue for issue in stored}
    rows = [(existing[data["number"]], False) if data["number"] in existing
            else _refresh_issue(session, repo, None, data) for data in items]
    session.flush()
    return rows


def _refresh_issue(session: Session, repo: Repository, issue: Issue | None,
                   data: Mapping[str, Any], labels_changed: bool = False) -> tuple[Issue, bool]:
    created = issue is None
    if issue is None:
        issue = Issue(
            repository_id=repo.id, number=data["number"],
            created_at=parse_github_time(data.get("created_at")) or utcnow(),
        )
        session.add(issue)
    user = data.get("user") or {}
    issue.github_id = data.get("id", issue.github_id)
    issue.title = data.get("title") or ""
    issue.body = (data.get("body") or "")[:MAX_STORED_BODY]
    issue.author_login = user.get("login", issue.author_login)
    issue.author_type = user.get("type", issue.author_type)
    if created or labels_changed or not _app_wrote_labels_since(
        session, issue, parse_github_time(data.get("updated_at"))
    ):
        issue.labels = [label["name"] for label in data.get("labels") or [] if isinstance(label, Mapping)]
    if created:
        issue.state = data.get("state") or "open"
        issue.closed_at = parse_github_time(data.get("closed_at")) if issue.state == "closed" else None
        issue.state_reason = data.get("state_reason")
    return issue, created


def _app_wrote_labels_since(session: Session, issue: Issue, moment: datetime | None) -> bool:
    """Whether the app changed the issue's labels after ``moment``, which makes a payload of then stale.

    GitHub sends deliveries in no guaranteed order and redelivers old ones (a retry, a
    maintainer's "Redeliver"): without this, an ``issues.edited`` or ``issues.closed`` payload
    made before the app labelled the issue would put its old labels back over the app's.
    """
    if moment is None:
        return False
    last = session.scalar(
        select(func.max(LabelChange.at)).where(LabelChange.issue_id == issue.id, LabelChange.by_app.is_(True))
    )
    return last is not None and moment < last


def add_issue_event(session: Session, issue: Issue, kind: str, at: datetime, delivery_id: str | None) -> None:
    session.add(IssueEvent(issue_id=issue.id, kind=kind, at=at, delivery_id=delivery_id))


def add_prediction(session: Session, issue: Issue, **fields: Any) -> Prediction:
    prediction = Prediction(issue_id=issue.id, **fields)
    session.add(prediction)
    return prediction


def latest_predictions(session: Session, issue_ids: Iterable[int]) -> dict[int, Prediction]:
    ids = list(issue_ids)
    if not ids:
        return {}
    newest = (
        select(func.max(Prediction.id)).where(Prediction.issue_id.in_(ids)).group_by(Prediction.issue_id)
    )
    rows = session.scalars(select(Prediction).where(Prediction.id.in_(newest)))
    return {p.issue_id: p for p in rows}


_STILL_THERE = (Issue.deleted_at.is_(None), Issue.transferred_at.is_(None))
"""What makes an issue tracked: neither deleted nor transferred away."""


class CountedIssue(NamedTuple):
    """A row of :func:`counted_issues`; label lists as tuples."""

    id: int
    number: int
    title: str
    state: str
    state_reason: str | None
    labels: tuple[str, ...]
    created_at: datetime
    closed_at: datetime | None
    labels_locked_by_human: bool
    author_login: str | None
    author_type: str | None
    repo: str
    model_version: str | None
    ptm_score: float | None
    predicted_labels: tuple[str, ...] | None
    subthemes: tuple[str, ...] | None
    predicted_type: str | None
    abstained: bool | None
    abstain_reason: str | None
    predicted_at: datetime | None


def counted_issues(session: Session, scope: Scope = None) -> list[CountedIssue]:
    """What the statistics and the dashboard read of every tracked issue (of the repositories in ``scope``)
    and of its newest prediction, in one query: no ORM objects, no bodies, no per-label scores.
    The prediction's columns are None for an issue without one. Label lists come as JSON text and
    are decoded once per distinct text: a repository has few distinct sets of labels, and
    decoding each of 100,000 issues' lists took most of the time a page of them took."""
    newest = (select(Prediction.issue_id, func.max(Prediction.id).label("prediction_id"))
              .group_by(Prediction.issue_id).subquery())
    query = (
        select(
            Issue.id, Issue.number, Issue.title, Issue.state, Issue.state_reason, sql_cast(Issue.labels, Text).label("labels"),
            Issue.created_at, Issue.closed_at, Issue.labels_locked_by_human, Issue.author_login, Issue.author_type,
            Repository.full_name, Prediction.model_version, Prediction.ptm_score, sql_cast(Prediction.labels, Text).label("predicted_labels"),
            sql_cast(Prediction.subthemes, Text).label("subthemes"), Prediction.type.label("predicted_type"), Prediction.abstained,
            Prediction.abstain_reason, Prediction.created_at.label("predicted_at"),
        )
        .join(Repository, Repository.id == Issue.repository_id)
        .outerjoin(newest, newest.c.issue_id == Issue.id)
        .outerjoin(Prediction, Prediction.id == newest.c.prediction_id)
        .where(*_STILL_THERE, *_within(Issue.repository_id, scope))
        .order_by(Issue.repository_id, Issue.number)
    )
    decoded: dict[str | None, tuple[str, ...] | None] = {None: None}

    def names(text: str | None) -> tuple[str, ...] | None:
        if text not in decoded:
            decoded[text] = tuple(json.loads(text))  # type: ignore[arg-type]
        return decoded[text]

    found = []
    for row in session.connection().execute(query):
        labels = names(row[5]) or ()
        found.append(CountedIssue._make((*row[:5], labels, *row[6:14], names(row[14]), names(row[15]), *row[16:])))
    return found


def tracked_issues(session: Session, scope: Scope = None) -> list[Issue]:
    """Issues that still exist (not deleted, not transferred away), with their repository."""
    query = (
        select(Issue).options(selectinload(Issue.repository))
        .where(*_STILL_THERE, *_within(Issue.repository_id, scope))
        .order_by(Issue.repository_id, Issue.number)
    )
    return list(session.scalars(query))


def predicted_issue_ids(session: Session, issue_ids: Iterable[int], model_version: str) -> set[int]:
    """Those of ``issue_ids`` that have a prediction of ``model_version`` already."""
    ids = list(issue_ids)
    if not ids:
        return set()
    rows = session.scalars(
        select(Prediction.issue_id).where(Prediction.issue_id.in_(ids), Prediction.model_version == model_version)
    )
    return set(rows)


def issues_labelled_by_app(session: Session, issue_ids: Iterable[int]) -> int:
    """How many of ``issue_ids`` the app has added labels to."""
    return session.scalar(
        select(func.count(func.distinct(LabelChange.issue_id)))
        .where(LabelChange.issue_id.in_(list(issue_ids)), LabelChange.by_app, LabelChange.action == "added")
    ) or 0


# Backfills -----------------------------------------------------------------------

BACKFILL_ACTIVE = ("pending", "running")


def schedule_backfill(session: Session, repository_id: int, installation_id: int) -> Backfill:
    """A backfill for the repository: a new one, or a failed one back to pending (it resumes
    where it stopped); one pending, running or done is left as it is."""
    backfill = session.get(Backfill, repository_id)
    if backfill is None:
        backfill = Backfill(repository_id=repository_id, installation_id=installation_id, status="pending",
                            next_page=1, imported=0, labelled=0)
        session.add(backfill)
    backfill.installation_id = installation_id
    if backfill.status == "failed":
        backfill.status = "pending"
    session.flush()
    return backfill


def next_backfill(session: Session) -> int | None:
    """The repository id of the backfill to work on: an interrupted one first, then the pending."""
    return session.scalar(
        select(Backfill.repository_id).where(Backfill.status.in_(BACKFILL_ACTIVE))
        .order_by(case((Backfill.status == "running", 0), else_=1), Backfill.repository_id).limit(1)
    )


def backfills(session: Session, scope: Scope = None) -> list[Backfill]:
    return list(session.scalars(
        select(Backfill).options(selectinload(Backfill.repository))
        .where(*_within(Backfill.repository_id, scope)).order_by(Backfill.repository_id)
    ))


# Data versions -------------------------------------------------------------------

def data_version(session: Session, scope: Scope = None) -> tuple[int, ...]:
    """What changes whenever anything the dashboard shows of the repositories in ``scope`` changes:
    their data versions (``app.store.versioning``) summed, with how many there are and how many
    of them are removed."""
    total, count, removed = session.execute(
        select(func.coalesce(func.sum(Repository.data_version), 0), func.count(Repository.id),
               func.count(Repository.removed_at)).where(*_within(Repository.id, scope))
    ).one()
    return int(total), int(count), int(removed)


def repository_ids(session: Session, *, private: bool | None = None) -> frozenset[int]:
    """The ids of the tracked repositories (of those private, or public, only)."""
    query = select(Repository.id)
    if private is not None:
        query = query.where(Repository.private.is_(private))
    return frozenset(session.scalars(query))
