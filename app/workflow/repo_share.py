"""Each repository's share of PTM-related issues, and the model's probabilities moved to it.

A calibrated model's probabilities hold at the share of PTM-related issues it was trained
on (``Classifier.train_ptm_share``); a repository may have a few percent or most of its
issues PTM-related, and a probability made at the wrong share labels too many issues or
too few. So every PTM decision is made at the repository's share:

- until it has ``MIN_ISSUES`` scored issues, the deployment's setting
  (``PTM_TRIAGE_PTM_SHARE``) or, without one, the training share;
- from then on the share estimated from its own issues' probabilities
  (``app.triage.prior_shift.estimate_share``: EM, issues whose labels a person set count
  as known), estimated again whenever ``REESTIMATE_EVERY`` more issues have been scored
  (a backfill brings hundreds at installation).

When the share moves, ``flipped`` finds the issues whose PTM decision it changes
(``app.workflow.labelling.follow_share`` labels them again, at most ``RELABEL_LIMIT`` at a
time); decided at the new share, they are found no more. A model that is not calibrated
(the TF-IDF baseline) decides at its own thresholds and none of this applies.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.services import Services
from app.store.models import Issue, RepoShare, utcnow
from app.store.models import Prediction as StoredPrediction
from app.store.queries import latest_predictions, tracked_issues
from app.triage.classifier import Prediction
from app.triage.labels import LabelPolicy
from app.triage.prior_shift import correct_prior, estimate_share

MIN_ISSUES = 50
REESTIMATE_EVERY = 25
RELABEL_LIMIT = 100


@dataclass(frozen=True)
class Share:
    share: float
    source: str  # estimated | deployment | training
    issues: int = 0  # scored issues the estimate rests on
    known: int = 0  # of them, with labels a person set

    def json(self) -> dict[str, object]:
        return {"share": round(self.share, 4), "source": self.source, "issues": self.issues, "known": self.known}


def current(services: Services, session: Session, repository_id: int) -> Share | None:
    """The share the repository's decisions are made at; None when the model is not calibrated."""
    train_share = services.classifier.train_ptm_share
    if train_share is None:
        return None
    row = session.get(RepoShare, repository_id)
    if row is not None:
        return Share(row.share, row.source, row.issues, row.known)
    return _default(services, train_share)


def _default(services: Services, train_share: float, issues: int = 0, known: int = 0) -> Share:
    if services.settings.ptm_share is not None:
        return Share(services.settings.ptm_share, "deployment", issues, known)
    return Share(float(train_share), "training", issues, known)


def moved(prediction: Prediction, share: float, train_share: float) -> Prediction:
    """``prediction`` (made at ``train_share``) decided at ``share``: its PTM score moved there
    and held to the model's own threshold; themes as the model would give a PTM issue."""
    raw = prediction.ptm_score
    score = float(correct_prior(raw, share, train_share))
    threshold = float(prediction.extra["ptm_threshold"])  # type: ignore[arg-type]
    ptm = prediction.abstain_reason is None and score >= threshold
    extra = {**prediction.extra, "ptm_score_at_training_share": raw, "ptm_share": share}
    return replace(
        prediction, ptm_score=score, ptm=ptm, extra=extra,
        themes=tuple(prediction.extra["themes_if_ptm"]) if ptm else (),  # type: ignore[arg-type]
        subthemes=tuple(prediction.extra["subthemes_if_ptm"]) if ptm else (),  # type: ignore[arg-type]
    )


def reestimate(services: Services, repository_id: int) -> tuple[Share, Share] | None:
    """Estimate the repository's share again when it is due; (before, after) when it was."""
    train_share = services.classifier.train_ptm_share
    if train_share is None:
        return None
    with services.db.session() as session:
        before = current(services, session, repository_id)
        assert before is not None
        if _predicted_count(services, session, repository_id) < _due_at(before):  # cheap, on every delivery
            return None
        scored = _scored(services, session, repository_id)
        if len(scored) < _due_at(before):
            return None
        known = [services.policy.decode(issue.labels)[0] if issue.labels_locked_by_human else None
                 for issue, _ in scored]
        estimate = estimate_share([_raw(p) for _, p in scored], train_share, known=known,
                                  start=_default(services, train_share).share)
        after = Share(estimate, "estimated", len(scored), sum(k is not None for k in known))
        return (before, after) if _record(session, repository_id, before, after) else None


def _record(session: Session, repository_id: int, before: Share, after: Share) -> bool:
    """Store ``after`` unless another worker (another process) stored an estimate since ``before`` was read:
    then that one stands, and its worker labels the issues it flips."""
    values = dict(share=after.share, source=after.source, issues=after.issues, known=after.known,
                  estimated_at=utcnow())
    if session.get(RepoShare, repository_id) is None:
        session.add(RepoShare(repository_id=repository_id, **values))
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            return False
        return True
    result = cast("CursorResult[Any]", session.execute(
        update(RepoShare).where(RepoShare.repository_id == repository_id, RepoShare.issues == before.issues,
                                RepoShare.source == before.source).values(**values)))
    return result.rowcount == 1


def flipped(services: Services, session: Session, repository_id: int, share: float,
            policy: LabelPolicy) -> list[Issue]:
    """Issues not touched by a person whose PTM decision under ``policy`` (related, not, or
    abstain) ``share`` changes, newest first, at most ``RELABEL_LIMIT``."""
    train_share = services.classifier.train_ptm_share
    if train_share is None:
        return []
    found = []
    for issue, prediction in reversed(_scored(services, session, repository_id)):
        if issue.labels_locked_by_human or prediction.ptm_threshold is None:
            continue
        score = float(correct_prior(_raw(prediction), share, train_share))
        now = policy.ptm_decision(score, score >= prediction.ptm_threshold)
        if now != policy.ptm_decision(prediction.ptm_score, prediction.ptm):
            found.append(issue)
            if len(found) == RELABEL_LIMIT:
                break
    return found


def _due_at(share: Share) -> int:
    return MIN_ISSUES if share.source != "estimated" else max(MIN_ISSUES, share.issues + REESTIMATE_EVERY)


def _predicted_count(services: Services, session: Session, repository_id: int) -> int:
    """Issues of the repository with a prediction by the serving model: at least as many as ``_scored``."""
    return session.scalar(
        select(func.count(func.distinct(StoredPrediction.issue_id)))
        .join(Issue, Issue.id == StoredPrediction.issue_id)
        .where(Issue.repository_id == repository_id, StoredPrediction.model_version == services.classifier.version)
    ) or 0


def _scored(services: Services, session: Session, repository_id: int) -> list[tuple[Issue, StoredPrediction]]:
    """The repository's issues with their latest prediction by the serving model, in number order;
    predictions that abstained for a reason of their own (a language it cannot read) take no part."""
    issues = tracked_issues(session, repository_id)
    latest = latest_predictions(session, [i.id for i in issues])
    return [(issue, latest[issue.id]) for issue in issues
            if issue.id in latest and latest[issue.id].model_version == services.classifier.version
            and latest[issue.id].abstain_reason is None]


def _raw(prediction: StoredPrediction) -> float:
    """The model's score at its training share."""
    return prediction.ptm_score if prediction.ptm_score_at_training_share is None \
        else prediction.ptm_score_at_training_share
