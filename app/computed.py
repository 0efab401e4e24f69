"""Answers the dashboard and ``/api/stats`` computed, kept until what they were computed from changes.

An answer's key names it (what, for which repository, with which filters) and carries the data
version of that repository (of all, for an installation-wide answer: ``app.store.queries.data_version``)
and the day, since the ages of open issues grow with it. A change makes a new key, so nothing is
ever served from data that has changed; old answers age out of the LRU. A repository of 100,000
issues takes seconds to compute and milliseconds to serve again.

The answers asked for in the last ``RECENT_S`` seconds are computed again by :meth:`Computed.refresh`
(the worker calls it when it has worked through the deliveries queued), so that a maintainer who
looks again after a delivery does not wait for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from threading import Lock
from typing import Any, TypeVar, cast

from cachetools import LRUCache
from sqlalchemy.orm import Session

from app.store.db import Database
from app.store.queries import data_version

T = TypeVar("T")
ANSWERS = 256
RECENT_S = 900.0


@dataclass
class _Recipe:
    compute: Callable[[Session], Any]
    asked_at: float


class Computed:
    """A bounded map from answer keys to answers, safe to share between request threads."""

    def __init__(self, size: int = ANSWERS) -> None:
        self._answers: LRUCache[Hashable, Any] = LRUCache(maxsize=size)
        self._recipes: LRUCache[tuple[Hashable, int | None], _Recipe] = LRUCache(maxsize=size)
        self._lock = Lock()
        self.hits = self.misses = self.refreshed = 0

    def answer(self, session: Session, what: Hashable, repository_id: int | None,
               compute: Callable[[Session], T]) -> T:
        """The answer ``what`` about one repository (all, with None) as the data stands now: the one
        kept, or ``compute(session)``'s, kept from now on. ``what`` holds everything else the answer
        depends on (its filters). Two requests that miss at once both compute the same answer."""
        key = self._key(session, what, repository_id)
        with self._lock:
            self._recipes[what, repository_id] = _Recipe(compute, time.monotonic())
            if key in self._answers:
                self.hits += 1
                return cast(T, self._answers[key])
            self.misses += 1
        return self._keep(key, compute(session))

    def refresh(self, db: Database) -> int:
        """Compute again every answer asked for recently whose data has changed; how many were."""
        with self._lock:
            recent = [(name, recipe) for name, recipe in self._recipes.items()
                      if time.monotonic() - recipe.asked_at <= RECENT_S]
        computed = 0
        for (what, repository_id), recipe in recent:
            with db.session() as session:
                key = self._key(session, what, repository_id)
                with self._lock:
                    if key in self._answers:
                        continue
                self._keep(key, recipe.compute(session))
                computed += 1
        with self._lock:
            self.refreshed += computed
        return computed

    @staticmethod
    def _key(session: Session, what: Hashable, repository_id: int | None) -> tuple[Hashable, ...]:
        return what, repository_id, data_version(session, repository_id), datetime.now(UTC).date()

    def _keep(self, key: Hashable, answer: T) -> T:
        with self._lock:
            self._answers[key] = answer
        return answer
