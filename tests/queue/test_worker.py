"""The delivery queue across processes: leases, hand-backs, workers that died."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from app.events import router
from app.queue.worker import DeliveryWorker
from app.services import build_services
from app.store.db import Database
from app.store.models import Delivery, utcnow
from app.store.queries import store_delivery
from app.web.main import create_app
from tests.conftest import WEBHOOK_EXAMPLES
from tests.waiting import wait_until

OPENED = (WEBHOOK_EXAMPLES / "issues" / "opened.payload.json").read_text()


def stored(url: str, delivery_id: str, status: str, lease_from_now_s: float | None) -> None:
    db = Database(url)
    db.migrate()
    with db.session() as session:
        store_delivery(session, delivery_id=delivery_id, event="issues", action="opened",
                       installation_id=None, payload=OPENED)
        lease = None if lease_from_now_s is None else utcnow() + timedelta(seconds=lease_from_now_s)
        session.execute(update(Delivery).where(Delivery.id == delivery_id).values(status=status, not_before=lease))
    db.dispose()


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
    worker = DeliveryWorker(services, router)
    stored(settings.sqlalchemy_url, "in-flight", "processing", lease_from_now_s=3600)
    worker._current = "in-flight"  # what run_once sets while it processes a delivery
    asyncio.run(worker.stop())
    with services.db.session() as session:
        delivery = session.get(Delivery, "in-flight")
        assert delivery.status == "pending" and delivery.not_before is None
