"""Writing the app's labels to GitHub: create what the repository lacks, then add and remove."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from gidgethub import BadRequest, HTTPException
from gidgethub.abc import GitHubAPI

from app.triage.labels import LabelSpec

log = logging.getLogger(__name__)


def _already_exists(exc: HTTPException) -> bool:
    errors = getattr(exc, "errors", None) or []
    return exc.status_code == 422 and (
        not errors or any(isinstance(e, dict) and e.get("code") == "already_exists" for e in errors)
    )


async def ensure_labels(
    gh: GitHubAPI, repo: str, specs: Iterable[LabelSpec], known: set[str]
) -> None:
    """Create each label the repository lacks (colour and description); ``known`` caches lower-case names."""
    for spec in specs:
        if spec.name.lower() in known:
            continue
        try:
            await gh.post(
                f"/repos/{repo}/labels",
                data={"name": spec.name, "color": spec.color, "description": spec.description},
            )
        except BadRequest as exc:
            if not _already_exists(exc):
                raise
        known.add(spec.name.lower())


async def add_labels(gh: GitHubAPI, repo: str, number: int, names: Sequence[str]) -> None:
    if names:
        await gh.post(f"/repos/{repo}/issues/{number}/labels", data={"labels": list(names)})


async def remove_label(gh: GitHubAPI, repo: str, number: int, name: str) -> None:
    """Remove one label; one that is already gone is fine."""
    try:
        await gh.delete(f"/repos/{repo}/issues/{number}/labels/{quote(name, safe='')}")
    except BadRequest as exc:
        if exc.status_code != 404:
            raise
        log.info("label %r was already gone from %s#%s", name, repo, number)
