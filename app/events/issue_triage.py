"""Classify new and edited issues and label them, humans first, as the repository's configuration says."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gidgethub import sansio

from app.events.tracking import installation_id
from app.services import Services
from app.store.models import Issue, Repository
from app.workflow import labelling, repo_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackedIssue:
    """What triage needs of the issue as the delivery's tracking step left it."""

    target: labelling.Target
    locked: bool  # a person changed the app's labels
    author: str | None
    author_type: str | None
    repo_id: int

    @classmethod
    def of(cls, repo: Repository, issue: Issue) -> TrackedIssue:
        return cls(labelling.target_of(issue), issue.labels_locked_by_human, issue.author_login, issue.author_type,
                   repo.id)


async def triage_issue(event: sansio.Event, services: Services, tracked: TrackedIssue) -> None:
    """Classify and label the delivery's issue, tracked already by ``events/issue_text.py``."""
    opened = event.data.get("action") == "opened"
    target, author, author_type, repo_id = tracked.target, tracked.author, tracked.author_type, tracked.repo_id
    where = f"{target.repo}#{target.number}"
    if tracked.locked:
        log.info("%s: a person changed the app's labels; not relabelling", where)
        return
    gh = await services.installation_client(installation_id(event))
    loaded = await repo_config.load(services, gh, repo_id, target.repo)
    if gh is not None and loaded.report_error:
        await labelling.comment(gh, target, loaded.error_comment(), kind="config-error", delivery_id=event.delivery_id)
    config = loaded.settings
    if not config.enabled:
        log.info("%s: the app is switched off in %s", where, repo_config.CONFIG_PATH)
        return
    reason = config.ignore_reason(author, author_type, list(target.labels))
    if reason:
        log.info("%s: left alone: %s", where, reason)
        return
    policy = config.policy(services.policy)
    ours = [name for name in target.labels if policy.is_app_label(name)]
    if opened and ours:
        with services.db.session() as session:
            session.get_one(Issue, target.issue_id).labels_locked_by_human = True
        log.info("%s: opened with the app's labels %s already set; left as it is", where, ours)
        return
    prediction = (await labelling.classify(services, [target.text]))[0]
    write = not config.dry_run
    applied = await labelling.apply(services, gh, target, prediction, policy,
                                    delivery_id=event.delivery_id, write=write)
    if gh is not None and write and opened and config.comment:
        await labelling.comment(gh, target, labelling.explanation(applied.prediction, applied.labels, policy),
                                kind="explanation", delivery_id=event.delivery_id)
    await labelling.follow_share(services, gh, repo_id, config)
