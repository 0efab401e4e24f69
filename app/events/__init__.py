"""Webhook handlers, one module per concern, composed into one router.

Each event action has one handler: where an action needs several steps (``issues.opened``:
track, then triage), that handler calls them in order (``issue_text``).
"""

from gidgethub.routing import Router

from app.events import (
    commands,
    configuration,
    installations,
    issue_text,
    label_changes,
    lifecycle,
    repo_labels,
    repositories,
)

router = Router(
    installations.router,
    issue_text.router,
    lifecycle.router,
    label_changes.router,
    commands.router,
    configuration.router,
    repo_labels.router,
    repositories.router,
)
