"""One attempt at a stored delivery: claim it, work it under a lease, record what became of it.

Every kind of worker does this the same way (the in-process one in ``app.queue.worker``, those of
the Redis queue in ``app.queue.redis_queue``), so the database decides alone who works a delivery:
a claim is a conditional UPDATE, an outcome is written only by the worker that holds the lease.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import NamedTuple

from gidgethub.routing import Router

from app import logs
from app.queue.dispatch import Outcome, process
from app.queue.lease import LeaseKeeper, worker_name
from app.services import Services
from app.store import queries

log = logging.getLogger(__name__)
MAX_RETRY_DELAY_S = 3600.0


class Attempt(NamedTuple):
    status: str  # done | skipped | failed | retry (queued again for later) | lost (its lease was taken over)
    ordering_key: str | None


class DeliveryAttempts:
    def __init__(self, services: Services, router: Router, name: str | None = None) -> None:
        self.services = services
        self.router = router
        self.name = name or worker_name()

    async def attempt(self, delivery_id: str) -> Attempt | None:
        """Work the delivery if this worker can claim it; None when it cannot (another worker has it, it is
        finished, or an earlier delivery about the same issue is unfinished). Cancelled while it works (the
        process is stopping), it hands the delivery back to the queue."""
        lease_s, metrics = self.services.settings.worker_lease_s, self.services.metrics
        with self.services.db.session() as session:
            delivery = queries.claim_delivery(session, delivery_id, lease_s, self.name)
            if delivery is None:
                return None
            event, attempts, key = delivery.event, delivery.attempts, delivery.ordering_key
        with logs.about(delivery_id=delivery_id), LeaseKeeper(self.services.db, delivery_id, self.name, lease_s):
            try:
                with metrics.processing.labels(event).time():
                    try:
                        outcome = await process(delivery, self.router, self.services)
                    except Exception as exc:  # process() means not to raise; if it does, the attempt still counts
                        log.exception("delivery %s: processing raised", delivery_id)
                        outcome = Outcome("retry", f"{type(exc).__name__}: {exc}")
            except asyncio.CancelledError:
                self._hand_back(delivery_id)
                raise
            status = self._record(delivery_id, attempts, outcome)
        metrics.deliveries.labels(event, outcome.status).inc()
        return Attempt(status, key)

    def _hand_back(self, delivery_id: str) -> None:
        with self.services.db.session() as session:
            queries.release_delivery(session, delivery_id, self.name)
        log.info("delivery %s handed back to the queue", delivery_id)

    def _record(self, delivery_id: str, attempts: int, outcome: Outcome) -> str:
        max_attempts = self.services.settings.worker_max_attempts
        outcome = replace(outcome, reason=logs.redact(outcome.reason, self.services.settings.secret_values)
                          if outcome.reason else None)
        with self.services.db.session() as session:
            if outcome.status == "retry" and attempts < max_attempts:
                delay = outcome.retry_after_s or 2.0 * 2 ** (attempts - 1)
                if not queries.retry_delivery_later(session, delivery_id, self.name, outcome.reason or "",
                                                    min(delay, MAX_RETRY_DELAY_S)):
                    log.warning("delivery %s: another worker took it over; its outcome stands", delivery_id)
                    return "lost"
                log.warning("delivery %s: %s; retry %d in %.0fs", delivery_id, outcome.reason, attempts, delay)
                return "retry"
            status = "failed" if outcome.status == "retry" else outcome.status
            if not queries.finish_delivery(session, delivery_id, self.name, status, outcome.reason):
                log.warning("delivery %s: another worker took it over; its outcome stands", delivery_id)
                return "lost"
        if status == "skipped":
            log.info("delivery %s skipped: %s", delivery_id, outcome.reason)
        elif status == "failed":
            log.error("delivery %s failed after %d attempts: %s", delivery_id, attempts, outcome.reason)
        return status
