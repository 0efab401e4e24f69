"""Dropping the payloads of deliveries finished longer ago than ``PTM_TRIAGE_DELIVERY_RETENTION_DAYS``."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from app.store import queries
from app.store.db import Database

log = logging.getLogger(__name__)
PRUNE_EVERY_S = 3600.0


class PayloadPruning:
    """Called as often as a worker likes; prunes at most once an hour (and at the first call)."""

    def __init__(self, db: Database, retention_days: float) -> None:
        self._db, self._retention_days = db, retention_days
        self._pruned_at = -PRUNE_EVERY_S  # monotonic time of the last pruning

    def __call__(self) -> None:
        if time.monotonic() - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = time.monotonic()
        cutoff = datetime.now(UTC) - timedelta(days=self._retention_days)
        try:
            with self._db.session() as session:
                pruned = queries.prune_payloads(session, cutoff)
        except Exception:
            log.exception("dropping old payloads failed; tried again in an hour")
            return
        if pruned:
            log.info("dropped the payloads of %d deliveries finished before %s", pruned, cutoff.date())
