"""The delivery queue across processes: leases, hand-backs, workers that died."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from fastapi.testclient import TestClient
from gidgethub import sansio
from gidgethub.routing import Router
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.cli import main
from app.events import router
from app.queue.ordering import ordering_key
from app.queue.worker import DeliveryWorker, _rounds
from app.services import build_services
from app.store import queries
from app.store.db import Database
from app.store.models import Delivery, utcnow
from app.store.queries import Due, retry_deliveries, store_delivery
from app.web.main import create_app
from tests.conftest import WEBHOOK_EXAMPLES
from tests.service_process import opened_payloads
from tests.waiting import PATIENCE_S, wait_until

OPENED = (WEBHOOK_EXAMPLES / "issues" / "opened.payload.json").read_text()


def stored(url: str, delivery_id: str, status: str, lease_from_now_s: float | None, owner: str | None = None) -> None:
    db = Database(url)
    db.migrate()
    with db.session() as session:
        store_delivery(session, delivery_id=delivery_id, event="issues", action="opened",
                       installation_id=None, payload=OPENED)
        lease = None if lease_from_now_s is None else utcnow() + timedelta(seconds=lease_from_now_s)
        session.execute(update(Delivery).where(Delivery.id == delivery_id)
                        .values(status=status, not_before=lease, lease_owner=owner))
    db.dispose()


def store_opened(session: Session, delivery_id: str, body: bytes) -> None:
    """An ``issues.opened`` delivery stored as the receiver stores it."""
    store_delivery(session, delivery_id=delivery_id, event="issues", action="opened", installation_id=None,
                   payload=body.decode(), ordering_key=ordering_key("issues", json.loads(body)))


def status(client: TestClient, delivery_id: str) -> str:
    with client.app.state.services.db.session() as session:
        return session.get(Delivery, delivery_id).status


def test_a_dead_workers_delivery_is_taken_up_once_its_lease_ran_out(make_settings) -> None:
    settings = make_settings(dry_run=True, model_kind="baseline")
    stored(settings.sqlalchemy_url, "dead-worker", "processing", lease_from_now_s=-1)
    stored(settings.sqlalchemy_url, "live-worker", "processing", lease_from_now_s=3600)
    with TestClient(create_app(settings)) as client:
        wait_until(lambda: status(client, "dead-worker") == "done", "the dead worker's delivery done")
        assert status(client, "live-worker") == "processing", "another worker still holds it"


def test_a_stopping_worker_hands_its_delivery_back(make_settings) -> None:
    settings = make_settings(dry_run=True, model_kind="baseline")
    services = build_services(settings)
    slow, started = Router(), asyncio.Event()

    @slow.register("issues", action="opened")
    async def never_ends(event: sansio.Event, services: object) -> None:
        started.set()
        await asyncio.Event().wait()

    async def stop_mid_delivery() -> None:
        worker = DeliveryWorker(services, slow)
        await worker.start()
        await asyncio.wait_for(started.wait(), PATIENCE_S)
        with services.db.session() as session:
            assert session.get(Delivery, "in-flight").status == "processing"
        await worker.stop()

    stored(settings.sqlalchemy_url, "in-flight", "pending", lease_from_now_s=None)
    asyncio.run(stop_mid_delivery())
    with services.db.session() as session:
        delivery = session.get(Delivery, "in-flight")
        assert (delivery.status, delivery.not_before, delivery.lease_owner) == ("pending", None, None)
    services.db.dispose()


def test_a_worker_busy_for_longer_than_its_lease_keeps_it(make_settings) -> None:
    settings = make_settings(dry_run=True, model_kind="baseline", worker_lease_s=3)
    services = build_services(settings)
    busy, leases = Router(), set()

    def renewed_twice() -> bool:
        with services.db.session() as session:
            queries.requeue_expired(session, 5)  # what another worker's sweep does meanwhile
            delivery = session.get(Delivery, "long")
            assert delivery.status == "processing", "another worker's sweep took the delivery over"
            leases.add(delivery.not_before)
            return len(leases) >= 3

    @busy.register("issues", action="opened")
    async def hold_the_loop(event: sansio.Event, services: object) -> None:
        wait_until(renewed_twice, "the lease renewed twice")  # blocks the loop, as a long classification would

    stored(settings.sqlalchemy_url, "long", "pending", lease_from_now_s=None)
    assert asyncio.run(DeliveryWorker(services, busy).run_once()) == 1
    with services.db.session() as session:
        delivery = session.get(Delivery, "long")
        assert (delivery.status, delivery.attempts, delivery.lease_owner) == ("done", 1, None)
    services.db.dispose()


def test_a_worker_whose_lease_was_taken_over_records_nothing(make_settings) -> None:
    settings = make_settings(dry_run=True, model_kind="baseline")
    stored(settings.sqlalchemy_url, "taken", "pending", lease_from_now_s=None)
    db = Database(settings.sqlalchemy_url)
    with db.session() as session:
        assert queries.claim_delivery(session, "taken", 30, "first") is not None
        session.execute(update(Delivery).where(Delivery.id == "taken").values(lease_owner="second"))
    with db.session() as session:
        assert not queries.renew_lease(session, "taken", "first", 30)
        assert not queries.finish_delivery(session, "taken", "first", "failed", "late")
        assert not queries.retry_delivery_later(session, "taken", "first", "late", 1)
        assert queries.finish_delivery(session, "taken", "second", "done")
    with db.session() as session:
        assert (session.get(Delivery, "taken").status, session.get(Delivery, "taken").error) == ("done", None)
    db.dispose()


def test_a_delivery_whose_worker_dies_on_every_attempt_ends_failed(make_settings) -> None:
    settings = make_settings(dry_run=True, model_kind="baseline", worker_max_attempts=3)
    stored(settings.sqlalchemy_url, "kills-its-worker", "processing", lease_from_now_s=-1)
    db = Database(settings.sqlalchemy_url)
    with db.session() as session:
        session.execute(update(Delivery).where(Delivery.id == "kills-its-worker").values(attempts=3))
    with TestClient(create_app(settings)) as client:
        stored(settings.sqlalchemy_url, "fine", "pending", lease_from_now_s=None)
        client.app.state.worker.notify()
        wait_until(lambda: status(client, "fine") == "done", "the next delivery done")
        assert status(client, "kills-its-worker") == "failed"
        with client.app.state.services.db.session() as session:
            assert "stopped answering on each of 3 attempts" in session.get(Delivery, "kills-its-worker").error
    db.dispose()


def test_old_payloads_are_dropped_and_their_outcomes_kept(make_settings) -> None:
    settings = make_settings(dry_run=True, model_kind="baseline", delivery_retention_days=7)
    for name, age_days in (("old", 8), ("recent", 6)):
        stored(settings.sqlalchemy_url, name, "done", lease_from_now_s=None)
        db = Database(settings.sqlalchemy_url)
        with db.session() as session:
            session.execute(update(Delivery).where(Delivery.id == name)
                            .values(processed_at=utcnow() - timedelta(days=age_days)))
        db.dispose()
    with TestClient(create_app(settings)) as client:
        db = client.app.state.services.db

        def pruned() -> bool:
            with db.session() as session:
                return session.get(Delivery, "old").payload_pruned_at is not None

        wait_until(pruned, "the old payload dropped")
        with db.session() as session:
            old, recent = session.get(Delivery, "old"), session.get(Delivery, "recent")
            assert (old.payload, old.status) == ("", "done")
            assert recent.payload == OPENED and recent.payload_pruned_at is None
        with db.session() as session:  # retried by hand, it says why it cannot be processed
            assert retry_deliveries(session, ["old"]) == ["old"]
        client.app.state.worker.notify()
        wait_until(lambda: status(client, "old") == "skipped", "the retried delivery skipped")
        with db.session() as session:
            assert "retention" in session.get(Delivery, "old").error


def test_the_deliveries_command_lists_outcomes_and_queues_failed_ones_again(make_settings, monkeypatch, capsys) -> None:
    settings = make_settings(dry_run=True, model_kind="baseline")
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    stored(settings.sqlalchemy_url, "went-wrong", "failed", lease_from_now_s=None)
    stored(settings.sqlalchemy_url, "went-fine", "done", lease_from_now_s=None)
    db = Database(settings.sqlalchemy_url)
    with db.session() as session:
        session.execute(update(Delivery).where(Delivery.id == "went-wrong").values(error="HTTPException: boom"))
    assert main(["deliveries", "--status", "failed"]) == 0
    listed = capsys.readouterr().out
    assert "went-wrong" in listed and "HTTPException: boom" in listed and "went-fine" not in listed
    assert main(["deliveries", "retry", "--failed"]) == 0
    assert "went-wrong" in capsys.readouterr().out
    assert main(["deliveries", "retry", "never-stored"]) == 1
    assert "never-stored" in capsys.readouterr().err
    assert main(["deliveries", "retry"]) == 1
    with db.session() as session:
        assert session.get(Delivery, "went-wrong").status == "pending"
        assert session.get(Delivery, "went-fine").status == "done"
    db.dispose()


def test_rounds_keep_each_issues_deliveries_in_order_and_work_the_others_alone() -> None:
    due = [Due("a1", "1#1", 0), Due("b1", "1#2", 0), Due("a2", "1#1", 0), Due("inst", None, 0), Due("c1", "2#1", 0)]
    assert _rounds(due) == [[["a1", "a2"], ["b1"]], [["inst"]], [["c1"]]]


def test_the_ordering_key_is_the_issue_of_an_issue_or_comment_delivery() -> None:
    about = {"repository": {"id": 1}, "issue": {"number": 7}}
    assert ordering_key("issues", about) == ordering_key("issue_comment", about) == "1#7"
    assert ordering_key("installation", about) is None
    assert ordering_key("issues", {"repository": {"id": 1}}) is None


def test_the_issues_of_deliveries_worked_together_are_classified_in_one_batch(make_settings) -> None:
    settings = make_settings(dry_run=True, model_kind="baseline", worker_concurrency=20, batch_size=20,
                             batch_wait_ms=1000)  # the 20th text fills the batch: no waiting
    services = build_services(settings)
    with services.db.session() as session:
        for delivery, body in opened_payloads(20):
            store_opened(session, delivery, body)
    assert asyncio.run(DeliveryWorker(services, router).run_once()) == 20
    registry = services.metrics.registry
    assert registry.get_sample_value("ptm_triage_classification_batch_size_count") == 1
    assert registry.get_sample_value("ptm_triage_classification_batch_size_sum") == 20
    assert queries.delivery_counts(services.db.sessions()) == {"done": 20}
    services.db.dispose()


def test_deliveries_worked_together_estimate_their_repositorys_share_once(make_settings, caplog) -> None:
    """60 new issues of one repository at once: the share is due at 50 (``repo_share.MIN_ISSUES``) and estimated
    by one delivery; the others find it done (``labelling.follow_share`` holds a lock per repository)."""
    settings = make_settings(dry_run=True, worker_concurrency=64, batch_size=64, batch_wait_ms=1000)
    services = build_services(settings)
    with services.db.session() as session:
        for delivery, body in opened_payloads(60):
            store_opened(session, delivery, body)
    with caplog.at_level("INFO", logger="app.workflow.labelling"):
        assert asyncio.run(DeliveryWorker(services, router).run_once()) == 60
    estimates = [r for r in caplog.records if r.name == "app.workflow.labelling" and "PTM share" in r.getMessage()]
    assert len(estimates) == 1, [r.getMessage() for r in estimates]
    services.db.dispose()
