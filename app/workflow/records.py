"""Tracked issues as the statistics count them (``IssueRecord``), for the API, the dashboard and the CLI."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.stats.resolution import IssueRecord
from app.store.models import Issue, Prediction
from app.store.queries import latest_predictions, tracked_issues
from app.taxonomy import SUBTHEMES, theme_of
from app.triage.labels import LabelPolicy


def record_of(issue: Issue, prediction: Prediction | None, policy: LabelPolicy) -> IssueRecord:
    """An issue as the statistics count it: a person's labels win over the model's, and the
    repository's own type labels (bug, enhancement, question) give its type."""
    probability: float | None
    if issue.labels_locked_by_human:
        ptm, themes = policy.decode(issue.labels)
        subthemes = tuple(c for c in map(policy.code_of, issue.labels) if c in SUBTHEMES)
        probability = None if ptm is None else float(ptm)
    elif prediction is not None:
        (ptm, themes), subthemes = policy.decode(prediction.labels), tuple(prediction.subthemes)
        probability = prediction.ptm_score
    else:
        ptm, themes, subthemes, probability = None, (), (), None
    return IssueRecord(
        repo=issue.repository.full_name, number=issue.number, created=issue.created_at,
        closed=issue.closed_at, ptm=ptm, themes=themes,
        subthemes=tuple(c for c in subthemes if theme_of(c) in themes),
        type=policy.issue_type(issue.labels) or (prediction.type if prediction else None),
        closed_reason=issue.state_reason,
        abstain_reason=None if issue.labels_locked_by_human or prediction is None else prediction.abstain_reason,
        author_is_bot=issue.author_type == "Bot" or (issue.author_login or "").endswith("[bot]"),
        ptm_probability=probability,
        unsure=(not issue.labels_locked_by_human and prediction is not None and prediction.abstained
                and prediction.abstain_reason is None and ptm is None),
    )


def repository_records(session: Session, repository_id: int | None, policy: LabelPolicy) -> list[IssueRecord]:
    """The records of one repository's tracked issues (every repository's with None)."""
    issues = tracked_issues(session, repository_id, lean=True)
    predictions = latest_predictions(session, [i.id for i in issues], lean=True)
    return [record_of(i, predictions.get(i.id), policy) for i in issues]
