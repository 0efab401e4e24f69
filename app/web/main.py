"""The FastAPI application: routes, services and the in-process worker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware

from app import __version__
from app.config import Settings
from app.events import router as event_router
from app.queue.redis_queue import RedisQueue
from app.queue.worker_thread import WorkerThread
from app.services import Services, build_services, identify_app
from app.web import api, backfill_status, monitoring, pages, signin, webhook

log = logging.getLogger(__name__)


def announce(settings: Settings) -> None:
    """Say at start what a newcomer needs to know: dry-run or not, and which secret signs deliveries."""
    if settings.effective_dry_run:
        why = (
            "PTM_TRIAGE_DRY_RUN is set" if settings.dry_run
            else "no GitHub App credentials (GITHUB_APP_ID, GITHUB_PRIVATE_KEY[_PATH])"
            if not settings.has_github_credentials else "no GITHUB_WEBHOOK_SECRET"
        )
        log.warning("DRY-RUN (%s): issues are classified and recorded, nothing is written to GitHub", why)
    if settings.github_webhook_secret is None:
        log.warning(
            "no GITHUB_WEBHOOK_SECRET: deliveries must be signed with the local secret in %s "
            "(`ptm-triage receive` uses it)", settings.secret_file.resolve(),
        )


@asynccontextmanager
async def _queue(app: FastAPI, services: Services) -> AsyncIterator[None]:
    """Where stored deliveries go (``app.state.queue``): the in-process worker, or the Redis queue that
    ``ptm-triage worker`` processes take them from (they run the backfills too)."""
    settings = services.settings
    if settings.queue == "redis":
        app.state.queue = RedisQueue(settings)
        log.info("scale-out: deliveries are enqueued on %s for `ptm-triage worker` processes",
                 settings.redis_queue_name)
        try:
            yield
        finally:
            await app.state.queue.aclose()
        return
    if settings.worker == "off":
        log.warning("PTM_TRIAGE_WORKER=off: deliveries are stored and acknowledged, not processed here "
                    "(`ptm-triage worker` processes them)")
        app.state.queue = _StoreOnly()
        yield
        return
    worker = WorkerThread(services, event_router)
    app.state.queue = app.state.worker = worker
    worker.start()
    try:
        yield
    finally:
        await worker.stop()


class _StoreOnly:
    """The queue of a process that only receives: the delivery is stored, another process works it."""

    async def submit(self, delivery_id: str) -> None:
        return None


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        announce(settings)
        settings.make_local_secret()
        services = build_services(settings)
        services.computed.keep_current(pages.standing_answers(services))
        await identify_app(services)
        app.state.services = services
        log.info("model %s; database %s", services.classifier.version, services.db.backend)
        try:
            async with _queue(app, services):
                yield
        finally:
            await services.aclose()

    app = FastAPI(title="PTM Triage", version=__version__, lifespan=lifespan)
    app.state.oauth = signin.github_oauth(settings)
    # Signed (itsdangerous), HttpOnly, Secure, SameSite=Lax: what the sign-in keeps between requests.
    app.add_middleware(SessionMiddleware, secret_key=settings.session_key, session_cookie="ptm_triage_session",
                       max_age=int(settings.session_hours * 3600), same_site="lax", https_only=True)
    app.include_router(webhook.router)
    app.include_router(api.router)
    app.include_router(backfill_status.router)
    app.include_router(pages.router)
    app.include_router(signin.router)
    app.include_router(monitoring.router)
    app.add_middleware(monitoring.CountWebhookAnswers)
    return app
