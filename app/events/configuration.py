"""A push that changes ``.github/ptm-triage.yml`` on the default branch refreshes the cached configuration."""

from __future__ import annotations

import logging
from typing import Any

from gidgethub import routing, sansio

from app.events.tracking import field
from app.services import Services
from app.workflow import repo_config

log = logging.getLogger(__name__)
router = routing.Router()


def touches_config(data: dict[str, Any]) -> bool:
    for commit in [*(data.get("commits") or []), data.get("head_commit") or {}]:
        for key in ("added", "modified", "removed"):
            if repo_config.CONFIG_PATH in (commit.get(key) or []):
                return True
    return False


@router.register("push")
async def pushed(event: sansio.Event, services: Services) -> None:
    repo = field(event.data, "repository")
    default_branch = repo.get("default_branch") or repo.get("master_branch") or "main"
    if event.data.get("ref") != f"refs/heads/{default_branch}" or not touches_config(event.data):
        return
    refreshed = repo_config.invalidate(services, field(repo, "full_name"))
    log.info("%s: %s changed; %d cached configurations will be read again",
             repo["full_name"], repo_config.CONFIG_PATH, refreshed)
