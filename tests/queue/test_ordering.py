"""An issue's deliveries take effect in the order they came, whichever worker claims them (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from app.store import queries
from app.store.db import Database
from app.store.models import Delivery, utcnow


def _store(db: Database, delivery_id: str, key: str | None) -> None:
    with db.session() as session:
        queries.store_delivery(session, delivery_id=delivery_id, event="issues", action="opened",
                               installation_id=None, payload="{}", ordering_key=key)


def test_a_later_delivery_about_an_issue_waits_for_the_earlier_to_finish(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    for delivery_id, key in [("opened", "1#7"), ("closed", "1#7"), ("other-issue", "1#8"), ("push", None)]:
        _store(db, delivery_id, key)
    with db.session() as session:
        assert queries.claim_delivery(session, "closed", 30, "w2") is None, "claimed before the opening"
        assert queries.claim_delivery(session, "other-issue", 30, "w2") is not None
        assert queries.claim_delivery(session, "push", 30, "w2") is not None
        assert queries.claim_delivery(session, "opened", 30, "w1") is not None
        assert [d.id for d in queries.due_deliveries(session)] == [], "closed waits for opened, in flight"
        pending_only = session.execute(update(Delivery).where(Delivery.id == "opened")
                                       .values(status="pending", not_before=None))
        assert pending_only.rowcount == 1
        assert [d.id for d in queries.due_deliveries(session)] == ["opened", "closed"]  # worked in this order
        assert [d.id for d in queries.due_deliveries(session, first_in_line=True)] == ["opened"]
        session.execute(update(Delivery).where(Delivery.id == "opened").values(status="processing"))
        assert queries.claim_delivery(session, "closed", 30, "w2") is None
        assert queries.next_in_line(session, "1#7") == queries.Due("closed", "1#7", 0)
        assert queries.finish_delivery(session, "opened", "w1", "done")
        assert [d.id for d in queries.due_deliveries(session)] == ["closed"]
        assert queries.claim_delivery(session, "closed", 30, "w2") is not None
        assert queries.next_in_line(session, "1#7") is None
    db.dispose()


def test_one_waiting_for_a_retry_holds_back_the_later_but_not_the_rest(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    for delivery_id, key in [("first", "1#7"), ("second", "1#7"), ("elsewhere", "2#1")]:
        _store(db, delivery_id, key)
    with db.session() as session:
        session.execute(update(Delivery).where(Delivery.id == "first")
                        .values(not_before=utcnow() + timedelta(minutes=5), attempts=1))
    with db.session() as session:
        assert [d.id for d in queries.due_deliveries(session)] == ["elsewhere"]
        assert [d.id for d in queries.due_deliveries(session, received_before=utcnow() - timedelta(hours=1))] == []
    db.dispose()
