"""Tracked issues as the statistics count them (``IssueRecord``), for the API, the dashboard and the CLI."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.stats.resolution import IssueRecord
from app.store.queries import CountedIssue, counted_issues
from app.taxonomy import SUBTHEMES, theme_of
from app.triage.labels import LabelPolicy


def record_of(issue: CountedIssue, policy: LabelPolicy) -> IssueRecord:
    """An issue as the statistics count it: a person's labels win over the model's, and the
    repository's own type labels (bug, enhancement, question) give its type."""
    predicted = issue.ptm_score is not None
    probability: float | None
    if issue.labels_locked_by_human:
        ptm, themes = policy.decode(issue.labels)
        subthemes = tuple(c for c in map(policy.code_of, issue.labels) if c in SUBTHEMES)
        probability = None if ptm is None else float(ptm)
    elif predicted:
        (ptm, themes), subthemes = policy.decode(issue.predicted_labels or []), tuple(issue.subthemes or ())
        probability = issue.ptm_score
    else:
        ptm, themes, subthemes, probability = None, (), (), None
    model_only = predicted and not issue.labels_locked_by_human
    return IssueRecord(
        repo=issue.repo, number=issue.number, created=issue.created_at,
        closed=issue.closed_at, ptm=ptm, themes=themes,
        subthemes=tuple(c for c in subthemes if theme_of(c) in themes),
        type=policy.issue_type(issue.labels) or (issue.predicted_type if predicted else None),
        closed_reason=issue.state_reason,
        abstain_reason=issue.abstain_reason if model_only else None,
        author_is_bot=issue.author_type == "Bot" or (issue.author_login or "").endswith("[bot]"),
        ptm_probability=probability,
        unsure=bool(model_only and issue.abstained and issue.abstain_reason is None and ptm is None),
    )


def repository_records(session: Session, repository_id: int | None, policy: LabelPolicy) -> list[IssueRecord]:
    """The records of one repository's tracked issues (every repository's with None)."""
    return [record_of(issue, policy) for issue in counted_issues(session, repository_id)]
