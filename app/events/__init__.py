"""Webhook handlers, one module per concern, composed into one router."""

from gidgethub.routing import Router

from app.events import commands, configuration, feedback, installations, lifecycle, repo_labels, triage

router = Router(
    installations.router,
    lifecycle.router,
    triage.router,
    feedback.router,
    commands.router,
    configuration.router,
    repo_labels.router,
)
