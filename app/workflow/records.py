"""Tracked issues as the statistics count them (``IssueRecord``), for the API, the dashboard and the CLI."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.stats.resolution import IssueRecord
from app.store.queries import CountedIssue, Scope, counted_issues
from app.taxonomy import SUBTHEMES, theme_of
from app.triage.labels import LabelPolicy


class LabelReading:
    """What a label policy reads from sets of label names, each distinct set read once: a
    repository has a few dozen distinct sets among its 100,000 issues."""

    def __init__(self, policy: LabelPolicy) -> None:
        self.policy = policy
        self._decoded: dict[tuple[str, ...], tuple[bool | None, tuple[str, ...]]] = {}
        self._subthemes: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._types: dict[tuple[str, ...], str | None] = {}

    def decode(self, labels: tuple[str, ...]) -> tuple[bool | None, tuple[str, ...]]:
        """``LabelPolicy.decode``: (PTM-related, theme codes)."""
        if labels not in self._decoded:
            self._decoded[labels] = self.policy.decode(labels)
        return self._decoded[labels]

    def subthemes(self, labels: tuple[str, ...]) -> tuple[str, ...]:
        """The sub-theme codes the labels name."""
        if labels not in self._subthemes:
            self._subthemes[labels] = tuple(c for c in map(self.policy.code_of, labels) if c in SUBTHEMES)
        return self._subthemes[labels]

    def issue_type(self, labels: tuple[str, ...]) -> str | None:
        """``LabelPolicy.issue_type``: the type the repository's own labels give."""
        if labels not in self._types:
            self._types[labels] = self.policy.issue_type(labels)
        return self._types[labels]


def record_of(issue: CountedIssue, reading: LabelReading) -> IssueRecord:
    """An issue as the statistics count it: a person's labels win over the model's, and the
    repository's own type labels (bug, enhancement, question) give its type."""
    predicted = issue.ptm_score is not None
    probability: float | None
    if issue.labels_locked_by_human:
        ptm, themes = reading.decode(issue.labels)
        subthemes = reading.subthemes(issue.labels)
        probability = None if ptm is None else float(ptm)
    elif predicted:
        (ptm, themes), subthemes = reading.decode(issue.predicted_labels or ()), issue.subthemes or ()
        probability = issue.ptm_score
    else:
        ptm, themes, subthemes, probability = None, (), (), None
    model_only = predicted and not issue.labels_locked_by_human
    return IssueRecord(
        repo=issue.repo, number=issue.number, created=issue.created_at,
        closed=issue.closed_at, ptm=ptm, themes=themes,
        subthemes=tuple(c for c in subthemes if theme_of(c) in themes),
        type=reading.issue_type(issue.labels) or (issue.predicted_type if predicted else None),
        closed_reason=issue.state_reason,
        abstain_reason=issue.abstain_reason if model_only else None,
        author_is_bot=issue.author_type == "Bot" or (issue.author_login or "").endswith("[bot]"),
        ptm_probability=probability,
        unsure=bool(model_only and issue.abstained and issue.abstain_reason is None and ptm is None),
    )


def repository_records(session: Session, scope: Scope, policy: LabelPolicy) -> list[IssueRecord]:
    """The records of one repository's tracked issues (every repository's with None)."""
    reading = LabelReading(policy)
    return [record_of(issue, reading) for issue in counted_issues(session, scope)]
