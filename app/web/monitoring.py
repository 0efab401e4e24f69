"""``GET /metrics`` (Prometheus' text format) and the count of the webhook's answers by status code.

The metrics name no repository (``app.metrics``), so they are served to whoever can reach the service,
as Prometheus scrapes; keep the route off the public internet where that matters.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.deps import ServicesDep

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(services: ServicesDep) -> Response:
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


class CountWebhookAnswers:
    """ASGI middleware: every answer of ``POST /webhook``, 4xx included, counted by its status code."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/webhook":
            await self.app(scope, receive, send)
            return

        async def counted(message: Message) -> None:
            services = getattr(scope["app"].state, "services", None)
            if message["type"] == "http.response.start" and services is not None:
                services.metrics.webhook_answers.labels(str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counted)
