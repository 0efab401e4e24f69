"""``ptm-triage worker``: a process that only works deliveries and backfills (no HTTP).

With ``PTM_TRIAGE_QUEUE=redis`` it takes delivery ids from the Redis queue (``app.queue.redis_queue``);
otherwise it polls the deliveries table like the service's in-process worker, for receivers started
with ``PTM_TRIAGE_WORKER=off`` on a shared PostgreSQL database. Start as many as the load needs.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from app.config import Settings
from app.events import router as event_router
from app.queue.redis_queue import QueueWorker
from app.queue.worker import working
from app.services import Services, build_services, identify_app

log = logging.getLogger(__name__)
CANCEL_AGAIN_S = 5.0


async def _work_the_database(services: Services) -> None:
    async with working(services, event_router):
        await asyncio.Event().wait()  # until cancelled


async def run_worker(settings: Settings) -> None:
    """Until SIGTERM or SIGINT; the deliveries in hand are handed back to the queue."""
    logging.getLogger("arq").setLevel(logging.WARNING)  # arq logs a line per job otherwise
    services = build_services(settings)
    await identify_app(services)
    where = (f"Redis queue {settings.redis_queue_name} at {settings.redis_url.rsplit('@', 1)[-1]}"
             if settings.queue == "redis" else "the deliveries table")
    log.info("worker: model %s; database %s; deliveries from %s", services.classifier.version,
             services.db.backend, where)
    work = QueueWorker(services).run() if settings.queue == "redis" else _work_the_database(services)
    main = asyncio.create_task(work, name="worker")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await asyncio.wait([main, asyncio.create_task(stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
        while not main.done():  # asked to stop: cancelled again should a library swallow the cancellation
            main.cancel()
            await asyncio.wait([main], timeout=CANCEL_AGAIN_S)
        if not main.cancelled():
            main.result()  # what it raised, if it ended on its own
    finally:
        await services.aclose()
        log.info("worker stopped")
