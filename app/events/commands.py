"""``/ptm-triage reclassify`` in an issue comment, from someone with write access."""

from __future__ import annotations

import logging
from urllib.parse import quote

from gidgethub import routing, sansio

from app.events.tracking import field, installation_id, track_issue
from app.services import Services
from app.store.models import Issue
from app.workflow import labelling, repo_config

log = logging.getLogger(__name__)
router = routing.Router()

COMMAND = "/ptm-triage reclassify"
WRITERS = {"admin", "maintain", "write"}


def asks_to_reclassify(body: str | None) -> bool:
    return any(line.strip().lower().startswith(COMMAND) for line in (body or "").splitlines())


@router.register("issue_comment", action="created")
async def comment_created(event: sansio.Event, services: Services) -> None:
    comment = field(event.data, "comment")
    if not asks_to_reclassify(comment.get("body")) or "pull_request" in event.data.get("issue", {}):
        return
    user = field(comment, "user", "login")
    gh = await services.installation_client(installation_id(event))
    with services.db.session() as session:
        repo, issue, _ = track_issue(session, event)
        target, repo_id = labelling.target_of(issue), repo.id
    if gh is None:
        log.info("%s#%s: %s asked to reclassify; nothing to write in dry-run", target.repo, target.number, user)
        return
    permission = await gh.getitem(f"/repos/{target.repo}/collaborators/{quote(user, safe='')}/permission")
    role = permission.get("role_name") or permission.get("permission")
    if role not in WRITERS:
        log.info("%s#%s: %s (%s) may not reclassify; ignored", target.repo, target.number, user, role)
        return
    config = (await repo_config.load(services, gh, repo_id, target.repo)).settings
    with services.db.session() as session:
        session.get_one(Issue, target.issue_id).labels_locked_by_human = False
    prediction = (await labelling.classify(services, [target.text]))[0]
    await labelling.apply(services, gh, target, prediction, config.policy(services.policy),
                          delivery_id=event.delivery_id, write=not config.dry_run)
    log.info("%s#%s: reclassified at %s's request", target.repo, target.number, user)
