"""Scale-out mode for real: a receiver enqueues on Redis, ``ptm-triage worker`` processes work the deliveries
against PostgreSQL and the GitHub simulator. Whatever happens twice (two workers, a redelivery, an id enqueued
twice, a worker killed mid-delivery, Redis restarted), each delivery's labels and comments happen once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from app.config import Settings
from app.queue.redis_queue import RedisQueue
from app.store.db import Database
from app.store.models import Delivery
from app.web.main import create_app
from tests.conftest import reset_postgres
from tests.conftest_github import GITHUB_APP_ID
from tests.e2e import INSTALLATION, REPO, SECRET, Stack
from tests.github_sim import GitHubSimulator
from tests.github_sim.simulator import Exchange
from tests.private_postgres import PrivatePostgres
from tests.servers import free_port, serve
from tests.service_process import WorkerProcess, environment_of
from tests.waiting import PATIENCE_S, wait_until

REDIS_URL = os.environ.get("PTM_TRIAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CONFIG = "comment: true\n"  # the explanation comment on new issues: an effect that is not idempotent by itself


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """Scale-out runs on PostgreSQL (several processes write at once)."""
    reset_postgres(postgres_url)
    return postgres_url


@pytest.fixture
def queue_name() -> Iterator[str]:
    """A queue of this test's own on the shared Redis, removed after it."""
    name = f"ptm-triage-test:{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(name, f"{name}:health-check")
    client.close()


@dataclass
class ScaleOut:
    stack: Stack
    settings: Settings
    workdir: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    # Delivery ids are GitHub's GUIDs, never used twice; arq keeps a job's key for a day after a worker stopped
    # in the middle of it, whatever its queue, so a test's ids are its own too.
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def start_worker(self, **env: str) -> WorkerProcess:
        worker = WorkerProcess({**environment_of(self.settings), **env},
                               self.workdir / f"worker-{len(self.workers) + 1}.log")
        self.workers.append(worker)
        worker.start()
        return worker

    def install(self) -> None:
        """The installation, processed (the repository's settings read) before any issue is sent: only one
        issue's deliveries wait for one another."""
        assert self.stack.send("installation", self.stack.sim.installation_payload(
            "created", INSTALLATION)).status_code == 202
        self.stack.settle()

    def open_issues(self, count: int) -> list[int]:
        numbers = []
        for n in range(count):
            number = self.stack.sim.add_issue(REPO, f"CUDA out of memory when loading the checkpoint, case {n}",
                                              "torch.cuda.OutOfMemoryError on a 12 GB card")["number"]
            assert self.stack.send("issues", self.opened(number), delivery=self.opened_id(number)).status_code == 202
            numbers.append(number)
        return numbers

    def opened_id(self, number: int) -> str:
        return f"opened-{number}-{self.tag}"

    def opened(self, number: int) -> dict:
        return self.stack.sim.issues_payload("opened", REPO, number, INSTALLATION)

    def queue_depth(self) -> int:
        return asyncio.run(_depth(self.settings))


async def _depth(settings: Settings) -> int:
    queue = RedisQueue(settings)
    try:
        return await queue.depth()
    finally:
        await queue.aclose()


def label_events(sim: GitHubSimulator) -> Counter[tuple[int, str, str]]:
    return Counter((number, action, name) for repo, number, action, name in sim.label_events if repo == REPO)


def comments_on(sim: GitHubSimulator, number: int) -> int:
    return int(sim.issue(REPO, number)["comments"])


def assert_once(sim: GitHubSimulator, numbers: list[int]) -> None:
    """Every issue labelled, each label added once (GitHub's timeline), one explanation comment each."""
    events = label_events(sim)
    assert all(count == 1 for count in events.values()), {k: c for k, c in events.items() if c != 1}
    for number in numbers:
        assert "ptm: related" in {label["name"] for label in sim.issue(REPO, number)["labels"]}, number
        assert comments_on(sim, number) == 1, number


@contextmanager
def receiving(settings: Settings, simulator: GitHubSimulator, tmp_path: Path) -> Iterator[ScaleOut]:
    """A receiver with ``settings`` (workers are started by the test); the workers stopped at the end."""
    simulator.set_file(REPO, ".github/ptm-triage.yml", CONFIG)
    with serve(create_app(settings)) as url:
        out = ScaleOut(Stack(simulator, url), settings, tmp_path)
        try:
            yield out
        finally:
            for worker in out.workers:
                worker.stop()


