"""Answers the dashboard and ``/api/stats`` computed, kept until what they were computed from changes.

An answer's key names it (what, for which repository, with which filters) and carries the data
version of that repository (of all, for an installation-wide answer: ``app.store.queries.data_version``)
and the day, since the ages of open issues grow with it. A change makes a new key, so nothing is
ever served from data that has changed; old answers age out of the LRU. A repository of 100,000
issues takes seconds to compute and milliseconds to serve again.

:meth:`Computed.refresh` computes again, where their data changed, the answers asked for in the
last ``RECENT_S`` seconds and the standing ones (:meth:`Computed.keep_current`: the overview and
every repository's page as they first open). The service runs it at start and the worker runs it
whenever it has worked through the queue, so a maintainer does not wait for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from threading import Lock
from typing import Any

from cachetools import LRUCache
from sqlalchemy.orm import Session

from app.store.db import Database
from app.store.queries import Scope, data_version

Recipe = tuple[Hashable, Scope, Callable[[Session], Any]]  # what, which repositories, how to compute it
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
        self._recipes: LRUCache[tuple[Hashable, Scope], _Recipe] = LRUCache(maxsize=size)
        self._lock = Lock()
        self.hits = self.misses = self.refreshed = 0
        self._standing: Callable[[Session], list[Recipe]] = lambda _session: []
        self._stopping = False

    def keep_current(self, standing: Callable[[Session], list[Recipe]]) -> None:
        """Have :meth:`refresh` keep the answers ``standing`` lists (read in a session of its own) current."""
        self._standing = standing

    def stop(self) -> None:
        """Make a refresh under way end after the answer it is computing."""
        self._stopping = True

    def answer(self, session: Session, recipe: Recipe) -> Any:
        """The answer ``recipe`` names (``what``: everything it depends on, such as its filters;
        about the repositories in a scope: ``app.store.queries.Scope``) as the data stands now: the one kept, or the one
        its ``compute(session)`` gives, kept from now on. Two requests that miss at once both
        compute the same answer."""
        what, scope, compute = recipe
        key = self._key(session, what, scope)
        with self._lock:
            self._recipes[what, scope] = _Recipe(compute, time.monotonic())
            if key in self._answers:
                self.hits += 1
                return self._answers[key]
            self.misses += 1
        return self._keep(key, compute(session))

    def stale(self, db: Database) -> list[Recipe]:
        """The standing answers and those asked for recently that are not kept for their data as it stands."""
        with self._lock:
            recent = [(what, scope, recipe.compute) for (what, scope), recipe in self._recipes.items()
                      if time.monotonic() - recipe.asked_at <= RECENT_S]
        with db.session() as session:
            recipes = [*self._standing(session), *recent]
            keys = [self._key(session, what, scope) for what, scope, _ in recipes]
        with self._lock:
            return [recipe for recipe, key in zip(recipes, keys, strict=True) if key not in self._answers]

    def refresh(self, db: Database) -> int:
        """Compute the :meth:`stale` answers; how many were."""
        computed = 0
        for what, scope, compute in self.stale(db):
            if self._stopping:
                break
            with db.session() as session:
                key = self._key(session, what, scope)
                with self._lock:
                    if key in self._answers:  # asked for meanwhile
                        continue
                self._keep(key, compute(session))
                computed += 1
        with self._lock:
            self.refreshed += computed
        return computed

    @staticmethod
    def _key(session: Session, what: Hashable, scope: Scope) -> tuple[Hashable, ...]:
        return what, scope, data_version(session, scope), datetime.now(UTC).date()

    def _keep(self, key: Hashable, answer: Any) -> Any:
        with self._lock:
            self._answers[key] = answer
        return answer
