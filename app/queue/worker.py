"""The in-process worker: works through stored deliveries in the order they came.

Deliveries are the queue. Claiming is a conditional UPDATE with a short lease
(``PTM_TRIAGE_WORKER_LEASE_S``) that the worker renews while it works
(``app.queue.lease``), so several workers on one PostgreSQL database never take
the same delivery. A worker that stops hands its delivery back; one that dies
leaves it ``processing`` until the lease runs out (seconds), and then any worker
takes it up again. The same claims and leases serve the workers of the Redis queue
(``app.queue.redis_queue``): ``app.queue.attempts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from gidgethub.routing import Router

from app.queue.attempts import DeliveryAttempts
from app.queue.pruning import PayloadPruning
from app.services import Services
from app.store import queries
from app.workflow.backfill import BackfillRunner

log = logging.getLogger(__name__)


class DeliveryWorker:
    def __init__(self, services: Services, router: Router) -> None:
        self.services = services
        self.router = router
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.attempts = DeliveryAttempts(services, router)
        self._changed = True  # the dashboard's answers are to be refreshed (at start, and after deliveries)
        self._refresh: asyncio.Task[None] | None = None
        self._prune = PayloadPruning(services.db, services.settings.delivery_retention_days)

    def notify(self) -> None:
        """A new delivery is stored: look now instead of at the next poll."""
        self._wake.set()

    async def submit(self, delivery_id: str) -> None:
        self.notify()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="delivery-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._refresh is not None:
            self.services.computed.stop()
            await self._refresh  # a thread: it cannot be cancelled; it ends after the answer it is computing
            self._refresh = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before looking, so a delivery stored meanwhile wakes the next wait at once
            try:
                worked = await self.run_once()
            except Exception:
                log.exception("worker loop error; continuing")
                worked = 0
            if worked:
                self._changed = True
                continue
            self._prune()
            if self._changed and (self._refresh is None or self._refresh.done()):
                self._changed = False
                self._refresh = asyncio.create_task(asyncio.to_thread(self._refresh_answers), name="refresh-answers")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.services.settings.worker_poll_s)

    def _refresh_answers(self) -> None:
        """Compute again the dashboard's standing answers and those asked for lately whose data changed
        (``app.computed``): at start, and whenever the queue is worked through."""
        try:
            refreshed = self.services.computed.refresh(self.services.db)
        except Exception:
            log.exception("refreshing the dashboard's answers failed; they are computed when asked for")
            return
        if refreshed:
            log.info("refreshed %d dashboard answers", refreshed)

    async def run_once(self) -> int:
        """Process the deliveries due now, up to ``PTM_TRIAGE_WORKER_CONCURRENCY`` of them together; returns
        how many were claimed. Those about one issue are worked in the order they came, and any other
        delivery (an installation, a label renamed, a push) alone, after everything before it."""
        with self.services.db.session() as session:
            requeued = queries.requeue_expired(session, self.services.settings.worker_max_attempts)
            due = queries.due_deliveries(session, limit=self.services.settings.worker_concurrency)
        if requeued:
            log.info("requeued %d deliveries whose worker stopped answering", requeued)
        claimed = 0
        for together in _rounds(due):
            done = await asyncio.gather(*(self._work_through(ids) for ids in together))
            claimed += sum(done)
        return claimed

    async def _work_through(self, ids: list[str]) -> int:
        """One issue's deliveries, in order; how many were claimed."""
        claimed = 0
        for delivery_id in ids:
            claimed += await self.attempts.attempt(delivery_id) is not None
        return claimed


@contextlib.asynccontextmanager
async def working(services: Services, router: Router) -> AsyncIterator[DeliveryWorker]:
    """The deliveries table worked, and the backfills run, on this loop until the block ends."""
    worker, runner = DeliveryWorker(services, router), BackfillRunner(services)
    await worker.start()
    await runner.start()
    try:
        yield worker
    finally:
        await runner.stop()
        await worker.stop()


def _rounds(due: list[queries.Due]) -> list[list[list[str]]]:
    """The due deliveries in rounds worked one after the other; each round is lists of ids worked side by side,
    each list in order (one issue's)."""
    rounds: list[list[list[str]]] = []
    groups: dict[str, list[str]] = {}
    for delivery in due:
        if delivery.ordering_key is None:
            if groups:
                rounds.append(list(groups.values()))
                groups = {}
            rounds.append([[delivery.id]])
        else:
            groups.setdefault(delivery.ordering_key, []).append(delivery.id)
    if groups:
        rounds.append(list(groups.values()))
    return rounds
