"""Classify issues and bring their labels on GitHub in line with the policy.

Shared by the webhook's triage, ``/ptm-triage reclassify`` and backfill, so that
every path records the same prediction rows and label changes. Every PTM decision is
made at the repository's share of PTM-related issues (``app.workflow.repo_share``), and
``follow_share`` labels again the issues a new estimate of that share decides otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from gidgethub.abc import GitHubAPI

from app.github.label_writes import add_labels, ensure_labels, remove_label
from app.services import Services
from app.store.models import Issue, LabelChange
from app.store.queries import add_prediction
from app.triage.classifier import IssueText, Prediction
from app.triage.labels import LabelPolicy
from app.workflow import repo_share
from app.workflow.repo_config import RepoSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """An issue as the labeller needs it, read before any slow work."""

    issue_id: int
    repository_id: int
    repo: str
    number: int
    labels: tuple[str, ...]
    text: IssueText
    open: bool = True


@dataclass(frozen=True)
class Applied:
    """What ``apply`` decided: the labels the policy wants, and the prediction they rest on
    (decided at the repository's share)."""

    labels: list[str]
    prediction: Prediction


def target_of(issue: Issue) -> Target:
    return Target(issue.id, issue.repository_id, issue.repository.full_name, issue.number, tuple(issue.labels),
                  IssueText(issue.title, issue.body or ""), issue.state == "open")


async def classify(services: Services, texts: Sequence[IssueText]) -> list[Prediction]:
    """Through the batcher, which joins the texts of concurrent deliveries into one model call in a
    worker thread (``app.workflow.batching``)."""
    return await services.batcher.classify(texts)


async def apply(
    services: Services, gh: GitHubAPI | None, target: Target, prediction: Prediction,
    policy: LabelPolicy, *, delivery_id: str | None = None, write: bool = True,
) -> Applied:
    """Decide ``prediction`` at the repository's share and record it; when ``gh`` is given and
    ``write``, set the policy's labels on GitHub.

    The app's labels that the policy no longer wants are removed; other labels stay.
    """
    prediction = _at_repository_share(services, target, prediction)
    wanted = policy.labels_for(prediction, target.labels)
    wanted_lower = {name.lower() for name in wanted}
    have = {name.lower() for name in target.labels}
    to_add = [name for name in wanted if name.lower() not in have]
    to_remove = [n for n in target.labels if policy.is_app_label(n) and n.lower() not in wanted_lower]
    writer = gh if write else None  # None: the prediction is recorded, no label is written
    writing = writer is not None
    if writer is not None and (to_add or to_remove):
        specs = [spec for spec in policy.all_labels() if spec.name in to_add]
        await ensure_labels(writer, target.repo, specs, services.known_labels.setdefault(target.repo, set()))
        await add_labels(writer, target.repo, target.number, to_add)
        for name in to_remove:
            await remove_label(writer, target.repo, target.number, name)
    with services.db.session() as session:
        issue = session.get_one(Issue, target.issue_id)  # the target was read from this row
        add_prediction(
            session, issue, model_version=prediction.model, ptm=prediction.ptm,
            ptm_score=prediction.ptm_score, themes=list(prediction.themes),
            theme_scores=prediction.theme_scores, subthemes=list(prediction.subthemes),
            subtheme_scores=prediction.subtheme_scores, labels=wanted,
            type=prediction.extra.get("type"), type_scores=prediction.extra.get("type_scores") or {},
            abstained=policy.decode(wanted)[0] is None, abstain_reason=prediction.abstain_reason,
            ptm_score_at_training_share=prediction.extra.get("ptm_score_at_training_share"),
            ptm_share=prediction.extra.get("ptm_share"), ptm_threshold=prediction.extra.get("ptm_threshold"),
            delivery_id=delivery_id,
        )
        if writing:
            before = list(target.labels)
            after = [n for n in before if n not in to_remove] + to_add
            session.add_all(
                LabelChange(issue_id=target.issue_id, label=name, action=action, actor=services.bot_login,
                            by_app=True, labels_before=before, labels_after=after, delivery_id=delivery_id)
                for action, names in (("added", to_add), ("removed", to_remove)) for name in names
            )
            issue.labels = after
    log.info("%s#%s: ptm=%.3f labels %s%s", target.repo, target.number, prediction.ptm_score, wanted,
             "" if writing else " (not written)")
    return Applied(wanted, prediction)


def _at_repository_share(services: Services, target: Target, prediction: Prediction) -> Prediction:
    train_share = services.classifier.train_ptm_share
    if train_share is None:
        return prediction
    with services.db.session() as session:
        share = repo_share.current(services, session, target.repository_id)
    assert share is not None
    return repo_share.moved(prediction, share.share, train_share)


async def follow_share(services: Services, gh: GitHubAPI | None, repository_id: int, config: RepoSettings) -> int:
    """Estimate the repository's share again when due; label again the issues the new share
    decides otherwise: open ones on GitHub (unless the repository is in dry-run or asks for
    no labels on old issues, ``backfill.labels: none``), closed ones in the record the
    statistics read. Returns how many were labelled again.

    One repository's share is followed by one delivery at a time: deliveries worked side by side
    would otherwise all find it due at once, and each estimate it and label the same issues again."""
    async with services.share_locks[repository_id]:
        return await _follow_share(services, gh, repository_id, config)


async def _follow_share(services: Services, gh: GitHubAPI | None, repository_id: int, config: RepoSettings) -> int:
    moved = await asyncio.to_thread(repo_share.reestimate, services, repository_id)
    if moved is None:
        return 0
    before, after = moved
    policy = config.policy(services.policy)
    with services.db.session() as session:
        flips = repo_share.flipped(services, session, repository_id, after.share, policy)
        targets = [target_of(issue) for issue in flips]
    log.info("repository %s: PTM share %.3f (%s) -> %.3f, estimated from %d issues (%d set by a person); "
             "%d decisions change", targets[0].repo if targets else repository_id, before.share, before.source,
             after.share, after.issues, after.known, len(targets))
    if not targets:
        return 0
    predictions = await classify(services, [t.text for t in targets])
    for target, prediction in zip(targets, predictions, strict=True):
        write = target.open and not config.dry_run and config.backfill.labels != "none"
        await apply(services, gh, target, prediction, policy, write=write)
    return len(targets)


def explanation(prediction: Prediction, wanted: Sequence[str], policy: LabelPolicy) -> str:
    """The comment a repository can ask for (``comment: true``): which labels, and how sure."""
    if prediction.abstain_reason is not None:
        return (f"PTM Triage added {', '.join(f'`{name}`' for name in wanted)} and no other label: "
                f"it abstains on this issue ({prediction.abstain_reason}). A maintainer should decide.")
    if not wanted:
        return (f"PTM Triage reads this issue as not about reusing a pre-trained model "
                f"(PTM score {prediction.ptm_score:.2f}), so it added no labels.")
    lines = [f"PTM Triage added {', '.join(f'`{name}`' for name in wanted)}.", ""]
    lines.append(f"- PTM-related: score {prediction.ptm_score:.2f}")
    for code in prediction.themes:
        lines.append(f"- {policy.label_name(code)}: score {prediction.theme_scores[code]:.2f}")
    if policy.abstain in wanted:
        lines.append(f"\n`{policy.abstain}` means the model was unsure; a maintainer should decide.")
    lines.append("\nA maintainer can change these labels; the app then leaves them alone. "
                 "`/ptm-triage reclassify` asks it to look again.")
    return "\n".join(lines)


async def comment(gh: GitHubAPI, target: Target, text: str, *, kind: str, delivery_id: str | None) -> bool:
    """Post ``text`` once per delivery: it carries a hidden marker naming the delivery, and is not posted
    when a comment with that marker is there already (an earlier attempt of the delivery, a redelivery,
    or a worker that crashed after posting it). False when it was there."""
    marker = f"<!-- ptm-triage:{kind} delivery={delivery_id} -->"
    url = f"/repos/{target.repo}/issues/{target.number}/comments"
    async for existing in gh.getiter(url):
        if isinstance(existing, dict) and marker in (existing.get("body") or ""):
            log.info("%s#%s: the %s comment of this delivery is there already", target.repo, target.number, kind)
            return False
    await gh.post(url, data={"body": f"{text}\n\n{marker}"})
    return True
