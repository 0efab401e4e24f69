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
import json
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
        self._held: set[str] = set()  # deliveries claimed and not yet recorded
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
        for delivery_id in sorted(self._held):
            with self.services.db.session() as session:
                queries.release_delivery(session, delivery_id, self.name)
            log.info("delivery %s handed back to the queue", delivery_id)
        self._held.clear()

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
            claimed += await self._work(delivery_id)
        return claimed

    async def _work(self, delivery_id: str) -> int:
        lease_s, metrics = self.services.settings.worker_lease_s, self.services.metrics
        with self.services.db.session() as session:
            delivery = queries.claim_delivery(session, delivery_id, lease_s, self.name)
        if delivery is None:  # another worker took it first
            return 0
        self._held.add(delivery_id)
        with logs.about(delivery_id=delivery_id), LeaseKeeper(self.services.db, delivery_id, self.name, lease_s):
            with metrics.processing.labels(delivery.event).time():
                try:
                    outcome = await process(delivery, self.router, self.services)
                except Exception as exc:  # process() means not to raise; if it does, the attempt still counts
                    log.exception("delivery %s: processing raised", delivery_id)
                    outcome = Outcome("retry", f"{type(exc).__name__}: {exc}")
            self._record(delivery_id, delivery.attempts, outcome)
        metrics.deliveries.labels(delivery.event, outcome.status).inc()
        self._held.discard(delivery_id)
        return 1

    def _record(self, delivery_id: str, attempts: int, outcome: Outcome) -> None:
        max_attempts = self.services.settings.worker_max_attempts
        outcome = replace(outcome, reason=logs.redact(outcome.reason, self.services.settings.secret_values)
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


def ordering_key(event: str, payload: str | None) -> str | None:
    """Deliveries of one key are worked in the order they came: an issue's (``repository id#number``).
    None: a delivery about more than one issue, worked alone."""
    if event not in ("issues", "issue_comment") or payload is None:
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    repo, issue = data.get("repository"), data.get("issue")
    if not isinstance(repo, dict) or not isinstance(issue, dict):
        return None
    return f"{repo.get('id')}#{issue.get('number')}"


def _rounds(due: list[tuple[str, str, str | None]]) -> list[list[list[str]]]:
    """The due deliveries (id, event, payload) in rounds worked one after the other; each round is lists of
    ids worked side by side, each list in order."""
    rounds: list[list[list[str]]] = []
    groups: dict[str, list[str]] = {}
    for delivery_id, event, payload in due:
        key = ordering_key(event, payload)
        if key is None:
            if groups:
                rounds.append(list(groups.values()))
                groups = {}
            rounds.append([[delivery_id]])
        else:
            groups.setdefault(key, []).append(delivery_id)
    if groups:
        rounds.append(list(groups.values()))
    return rounds
