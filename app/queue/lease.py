"""Keeping a worker's lease on the delivery it is working on (a heartbeat).

The lease is short (``PTM_TRIAGE_WORKER_LEASE_S``, 30 s), so a delivery whose worker
died is taken up again within it; while the worker lives, a thread renews the lease
every third of it. A thread rather than a task: classification may hold the event
loop for longer than a lease, and the lease must outlive that, not the process.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from types import TracebackType

from app.store import queries
from app.store.db import Database

log = logging.getLogger(__name__)


def worker_name() -> str:
    """Who holds a lease: host, process and a random part (a restarted process is another worker)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseKeeper:
    """``with LeaseKeeper(db, delivery_id, owner, lease_s):`` renews the lease until the block ends."""

    def __init__(self, db: Database, delivery_id: str, owner: str, lease_s: float) -> None:
        self._db, self._delivery_id, self._owner, self._lease_s = db, delivery_id, owner, lease_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{delivery_id[:20]}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._lease_s / 3):
            try:
                with self._db.session() as session:
                    held = queries.renew_lease(session, self._delivery_id, self._owner, self._lease_s)
            except Exception:  # the database is away for a moment: try again at the next beat
                log.warning("delivery %s: renewing the lease failed; trying again", self._delivery_id, exc_info=True)
                continue
            if not held:  # its outcome will not be recorded either (queries.finish_delivery)
                log.warning("delivery %s: its lease was taken over by another worker", self._delivery_id)
                return
