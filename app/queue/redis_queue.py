"""Scale-out: delivery ids on an arq queue in Redis, worked by any number of ``ptm-triage worker`` processes.

arq rather than Celery: its workers are one asyncio event loop running many jobs at once, so the
handlers (async, gidgethub) run as they are, and the issues of all the deliveries a worker has in
hand meet in one ``ClassifyBatcher`` batch; Celery would run each task in a thread or process of
its own, with an event loop per task, and batch nothing.

The ``deliveries`` row stays the durable record (an outbox): a receiver stores the delivery, then
enqueues its id; Redis only says which row to look at next. A job claims its row like any worker
(``app.queue.attempts``), so a job run twice, a redelivered id or an id enqueued by two sweepers has
its effects once. Every worker also sweeps: deliveries stored but neither finished nor in flight
(Redis was down or restarted, a worker died, a retry fell due) are enqueued again. Job ids are
``delivery id#attempts``: an id is queued once per attempt, and one left behind by a dead worker
does not hold up the next attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker, func
from redis.exceptions import RedisError

from app.config import Settings
from app.events import router as event_router
from app.queue.attempts import DeliveryAttempts
from app.queue.pruning import PayloadPruning
from app.services import Services
from app.store import queries
from app.store.models import utcnow
from app.workflow.backfill import BackfillRunner

log = logging.getLogger(__name__)
JOB = "work_delivery"
ENQUEUE_TIMEOUT_S = 1.0  # a receiver does not hold an acknowledgement longer for Redis: the sweep catches up
POLL_S = 0.02  # how often an idle worker looks at the queue (arq polls)
SWEEP_LIMIT = 1000  # deliveries looked at per sweep, oldest first
JOB_TIMEOUT_S = 300  # a job cancelled after this hands its delivery back; the sweep enqueues it again


def job_id(delivery_id: str, attempts: int, successor: bool = False) -> str:
    """``delivery id#attempts``; a successor's job (enqueued when the delivery before it finished) has an id of its
    own: its first job may still be running, having found that delivery unfinished a moment ago."""
    return f"{delivery_id}#{attempts}" + ("-next" if successor else "")


def redis_settings(settings: Settings, retries: int) -> RedisSettings:
    found = RedisSettings.from_dsn(settings.redis_url)
    found.conn_retries, found.conn_timeout = retries, 1
    return found


class RedisQueue:
    """Enqueueing delivery ids; what receivers and sweepers hold. A Redis that is away is logged, not raised:
    the delivery is stored, and the next sweep enqueues it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool: ArqRedis | None = None

    async def _connected(self) -> ArqRedis:
        if self._pool is None:
            self._pool = await create_pool(redis_settings(self._settings, retries=0),
                                           default_queue_name=self._settings.redis_queue_name)
        return self._pool

    async def submit(self, delivery_id: str) -> None:
        """A delivery was just stored (its first attempt)."""
        await self.enqueue(delivery_id, 0)

    async def enqueue(self, delivery_id: str, attempts: int, successor: bool = False) -> bool:
        """False when Redis could not be reached, or the attempt is queued already."""
        key = job_id(delivery_id, attempts, successor)
        try:
            pool = await asyncio.wait_for(self._connected(), ENQUEUE_TIMEOUT_S)
            job = await asyncio.wait_for(pool.enqueue_job(JOB, delivery_id, _job_id=key), ENQUEUE_TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("delivery %s not enqueued (%s: %s); the sweep enqueues it once Redis answers",
                        delivery_id, type(exc).__name__, exc)
            await self._drop_pool()
            return False
        return job is not None

    async def depth(self) -> int:
        """Jobs waiting in the queue."""
        pool = await self._connected()
        return int(await pool.zcard(self._settings.redis_queue_name))

    async def _drop_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.aclose()

    async def aclose(self) -> None:
        await self._drop_pool()


class Sweeper:
    """Enqueues again what is stored, due and not in flight; takes back deliveries whose worker died; prunes."""

    def __init__(self, services: Services, queue: RedisQueue) -> None:
        self.services, self.queue = services, queue
        self._prune = PayloadPruning(services.db, services.settings.delivery_retention_days)

    async def sweep(self) -> int:
        """How many deliveries were enqueued again."""
        settings = self.services.settings
        # Those received within the last sweep interval were enqueued by their receiver a moment ago; those waiting
        # for an earlier delivery about their issue are enqueued when it finishes (QueueWorker.work_delivery).
        before = utcnow() - timedelta(seconds=settings.sweep_s)
        with self.services.db.session() as session:
            requeued = queries.requeue_expired(session, settings.worker_max_attempts)
            due = queries.due_deliveries(session, limit=SWEEP_LIMIT, received_before=before, first_in_line=True)
        if requeued:
            log.info("took back %d deliveries whose worker stopped answering", requeued)
        enqueued = 0
        for delivery in due:
            enqueued += await self.queue.enqueue(delivery.id, delivery.attempts)
        if enqueued:
            log.info("sweep: enqueued %d stored deliveries again", enqueued)
        self._prune()
        return enqueued

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("sweep failed; trying again at the next")
            await asyncio.sleep(self.services.settings.sweep_s)


class QueueWorker:
    """What one ``ptm-triage worker`` process runs in scale-out mode: arq's worker over ``DeliveryAttempts``,
    the sweeper and the backfill runner, until it is told to stop."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.attempts = DeliveryAttempts(services, event_router)
        self.queue = RedisQueue(services.settings)
        self.sweeper = Sweeper(services, self.queue)

    async def work_delivery(self, ctx: dict[str, Any], delivery_id: str) -> str:
        """The arq job: one attempt; then the next delivery about the same issue, which waited for this one."""
        attempt = await self.attempts.attempt(delivery_id)
        if attempt is None:
            return "not claimed"
        if attempt.status in queries.FINISHED and attempt.ordering_key is not None:
            with self.services.db.session() as session:
                successor = queries.next_in_line(session, attempt.ordering_key)
            if successor is not None:
                await self.queue.enqueue(successor.id, successor.attempts, successor=True)
        return attempt.status

    def _arq_worker(self) -> Worker:
        settings = self.services.settings
        return Worker(
            functions=[func(self.work_delivery, name=JOB, max_tries=1)],  # a second try is a new job (see above)
            redis_settings=redis_settings(settings, retries=5), queue_name=settings.redis_queue_name,
            max_jobs=settings.worker_concurrency, poll_delay=POLL_S, keep_result=0, job_timeout=JOB_TIMEOUT_S,
            handle_signals=False, log_results=False,
        )

    async def run(self) -> None:
        """Until cancelled; a Redis that goes away is waited for (the sweep enqueues again what it lost)."""
        runner = BackfillRunner(self.services)
        await runner.start()
        sweeping = asyncio.create_task(self.sweeper.run(), name="sweeper")
        try:
            while True:
                worker = self._arq_worker()
                try:
                    await worker.async_run()
                except (RedisError, OSError) as exc:
                    log.warning("Redis is unavailable (%s: %s); trying again in a second", type(exc).__name__, exc)
                    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)  # the jobs in hand finish
                    await asyncio.sleep(1)
                finally:
                    # Stopping: the jobs still in hand are cancelled and hand their deliveries back.
                    with contextlib.suppress(Exception):  # Redis may be away: the sweep sees to what it held
                        await worker.close()
        finally:
            sweeping.cancel()
            await asyncio.gather(sweeping, return_exceptions=True)
            await runner.stop()
            await self.queue.aclose()