@pytest.fixture
def scale_out(settings_for: Callable[..., Settings], simulator: GitHubSimulator, queue_name: str,
              tmp_path: Path) -> Iterator[ScaleOut]:
    settings = settings_for(queue="redis", redis_url=REDIS_URL, redis_queue_name=queue_name, sweep_s=0.5,
                            worker_lease_s=3.0, model_kind="baseline")
    with receiving(settings, simulator, tmp_path) as out:
        yield out


def test_two_workers_share_the_deliveries_and_each_takes_effect_once(scale_out: ScaleOut) -> None:
    sim, stack = scale_out.stack.sim, scale_out.stack
    first, second = scale_out.start_worker(), scale_out.start_worker()
    scale_out.install()
    numbers = []
    for _ in range(10):  # each closed right after its opening: the close must not overtake it on another worker
        (number,) = scale_out.open_issues(1)
        sim.set_issue_state(REPO, number, "closed")
        assert stack.send("issues", sim.issues_payload("closed", REPO, number, INSTALLATION)).status_code == 202
        numbers.append(number)
    numbers += scale_out.open_issues(30)
    for number in numbers[10:20]:  # GitHub redelivers: the receiver knows the id
        assert stack.send("issues", scale_out.opened(number), delivery=scale_out.opened_id(number)).status_code == 200

    async def enqueue_again() -> None:  # a second job for a delivery (a sweeper racing the receiver)
        queue = RedisQueue(scale_out.settings)
        for number in numbers[20:30]:
            assert await queue.enqueue(scale_out.opened_id(number), attempts=9)
        await queue.aclose()

    asyncio.run(enqueue_again())
    counts = stack.settle()
    assert counts.get("failed", 0) == 0 and counts.get("skipped", 0) == 0, counts
    assert_once(sim, numbers)
    tracked = stack.get("/api/issues", repo=REPO, limit="1000")["issues"]
    closed = {i["number"] for i in tracked if i["state"] == "closed"}
    assert closed == set(numbers[:10]), "a close was overtaken by its opening"
    db = Database(scale_out.settings.sqlalchemy_url)
    with db.session() as session:
        attempts = Counter(d.attempts for d in session.query(Delivery))
    db.dispose()
    assert attempts == {1: len(numbers) + 10 + 1}, f"deliveries by attempts: {attempts}"  # opened, closed, installation
    labelled = [worker.log_lines(": ptm=") for worker in (first, second)]
    assert sum(labelled) >= 40 and min(labelled) > 0, f"issues labelled by each worker: {labelled}"
    wait_until(lambda: scale_out.queue_depth() == 0, "the Redis queue empty")


def test_a_worker_killed_after_its_github_calls_and_before_its_commit(scale_out: ScaleOut) -> None:
    sim, stack = scale_out.stack.sim, scale_out.stack
    doomed = scale_out.start_worker()
    scale_out.install()
    killed: list[Exchange] = []

    def kill_after_the_comment(exchange: Exchange) -> None:  # GitHub has the labels and the comment; no commit yet
        if not killed and exchange.method == "POST" and exchange.path.endswith("/comments"):
            killed.append(exchange)
            doomed.kill()

    sim.on_exchange = kill_after_the_comment
    (number,) = scale_out.open_issues(1)
    wait_until(lambda: bool(killed), "the worker killed mid-delivery")
    sim.on_exchange = None
    scale_out.start_worker()  # takes the delivery up once the dead worker's lease runs out
    stack.settle()
    assert_once(sim, [number])
    db = Database(scale_out.settings.sqlalchemy_url)
    with db.session() as session:
        delivery = session.get(Delivery, scale_out.opened_id(number))
        assert (delivery.status, delivery.attempts) == ("done", 2)
    db.dispose()


