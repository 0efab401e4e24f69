"""Webhook handlers, one module per concern, composed into one router."""

from gidgethub.routing import Router

from app.events import feedback, installations, lifecycle, triage

router = Router(installations.router, lifecycle.router, triage.router, feedback.router)
