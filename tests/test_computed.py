"""The dashboard's answers are computed once per state of their data, and never served stale."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.computed import Computed
from app.store.db import Database
from app.store.models import Repository
from app.store.queries import upsert_issue, upsert_repository
from tests.e2e import INSTALLATION, REPO, Stack, open_issue
from tests.waiting import wait_until


def counting(answer: object) -> tuple[Callable[[Session], object], list[int]]:
    calls: list[int] = []

    def compute(_session: Session) -> object:
        calls.append(1)
        return answer

    return compute, calls


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/answers.db")
    database.migrate()
    with database.session() as session:
        upsert_repository(session, {"id": 1, "full_name": "o/r"}, None)
    yield database
    database.dispose()


def change_repository(db: Database) -> None:
    with db.session() as session:
        repo = session.get(Repository, 1)
        assert repo is not None
        upsert_issue(session, repo, {"number": 1, "title": "t", "created_at": "2024-01-01T00:00:00Z"})


def test_an_answer_is_computed_once_per_data_version_and_the_oldest_make_room(db: Database) -> None:
    computed = Computed(size=2)
    compute, calls = counting("a")
    with db.session() as session:
        assert computed.answer(session, ("a", 1, compute)) == "a" == computed.answer(session, ("a", 1, compute))
        assert len(calls) == 1 and (computed.hits, computed.misses) == (1, 1)
        computed.answer(session, ("b", 1, lambda _: "b"))
        computed.answer(session, ("c", 1, lambda _: "c"))  # "a" is the least recently used
        computed.answer(session, ("a", 1, compute))
        assert len(calls) == 2
    change_repository(db)
    with db.session() as session:
        computed.answer(session, ("a", 1, compute))
    assert len(calls) == 3


def test_a_refresh_computes_the_standing_answers_and_those_asked_for_where_their_data_changed(db: Database) -> None:
    computed = Computed()
    compute, calls = counting("a")
    standing, standing_calls = counting("d")
    computed.keep_current(lambda _session: [("d", None, standing)])
    with db.session() as session:
        computed.answer(session, ("a", 1, compute))
    assert computed.refresh(db) == 1 and (len(calls), len(standing_calls)) == (1, 1)
    change_repository(db)
    assert len(computed.stale(db)) == 2
    assert computed.refresh(db) == 2 and computed.refresh(db) == 0 and not computed.stale(db)
    with db.session() as session:
        misses = computed.misses
        computed.answer(session, ("a", 1, compute))
        computed.answer(session, ("d", None, standing))
    assert computed.misses == misses and (len(calls), len(standing_calls)) == (2, 2)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_statistics_and_pages_follow_every_delivery_and_are_not_computed_again_without_one(stack: Stack) -> None:
    assert stack.app is not None
    computed: Computed = stack.app.state.services.computed
    number = open_issue(stack, "CUDA out of memory when loading the SDXL model", "RuntimeError: CUDA out of memory",
                        created_days_ago=30)
    before = stack.get("/api/stats", repo=REPO)
    page = stack.get_text(f"/dashboard/{REPO}")
    misses = computed.misses
    assert stack.get("/api/stats", repo=REPO) == before and stack.get_text(f"/dashboard/{REPO}") == page
    assert computed.misses == misses, "nothing changed, yet an answer was computed again"

    stack.sim.set_issue_state(REPO, number, "closed")
    stack.send("issues", stack.sim.issues_payload("closed", REPO, number, INSTALLATION))
    stack.settle()
    # the worker, done with the queue, computes again the answers asked for and the standing ones
    db = stack.app.state.services.db
    wait_until(lambda: not computed.stale(db), lambda: f"stale answers: {[w for w, _, _ in computed.stale(db)]}")
    misses = computed.misses
    after = stack.get("/api/stats", repo=REPO)
    closed = sum(after["overall"][group]["n"] for group in ("ptm", "non_ptm")) + after["overall"]["unsure_closed"]
    assert closed == 1 and after != before
    assert stack.get_text(f"/dashboard/{REPO}") != page
    assert REPO in stack.get_text("/dashboard")  # never asked for here: a standing answer
    assert computed.misses == misses, "answers kept current were computed again when asked for"