def test_a_worker_told_to_stop_mid_delivery_hands_it_back(scale_out: ScaleOut) -> None:
    sim, stack = scale_out.stack.sim, scale_out.stack
    stopping = scale_out.start_worker()
    scale_out.install()
    in_hand, stopped = threading.Event(), threading.Event()

    def hold_the_label_write(exchange: Exchange) -> None:  # the simulator answers once the worker has stopped
        if exchange.method == "POST" and exchange.path.endswith("/labels") and not in_hand.is_set():
            in_hand.set()
            stopped.wait(PATIENCE_S)

    sim.on_exchange = hold_the_label_write
    (number,) = scale_out.open_issues(1)
    assert in_hand.wait(PATIENCE_S), "the worker never wrote the labels"
    stopping.stop()  # SIGTERM, and waits for it to exit
    stopped.set()
    sim.on_exchange = None
    db = Database(scale_out.settings.sqlalchemy_url)
    with db.session() as session:
        delivery = session.get(Delivery, scale_out.opened_id(number))
        assert (delivery.status, delivery.attempts, delivery.lease_owner) == ("pending", 1, None), "not handed back"
    db.dispose()
    scale_out.start_worker()
    stack.settle()
    assert_once(sim, [number])


def test_redis_restarted_under_load_loses_no_delivery(settings_for: Callable[..., Settings],
                                                       simulator: GitHubSimulator, tmp_path: Path) -> None:
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: _answers(url), "the private Redis answered")
    settings = settings_for(queue="redis", redis_url=url, sweep_s=0.5, worker_lease_s=3.0, model_kind="baseline")
    try:
        with receiving(settings, simulator, tmp_path) as out:
            worker = out.start_worker()
            out.install()
            numbers = out.open_issues(15)
            server.kill()  # Redis keeps nothing on disk: the queue is gone
            server.wait()
            numbers += out.open_issues(15)  # stored and acknowledged while Redis is away
            server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
            wait_until(lambda: _answers(url), "Redis back")
            out.stack.settle()
            assert_once(simulator, numbers)
            wait_until(lambda: out.queue_depth() == 0, "the Redis queue empty")
            assert worker.process is not None and worker.process.poll() is None, "the worker outlived Redis"
    finally:
        server.kill()
        server.wait()


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def test_a_worker_process_works_the_database_queue_for_receivers_that_only_receive(
        settings_for: Callable[..., Settings], simulator: GitHubSimulator, tmp_path: Path) -> None:
    """Without Redis: receivers with ``PTM_TRIAGE_WORKER=off``, ``ptm-triage worker`` polling the deliveries table."""
    settings = settings_for(worker="off", model_kind="baseline")
    with receiving(settings, simulator, tmp_path) as out:
        worker = out.start_worker()
        out.install()
        numbers = out.open_issues(5)
        out.stack.settle()
        assert_once(simulator, numbers)
        assert worker.log_lines(": ptm=") == 5


def test_postgresql_restarted_under_load_loses_no_delivery(
        make_settings: Callable[..., Settings], simulator: GitHubSimulator, private_postgres: PrivatePostgres,
        queue_name: str, github_app_keys: tuple[str, str], tmp_path: Path) -> None:
    settings = make_settings(
        github_app_id=GITHUB_APP_ID, github_private_key=github_app_keys[0], github_webhook_secret=SECRET,
        github_api_url=simulator.api_url, database_url=private_postgres.url, queue="redis", redis_url=REDIS_URL,
        redis_queue_name=queue_name, sweep_s=0.5, worker_lease_s=3.0, model_kind="baseline")
    with receiving(settings, simulator, tmp_path) as out:
        worker = out.start_worker()
        out.install()
        numbers = out.open_issues(10)
        private_postgres.stop()
        refused = []  # 503 while the database is away: GitHub shows the delivery failed, and it is sent again
        for n in range(10):
            number = simulator.add_issue(REPO, f"CUDA out of memory on the second GPU, case {n}")["number"]
            status = out.stack.send("issues", out.opened(number), delivery=out.opened_id(number)).status_code
            assert status in (202, 503), status
            numbers.append(number)
            if status == 503:
                refused.append(number)
        private_postgres.start()
        for number in refused:
            wait_until(lambda n=number: out.stack.send("issues", out.opened(n), delivery=out.opened_id(n))
                       .status_code in (200, 202), "the redelivery accepted")
        out.stack.settle()
        assert_once(simulator, numbers)
        assert worker.process is not None and worker.process.poll() is None, "the worker outlived PostgreSQL"
