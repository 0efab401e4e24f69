"""Faults, each with nothing lost and no effect on GitHub twice (the simulator counts label changes and
comments): GitHub failing a fifth of all calls, every delivery done again as after a crash, a handler that
always raises, PostgreSQL restarted under load. (``kill -9`` of the service: ``tests/queue/test_recovery.py``.)
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from http import HTTPStatus

import httpx
import pytest
from gidgethub import GitHubBroken, sansio
from gidgethub.routing import Router
from sqlalchemy import select

from app.config import Settings
from app.events import router as event_router
from app.github.signature import delivery_headers
from app.queue.worker import DeliveryWorker
from app.services import build_services
from app.store.models import Delivery
from app.store.queries import retry_deliveries, store_delivery
from app.web.main import create_app
from tests.e2e import INSTALLATION, REPO, SECRET, Stack
from tests.github_sim import GitHubSimulator
from tests.private_postgres import PrivatePostgres
from tests.servers import serve
from tests.service_process import opened_payloads
from tests.waiting import HTTP_TIMEOUT_S, wait_until

TITLES = ["CUDA out of memory loading the SDXL checkpoint", "Whisper transcribes silence as 'thank you'",
          "Dark mode toggle does not persist", "Typo in the README install section",
          "LoRA weights fail to load after upgrading transformers", "Add a button to export as PDF"]


@pytest.fixture
def baseline_stack(settings_for: Callable[..., Settings], simulator: GitHubSimulator) -> Iterator[Stack]:
    """The e2e stack on the baseline model, on a repository that asks for explanation comments."""
    simulator.set_file(REPO, ".github/ptm-triage.yml", "comment: true\n")
    app = create_app(settings_for(model_kind="baseline"))
    with serve(app) as url:
        stack = Stack(simulator, url, app)
        assert stack.send("installation", simulator.installation_payload("created", INSTALLATION)).status_code == 202
        stack.settle()
        yield stack


def comments_by_issue(sim: GitHubSimulator) -> Counter[int]:
    return Counter(int(x.path.split("/")[-2]) for x in sim.exchanges
                   if x.method == "POST" and x.path.endswith("/comments") and x.status == 201)


def test_github_failing_a_fifth_of_its_calls_loses_nothing_and_does_nothing_twice(baseline_stack: Stack) -> None:
    stack, sim = baseline_stack, baseline_stack.sim
    sim.fail_randomly(0.2, seed=14)
    numbers = [sim.add_issue(REPO, f"{TITLES[n % len(TITLES)]} ({n})", "details")["number"] for n in range(36)]
    for number in numbers:
        assert stack.send("issues", sim.issues_payload("opened", REPO, number, INSTALLATION)).status_code == 202
    counts = stack.settle()
    assert counts.get("failed", 0) == 0 and counts.get("skipped", 0) == 0, counts
    assert sum(sim.random_failures.values()) >= 20 and len(sim.random_failures) == 6, sim.random_failures

    tracked = {i["number"]: i for i in stack.get("/api/issues", repo=REPO, limit="1000")["issues"]}
    assert sorted(tracked) == numbers
    for number in numbers:
        assert stack.labels_on(number) == set(tracked[number]["labels"]), number
    events = Counter((n, action, name) for _, n, action, name in sim.label_events)
    assert max(events.values()) == 1, [e for e, k in events.items() if k > 1]
    assert comments_by_issue(sim) == Counter(dict.fromkeys(numbers, 1))

    # Every delivery done again, as after a crash between GitHub's effects and the record of them.
    sim.fail_randomly(0.0)
    labelled, events = {n: stack.labels_on(n) for n in numbers}, list(sim.label_events)
    assert stack.app is not None
    with stack.app.state.services.db.session() as session:
        ids = list(session.scalars(select(Delivery.id).where(Delivery.event == "issues")))
        assert len(retry_deliveries(session, ids)) == len(numbers)
    stack.settle()
    assert {n: stack.labels_on(n) for n in numbers} == labelled
    assert sim.label_events == events, "labels changed again"
    assert comments_by_issue(sim) == Counter(dict.fromkeys(numbers, 1)), "a comment posted twice"


def test_postgresql_restarted_under_load_loses_no_acknowledged_delivery(
    make_settings: Callable[..., Settings], private_postgres: PrivatePostgres,
) -> None:
    settings = make_settings(database_url=private_postgres.url, dry_run=True, model_kind="baseline",
                             github_webhook_secret=SECRET, worker_lease_s=3)
    payloads = list(opened_payloads(240))
    acknowledged: set[str] = set()
    with serve(create_app(settings)) as url:

        def send(delivery: str, body: bytes) -> int:
            headers = delivery_headers(SECRET, "issues", body, delivery)
            status = httpx.post(f"{url}/webhook", content=body, headers=headers, timeout=HTTP_TIMEOUT_S).status_code
            assert status in (200, 202, 503), status  # 503: the database is away, nothing acknowledged
            if status in (200, 202):
                acknowledged.add(delivery)
            return status

        def counts() -> dict[str, int]:
            found: dict[str, int] = httpx.get(f"{url}/healthz", timeout=HTTP_TIMEOUT_S).json()["deliveries"]
            return found

        for delivery, body in payloads[:160]:
            send(delivery, body)
        wait_until(lambda: counts().get("done", 0) >= 20, "the worker into the backlog")
        private_postgres.stop()
        refused = [delivery for delivery, body in payloads[160:200] if send(delivery, body) == 503]
        assert refused, "the database was down, and said so"
        private_postgres.start()
        for delivery, body in payloads[160:]:  # what GitHub's "Redeliver" does for the refused ones
            if delivery not in acknowledged:
                wait_until(lambda d=delivery, b=body: send(d, b) in (200, 202), f"{delivery} stored")
        wait_until(lambda: counts() == {"done": len(payloads)}, lambda: f"every delivery done: {counts()}")
    assert acknowledged == {delivery for delivery, _ in payloads}


def test_a_delivery_whose_handler_always_raises_ends_failed_and_the_others_all_finish(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(dry_run=True, model_kind="baseline", worker_max_attempts=3)
    services = build_services(settings)
    poison = Router()

    @poison.register("issues", action="opened")
    async def always_raises(event: sansio.Event, services: object) -> None:
        if event.delivery_id == "poison":
            raise GitHubBroken(HTTPStatus.BAD_GATEWAY)  # a failure that may pass: retried, so bounded by attempts

    worker = DeliveryWorker(services, Router(event_router, poison))
    with services.db.session() as session:
        for delivery, body in [("poison", next(opened_payloads(1))[1]), *opened_payloads(20)]:
            store_delivery(session, delivery_id=delivery, event="issues", action="opened", installation_id=None,
                           payload=body.decode())

    def finished() -> dict[str, tuple[str, int, str | None]] | None:
        with services.db.session() as session:
            rows = {d.id: (d.status, d.attempts, d.error) for d in session.scalars(select(Delivery))}
        return rows if all(status in ("done", "failed") for status, _, _ in rows.values()) else None

    async def run() -> dict[str, tuple[str, int, str | None]]:
        await worker.start()
        try:
            return await asyncio.to_thread(wait_until, finished, "every delivery finished")
        finally:
            await worker.stop()

    rows = asyncio.run(run())
    services.db.dispose()
    status, attempts, error = rows.pop("poison")
    assert (status, attempts) == ("failed", 3) and error is not None and "GitHubBroken" in error
    assert {(s, a) for s, a, _ in rows.values()} == {("done", 1)} and len(rows) == 20


def test_a_delivery_about_an_issue_deleted_meanwhile_ends_skipped_saying_so(baseline_stack: Stack) -> None:
    stack, sim = baseline_stack, baseline_stack.sim
    number = sim.add_issue(REPO, "CUDA out of memory loading the SDXL checkpoint", "details")["number"]
    payload = sim.issues_payload("opened", REPO, number, INSTALLATION)
    sim.delete_issue(REPO, number)
    assert stack.send("issues", payload, delivery="about-a-deleted-issue").status_code == 202
    assert stack.settle().get("skipped") == 1
    assert stack.app is not None
    with stack.app.state.services.db.session() as session:
        delivery = session.get(Delivery, "about-a-deleted-issue")
        assert delivery is not None and delivery.attempts == 1
        assert delivery.error is not None and delivery.error.startswith("GitHub answered 410")
