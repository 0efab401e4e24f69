"""How a tracked issue counts in the statistics: a person's labels, the model's, or its doubt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from app.triage.labels import LabelPolicy
from app.workflow.records import LabelReading, record_of

POLICY = LabelPolicy()
READING = LabelReading(POLICY)


@dataclass
class Counted:
    """A row of ``app.store.queries.counted_issues``."""

    labels: tuple[str, ...]
    ptm_score: float | None = None
    predicted_labels: tuple[str, ...] | None = None
    abstained: bool | None = None
    abstain_reason: str | None = None
    labels_locked_by_human: bool = False
    id: int = 1
    number: int = 7
    title: str = "t"
    state: str = "closed"
    state_reason: str | None = "completed"
    created_at: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    closed_at: datetime | None = datetime(2024, 1, 9, tzinfo=UTC)
    author_login: str | None = "someone"
    author_type: str | None = "User"
    repo: str = "o/r"
    model_version: str | None = "m"
    subthemes: tuple[str, ...] | None = ()
    predicted_type: str | None = None
    predicted_at: datetime | None = None


def test_the_model_unsure_is_its_own_group_with_its_probability() -> None:
    issue = Counted((POLICY.abstain,), 0.634, (POLICY.abstain,), abstained=True)
    record = record_of(issue, READING)
    assert (record.ptm, record.unsure, record.ptm_probability, record.days) == (None, True, 0.634, 8)


def test_a_language_the_model_cannot_read_is_not_doubt() -> None:
    issue = Counted((POLICY.abstain,), 0.7, (POLICY.abstain,), abstained=True, abstain_reason="language not supported")
    record = record_of(issue, READING)
    assert (record.unsure, record.abstain_reason) == (False, "language not supported")


def test_a_person_labels_count_as_certain() -> None:
    record = record_of(Counted((POLICY.ptm_label,), 0.2, (), labels_locked_by_human=True), READING)
    assert (record.ptm, record.ptm_probability, record.unsure) == (True, 1.0, False)
    unseen = record_of(Counted((), model_version=None, subthemes=None), READING)
    assert (unseen.ptm, unseen.ptm_probability) == (None, None)
