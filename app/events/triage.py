"""Classify new and edited issues and label them, humans first."""

from __future__ import annotations

import logging

from gidgethub import routing, sansio

from app import labelling
from app.events.tracking import installation_id, track_issue
from app.services import Services

log = logging.getLogger(__name__)
router = routing.Router()


@router.register("issues", action="opened")
@router.register("issues", action="edited")
async def issue_changed(event: sansio.Event, services: Services) -> None:
    policy = services.policy
    with services.db.session() as session:
        repo, issue, _ = track_issue(session, event)
        where = f"{repo.full_name}#{issue.number}"
        if issue.labels_locked_by_human:
            log.info("%s: a person changed the app's labels; not relabelling", where)
            return
        ours = [name for name in issue.labels if policy.is_app_label(name)]
        if event.data.get("action") == "opened" and ours:
            issue.labels_locked_by_human = True
            log.info("%s: opened with the app's labels %s already set; left as it is", where, ours)
            return
        target = labelling.target_of(issue)
    prediction = (await labelling.classify(services, [target.text]))[0]
    gh = await services.installation_client(installation_id(event))
    await labelling.apply(services, gh, target, prediction, policy, delivery_id=event.delivery_id)
