"""How a tracked issue counts in the statistics: a person's labels, the model's, or its doubt."""

from __future__ import annotations

from datetime import UTC, datetime

from app.store.models import Issue, Prediction, Repository
from app.triage.labels import LabelPolicy
from app.workflow.records import record_of

POLICY = LabelPolicy()
CREATED = datetime(2024, 1, 1, tzinfo=UTC)


def _issue(labels: list[str], locked: bool = False) -> Issue:
    return Issue(repository=Repository(id=1, full_name="o/r"), number=7, title="t", created_at=CREATED,
                 closed_at=datetime(2024, 1, 9, tzinfo=UTC), labels=labels, labels_locked_by_human=locked)


def _prediction(labels: list[str], score: float, abstained: bool = False, reason: str | None = None) -> Prediction:
    return Prediction(model_version="m", ptm=score >= 0.5, ptm_score=score, labels=labels, subthemes=[],
                      abstained=abstained, abstain_reason=reason)


def test_the_model_unsure_is_its_own_group_with_its_probability() -> None:
    record = record_of(_issue([POLICY.abstain]), _prediction([POLICY.abstain], 0.634, abstained=True), POLICY)
    assert (record.ptm, record.unsure, record.ptm_probability) == (None, True, 0.634)


def test_a_language_the_model_cannot_read_is_not_doubt() -> None:
    prediction = _prediction([POLICY.abstain], 0.7, abstained=True, reason="language not supported")
    record = record_of(_issue([POLICY.abstain]), prediction, POLICY)
    assert (record.unsure, record.abstain_reason) == (False, "language not supported")


def test_a_person_labels_count_as_certain() -> None:
    record = record_of(_issue([POLICY.ptm_label], locked=True), _prediction([], 0.2), POLICY)
    assert (record.ptm, record.ptm_probability, record.unsure) == (True, 1.0, False)
    assert record_of(_issue([], locked=False), None, POLICY).ptm_probability is None
