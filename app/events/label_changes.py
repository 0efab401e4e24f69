"""A person adding or removing one of the app's labels: record it, and stop relabelling that issue."""

from __future__ import annotations

import logging
from typing import Any

from gidgethub import routing, sansio

from app.events.tracking import field, track_issue
from app.services import Services
from app.store.models import LabelChange

log = logging.getLogger(__name__)
router = routing.Router()


def is_person(sender: dict[str, Any], services: Services) -> bool:
    """Anyone but the app itself and other bots."""
    login = sender.get("login")
    return login != services.bot_login and sender.get("type") != "Bot" and not str(login).endswith("[bot]")


@router.register("issues", action="labeled")
@router.register("issues", action="unlabeled")
async def label_changed(event: sansio.Event, services: Services) -> None:
    name = field(event.data, "label", "name")
    sender = event.data.get("sender") or {}
    with services.db.session() as session:
        repo, issue, _ = track_issue(session, event)
        if not services.policy.is_app_label(name) or not is_person(sender, services):
            return
        action = "added" if event.data["action"] == "labeled" else "removed"
        after = list(issue.labels)
        before = [n for n in after if n != name] if action == "added" else after + [name]
        session.add(LabelChange(
            issue_id=issue.id, label=name, action=action, actor=sender.get("login"), by_app=False,
            labels_before=before, labels_after=after, delivery_id=event.delivery_id,
        ))
        issue.labels_locked_by_human = True
        log.info("%s#%s: %s %s label %r; the app leaves its labels alone from now on",
                 repo.full_name, issue.number, sender.get("login"), action, name)
