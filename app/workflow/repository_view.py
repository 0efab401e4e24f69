"""What the dashboard lists of a repository's issues beside its statistics: each tracked issue
with its record, title, link and latest prediction, and the labels maintainers corrected."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.stats.resolution import IssueRecord
from app.store.models import Issue, LabelChange, Repository
from app.store.queries import CountedIssue, Scope, counted_issues
from app.triage.labels import LabelPolicy
from app.workflow.records import LabelReading, record_of

GITHUB_WEB = "https://github.com"


@dataclass(frozen=True)
class IssueRow:
    record: IssueRecord
    title: str
    url: str
    state: str
    labels: tuple[str, ...]
    ptm_score: float | None
    model_ptm: bool | None  # the model's own PTM decision (None: none, or it abstained)
    model: str | None
    triaged_at: datetime | None
    labels_set_by_person: bool


@dataclass(frozen=True)
class Correction:
    number: int
    url: str
    label: str
    action: str  # labeled / unlabeled
    actor: str | None
    at: datetime


@dataclass(frozen=True)
class Corrections:
    """Maintainers' changes to the app's labels, and how often the person's PTM decision agreed with the
    model's on the issues a person labelled. Those are not a random sample (people mostly change what is
    wrong), so the agreement is a pessimistic estimate of the model's accuracy here."""

    recent: list[Correction]
    changed_issues: int
    reviewed: int  # issues whose labels a person set, with a model decision to compare
    agreed: int

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.reviewed if self.reviewed else None


def issue_url(repo: str, number: int) -> str:
    return f"{GITHUB_WEB}/{repo}/issues/{number}"


def _row(issue: CountedIssue, reading: LabelReading) -> IssueRow:
    predicted = issue.predicted_labels is not None
    return IssueRow(
        record=record_of(issue, reading), title=issue.title, url=issue_url(issue.repo, issue.number),
        state=issue.state, labels=issue.labels, ptm_score=issue.ptm_score,
        model_ptm=reading.decode(issue.predicted_labels or ())[0] if predicted else None,
        model=issue.model_version, triaged_at=issue.predicted_at, labels_set_by_person=issue.labels_locked_by_human,
    )


def issue_rows(session: Session, scope: Scope, policy: LabelPolicy) -> list[IssueRow]:
    """Every tracked issue of one repository (of all with None), by repository and number."""
    reading = LabelReading(policy)
    return [_row(issue, reading) for issue in counted_issues(session, scope)]


def corrections(session: Session, repository: Repository, policy: LabelPolicy, rows: list[IssueRow],
                recent: int = 20) -> Corrections:
    """``rows``: the repository's issues (``issue_rows``)."""
    changes = session.execute(
        select(LabelChange, Issue.number).join(Issue, LabelChange.issue_id == Issue.id)
        .where(Issue.repository_id == repository.id, LabelChange.by_app.is_(False))
        .order_by(LabelChange.at.desc(), LabelChange.id.desc())
    ).all()
    ours = [(change, number) for change, number in changes if policy.is_app_label(change.label)]
    reviewed = agreed = 0
    for row in rows:
        if not row.labels_set_by_person or row.record.ptm is None or row.model_ptm is None:
            continue
        reviewed += 1
        agreed += row.record.ptm == row.model_ptm
    return Corrections(
        recent=[Correction(number, issue_url(repository.full_name, number), change.label, change.action, change.actor, change.at)
                for change, number in ours[:recent]],
        changed_issues=len({number for _, number in ours}), reviewed=reviewed, agreed=agreed,
    )
