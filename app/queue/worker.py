"""The in-process worker: works through stored deliveries in the order they came.

Deliveries are the queue. Claiming is a conditional UPDATE with a short lease
(``PTM_TRIAGE_WORKER_LEASE_S``) that the worker renews while it works
(``app.queue.lease``), so several workers on one PostgreSQL database never take
the same delivery. A worker that stops hands its delivery back; one that dies
leaves it ``processing`` until the lease runs out (seconds), and then any worker
takes it up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gidgethub.routing import Router

from app import logs
from app.queue.dispatch import Outcome, process
from app.queue.lease import LeaseKeeper, worker_name
from app.services import Services
from app.store import queries

log = logging.getLogger(__name__)
PRUNE_EVERY_S = 3600.0


class DeliveryWorker:
    def __init__(self, services: Services, router: Router) -> None:
        self.services = services
        self.router = router
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._current: str | None = None
        self._changed = True  # the dashboard's answers are to be refreshed (at start, and after deliveries)
        self._refresh: asyncio.Task[None] | None = None
        self._pruned_at = -PRUNE_EVERY_S  # monotonic time of the last pruning of old payloads
        self.name = worker_name()

    def notify(self) -> None:
        """A new delivery is stored: look now instead of at the next poll."""
        self._wake.set()

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
        if self._current is not None:
            with self.services.db.session() as session:
                queries.release_delivery(session, self._current, self.name)
            log.info("delivery %s handed back to the queue", self._current)
            self._current = None

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

    def _prune(self) -> None:
        """Drop the payloads of deliveries finished longer ago than the retention period, once an hour."""
        if time.monotonic() - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = time.monotonic()
        cutoff = datetime.now(UTC) - timedelta(days=self.services.settings.delivery_retention_days)
        try:
            with self.services.db.session() as session:
                pruned = queries.prune_payloads(session, cutoff)
        except Exception:
            log.exception("dropping old payloads failed; tried again in an hour")
            return
        if pruned:
            log.info("dropped the payloads of %d deliveries finished before %s", pruned, cutoff.date())

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

    async def run_once(self, batch: int = 20) -> int:
        """Process the deliveries due now; returns how many were claimed."""
        with self.services.db.session() as session:
            requeued = queries.requeue_expired(session, self.services.settings.worker_max_attempts)
            ids = queries.due_delivery_ids(session, limit=batch)
        if requeued:
            log.info("requeued %d deliveries whose worker stopped answering", requeued)
        claimed, lease_s = 0, self.services.settings.worker_lease_s
        for delivery_id in ids:
            with self.services.db.session() as session:
                delivery = queries.claim_delivery(session, delivery_id, lease_s, self.name)
            if delivery is None:
                continue
            claimed += 1
            self._current = delivery_id
            metrics = self.services.metrics
            with logs.about(delivery_id=delivery_id), LeaseKeeper(self.services.db, delivery_id, self.name, lease_s):
                with metrics.processing.labels(delivery.event).time():
                    try:
                        outcome = await process(delivery, self.router, self.services)
                    except Exception as exc:  # process() means not to raise; if it does, the attempt still counts
                        log.exception("delivery %s: processing raised", delivery_id)
                        outcome = Outcome("retry", f"{type(exc).__name__}: {exc}")
                self._record(delivery_id, delivery.attempts, outcome)
            metrics.deliveries.labels(delivery.event, outcome.status).inc()
            self._current = None
        return claimed

    def _record(self, delivery_id: str, attempts: int, outcome: Outcome) -> None:
        max_attempts = self.services.settings.worker_max_attempts
        outcome = replace(outcome, reason=logs.redact(outcome.reason, self.services.settings.secret_values())
                          if outcome.reason else None)
        with self.services.db.session() as session:
            if outcome.status == "retry" and attempts < max_attempts:
                delay = outcome.retry_after_s or 2.0 * 2 ** (attempts - 1)
                if not queries.retry_delivery_later(session, delivery_id, self.name, outcome.reason or "",
                                                    min(delay, 3600)):
                    log.warning("delivery %s: another worker took it over; its outcome stands", delivery_id)
                    return
                log.warning("delivery %s: %s; retry %d in %.0fs", delivery_id, outcome.reason, attempts, delay)
                return
            status = "failed" if outcome.status == "retry" else outcome.status
            if not queries.finish_delivery(session, delivery_id, self.name, status, outcome.reason):
                log.warning("delivery %s: another worker took it over; its outcome stands", delivery_id)
                return
        if status == "skipped":
            log.info("delivery %s skipped: %s", delivery_id, outcome.reason)
        elif status == "failed":
            log.error("delivery %s failed after %d attempts: %s", delivery_id, attempts, outcome.reason)
