"""Turning one stored delivery into handler calls, and deciding what a failure means."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from gidgethub import GitHubBroken, HTTPException, RateLimitExceeded, sansio
from gidgethub.routing import Router
from sqlalchemy.exc import IntegrityError, OperationalError

from app.events import payloads
from app.events.tracking import MissingField
from app.services import Services
from app.store.models import Delivery

log = logging.getLogger(__name__)
GONE = (404, 410)  # waiting will not bring it back


@dataclass(frozen=True)
class Outcome:
    status: str  # done | skipped | retry | failed
    reason: str | None = None
    retry_after_s: float | None = None


def _retry_wait(exc: Exception) -> float | None:
    """For a failure that may pass (GitHub's or the network's): seconds to wait, 0 for "back off".

    None means it will not pass by waiting.
    """
    if isinstance(exc, RateLimitExceeded):
        reset: datetime | None = getattr(exc.rate_limit, "reset_datetime", None)  # None without a RateLimit
        if reset is None:
            return 60.0
        return max(1.0, (reset - datetime.now(UTC)).total_seconds())
    if isinstance(exc, HTTPException) and exc.status_code in (403, 429):
        return float(exc.headers.get("retry-after", 60))
    if isinstance(exc, (GitHubBroken, httpx.TransportError, OperationalError)):
        return 0.0
    if isinstance(exc, IntegrityError):  # another writer (backfill, a second worker) made the row first
        return 0.0
    return None


async def process(delivery: Delivery, router: Router, services: Services) -> Outcome:
    """What became of the delivery; never raises (whatever goes wrong is an outcome)."""
    if delivery.payload_pruned_at is not None:
        return Outcome("skipped", "its payload was dropped after the retention period")
    try:
        data = json.loads(delivery.payload)
    except ValueError as exc:
        return Outcome("skipped", f"payload is not JSON: {exc}")
    if not isinstance(data, dict):
        return Outcome("skipped", "payload is not a JSON object")
    event = sansio.Event(data, event=delivery.event, delivery_id=delivery.id)
    try:
        handlers = router.fetch(event)
    except Exception as exc:  # e.g. an action that is a list: the router cannot look it up
        return Outcome("skipped", f"cannot route {delivery.event} with action {data.get('action')!r}: {exc}")
    if not handlers:
        return Outcome("skipped", f"no handler for {delivery.event}.{data.get('action') or '-'}")
    try:
        payloads.check(data)
        await router.dispatch(event, services)
    except MissingField as exc:
        return Outcome("skipped", str(exc))
    except Exception as exc:
        if isinstance(exc, HTTPException) and exc.status_code in GONE:
            return Outcome("skipped", f"GitHub answered {exc.status_code}: the issue or repository was deleted, "
                                      f"transferred or is no longer the app's ({exc})")
        wait = _retry_wait(exc)
        if wait is not None:
            return Outcome("retry", f"{type(exc).__name__}: {exc}", wait)
        log.exception("delivery %s (%s) failed", delivery.id, delivery.event)
        return Outcome("failed", f"{type(exc).__name__}: {exc}")
    return Outcome("done")
