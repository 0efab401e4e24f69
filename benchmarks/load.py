"""Load benchmark: an open-loop generator against the webhook, embedded or scale-out, with the GitHub simulator.

    .venv/bin/python benchmarks/load.py --mode embedded --rate 200 --duration 60
    .venv/bin/python benchmarks/load.py --mode scale-out --rate 500 --duration 60
    .venv/bin/python benchmarks/load.py --mode embedded --rate 20 --mix opened      # end-to-end latency

Deliveries are sent on a fixed schedule (``rate`` a second, whether or not answers came back), from a process of
their own, spread over the receivers as a load balancer would; each is a real payload shape (GitHub's
``issues`` and ``issue_comment`` events, made by the simulator) with a delivery id of its own. ``--mix lifecycle``
sends, for each new issue, its opening, two comments and its closing; ``--mix opened`` only openings.

- embedded: ``ptm-triage serve`` (SQLite, in-process worker);
- scale-out: two receivers and two ``ptm-triage worker`` processes on PostgreSQL and Redis (``PTM_TRIAGE_QUEUE=redis``).

Reported: ACK latency p50/p99/max, what was sent and answered per second, end-to-end latency p50/p95 from
sending an ``issues.opened`` to the label write the simulator saw, deliveries lost (acknowledged and not stored)
and effects duplicated (a label added twice or two explanation comments), after waiting up to ``--drain-s`` for
the queue to empty. Written to ``benchmarks/results/load-<mode>-<rate>-<mix>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import create_engine, make_url, select, text  # noqa: E402

from app.config import Settings  # noqa: E402
from app.store.models import Delivery  # noqa: E402
from tests.conftest_github import GITHUB_APP_ID  # noqa: E402
from tests.e2e import INSTALLATION, REPO  # noqa: E402
from tests.github_sim import GitHubSimulator  # noqa: E402
from tests.github_sim.simulator import Exchange, generate_app_keypair  # noqa: E402
from tests.servers import free_port, serve  # noqa: E402
from tests.service_process import WorkerProcess, environment_of  # noqa: E402
from tests.waiting import wait_until  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SECRET = "load-benchmark-secret"
POSTGRES = os.environ.get("PTM_TRIAGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("PTM_TRIAGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TITLES = ["CUDA out of memory when loading the checkpoint", "Broken link on the documentation homepage",
          "Tokenizer returns wrong ids for the fine-tuned model", "Dark mode toggle does not persist",
          "Segfault in onnxruntime with the exported model", "Add a language selector to settings"]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


# The generator, in a process of its own --------------------------------------------------------------------

async def _generate(plan: Path, urls: list[str], rate: float, out: Path) -> None:
    lines = plan.read_text().splitlines()
    records: list[dict[str, Any]] = []
    # Idle connections closed before the receiver's keep-alive (5 s) runs out, so no request meets a closing one.
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=200, keepalive_expiry=2.0)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        async def send(i: int, line: str) -> None:
            item = json.loads(line)
            body = item["body"].encode()
            headers = _headers(item)
            sent = time.time()
            started = time.perf_counter()
            try:
                status = (await client.post(urls[i % len(urls)], content=body, headers=headers)).status_code
            except httpx.HTTPError as exc:
                status = f"{type(exc).__name__}"
            records.append({"id": item["id"], "sent": sent, "status": status,
                            "ack_ms": (time.perf_counter() - started) * 1000})

        loop = asyncio.get_running_loop()
        start = loop.time() + 0.5
        tasks = []
        for i, line in enumerate(lines):
            await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
            tasks.append(asyncio.create_task(send(i, line)))
        await asyncio.gather(*tasks)
    out.write_text("\n".join(json.dumps(r) for r in records))


# The stack under load ---------------------------------------------------------------------------------------

class Stack:
    """The receivers (and workers) as processes, the simulator in this one."""

    def __init__(self, mode: str, model: str, workdir: Path) -> None:
        self.mode, self.workdir = mode, workdir
        private, public = generate_app_keypair()
        self.sim = GitHubSimulator(GITHUB_APP_ID, public)
        self.sim.add_installation(INSTALLATION, "octo-org", [REPO], account_type="Organization")
        self.sim.set_file(REPO, ".github/ptm-triage.yml", "comment: true\n")
        self.label_written: dict[int, float] = {}
        self.repeated_label_writes = 0  # names a label write asked for that the issue had already
        self._events_seen = 0
        self.sim.on_exchange = self._seen
        self._serving = serve(self.sim.app)
        self.sim.api_url = self._serving.__enter__()
        fields: dict[str, Any] = dict(github_app_id=GITHUB_APP_ID, github_private_key=private,
                                      github_webhook_secret=SECRET, github_api_url=self.sim.api_url,
                                      data_dir=workdir / "data", model_kind=model)
        if mode == "embedded":
            fields["database_url"] = f"sqlite:///{workdir / 'ptm-triage.db'}"
        else:
            fields.update(database_url=self._fresh_postgres(), queue="redis", redis_url=REDIS,
                          redis_queue_name=f"ptm-triage-load:{uuid.uuid4().hex[:8]}")
        self.settings = Settings(_env_file=None, **fields)
        self.receivers: list[subprocess.Popen[bytes]] = []
        self.ports = [free_port() for _ in range(1 if mode == "embedded" else 2)]
        self.workers: list[WorkerProcess] = []

    def _fresh_postgres(self) -> str:
        server = make_url(POSTGRES)
        name = f"ptm_load_{os.getpid()}_{secrets.token_hex(3)}"
        admin = create_engine(server.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.postgres_name = name
        return server.set(database=name).render_as_string(hide_password=False)

    def _seen(self, exchange: Exchange) -> None:
        """Called by the simulator after each request, one at a time: the label events since the last call are
        this request's."""
        new_events, self._events_seen = self.sim.label_events[self._events_seen:], len(self.sim.label_events)
        if exchange.method == "POST" and exchange.path.endswith("/labels") and exchange.status == 200:
            number = int(exchange.path.rsplit("/", 2)[-2])
            self.label_written.setdefault(number, time.time())
            asked = exchange.request_json.get("labels", []) if isinstance(exchange.request_json, dict) else []
            added = {name for _, _, action, name in new_events if action == "labeled"}
            self.repeated_label_writes += sum(1 for name in asked if name not in added)

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/webhook" for port in self.ports]

    def start(self) -> None:
        env = environment_of(self.settings)
        for n, port in enumerate(self.ports):
            log = (self.workdir / f"receiver-{n + 1}.log").open("ab")
            self.receivers.append(subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env=env, stdout=log,
                stderr=subprocess.STDOUT))
            wait_until(lambda p=port: _answers(p), f"receiver on {port} answering", timeout_s=600)
        if self.mode == "scale-out":
            for n in range(2):
                worker = WorkerProcess(env, self.workdir / f"worker-{n + 1}.log")
                worker.start()
                self.workers.append(worker)

    def healthz(self) -> dict[str, int]:
        counts: dict[str, int] = httpx.get(f"http://127.0.0.1:{self.ports[0]}/healthz", timeout=30).json()["deliveries"]
        return counts

    def settled(self) -> bool:
        counts = self.healthz()
        return not counts.get("pending") and not counts.get("processing")

    def stored(self) -> set[str]:
        engine = create_engine(self.settings.sqlalchemy_url)
        with engine.connect() as conn:
            found = {row[0] for row in conn.execute(select(Delivery.id))}
        engine.dispose()
        return found

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        for receiver in self.receivers:
            receiver.terminate()
            receiver.wait(timeout=60)
        self._serving.__exit__(None, None, None)
        if self.mode == "scale-out":
            admin = create_engine(make_url(POSTGRES).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.postgres_name}" WITH (FORCE)'))
            admin.dispose()


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _signed(delivery_id: str, event: str, payload: dict[str, Any]) -> str:
    body = json.dumps(payload)
    signature = "sha256=" + hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    return json.dumps({"id": delivery_id, "event": event, "body": body, "signature": signature})


def _post(url: str, line: str) -> httpx.Response:
    item = json.loads(line)
    return httpx.post(url, content=item["body"].encode(), headers=_headers(item), timeout=30)


def _headers(item: dict[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-GitHub-Event": item["event"], "X-GitHub-Delivery": item["id"],
            "X-Hub-Signature-256": item["signature"]}


def plan(stack: Stack, count: int, mix: str) -> tuple[list[str], dict[str, int]]:
    """The deliveries to send, in order; and which issue each ``issues.opened`` is about."""
    sim, lines, opened = stack.sim, [], {}
    per_issue = 1 if mix == "opened" else 4
    for n in range((count + per_issue - 1) // per_issue):
        number = sim.add_issue(REPO, f"{TITLES[n % len(TITLES)]} ({n})", "Seen with the released weights.")["number"]
        delivery = f"load-{uuid.uuid4()}"
        opened[delivery] = number
        steps = [(delivery, "issues", sim.issues_payload("opened", REPO, number, INSTALLATION))]
        if mix == "lifecycle":
            for c in range(2):
                comment = sim.add_comment(REPO, number, f"Same here ({c}).")
                steps.append((f"load-{uuid.uuid4()}", "issue_comment",
                              sim.issue_comment_payload("created", REPO, number, comment["id"], INSTALLATION)))
            sim.set_issue_state(REPO, number, "closed")
            steps.append((f"load-{uuid.uuid4()}", "issues", sim.issues_payload("closed", REPO, number, INSTALLATION)))
        lines += [_signed(d, e, p) for d, e, p in steps]
    return lines[:count], opened


def _readded(events: list[tuple[str, int, str, str]]) -> int:
    """Labels added to an issue again after the app removed them (a decision changed, e.g. the repository's
    share re-estimated), from GitHub's timeline as the simulator keeps it."""
    removed: set[tuple[int, str]] = set()
    again = 0
    for _, number, action, name in events:
        if action == "unlabeled":
            removed.add((number, name))
        else:
            again += (number, name) in removed
    return again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["embedded", "scale-out"], default="embedded")
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries a second, on a fixed schedule")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--mix", choices=["lifecycle", "opened"], default="lifecycle")
    parser.add_argument("--model", choices=["baseline", "bert"], default="bert")
    parser.add_argument("--drain-s", type=float, default=300.0, help="how long to wait for the queue to empty")
    parser.add_argument("--generate", nargs=3, metavar=("PLAN", "RATE", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--urls", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        plan_file, rate, out = args.generate
        asyncio.run(_generate(Path(plan_file), args.urls, float(rate), Path(out)))
        return

    workdir = Path(tempfile.mkdtemp(prefix="ptm-load-"))
    stack = Stack(args.mode, args.model, workdir)
    stack.start()
    try:
        first = _post(stack.urls[0], _signed("load-installation", "installation",
                                             stack.sim.installation_payload("created", INSTALLATION)))
        assert first.status_code == 202, first.text
        wait_until(stack.settled, "the installation processed", timeout_s=600)
        lines, opened = plan(stack, int(args.rate * args.duration), args.mix)
        (workdir / "plan.jsonl").write_text("\n".join(lines))
        subprocess.run([sys.executable, __file__, "--generate", str(workdir / "plan.jsonl"), str(args.rate),
                        str(workdir / "sent.jsonl"), "--urls", *stack.urls], check=True)
        records = [json.loads(line) for line in (workdir / "sent.jsonl").read_text().splitlines()]
        drain_started = time.monotonic()
        try:
            wait_until(stack.settled, "the queue empty", timeout_s=args.drain_s)
            drained_s: float | None = round(time.monotonic() - drain_started, 1)
        except AssertionError:
            drained_s = None
        counts = stack.healthz()
        stored = stack.stored()
    finally:
        stack.stop()

    acked = [r for r in records if r["status"] in (200, 202)]
    sent_at = {r["id"]: r["sent"] for r in records}
    e2e = [(stack.label_written[number] - sent_at[d]) * 1000 for d, number in opened.items()
           if d in sent_at and number in stack.label_written]
    comments = Counter(x.path for x in stack.sim.exchanges if x.method == "POST" and x.path.endswith("/comments"))
    result = {
        "mode": args.mode, "model": args.model, "mix": args.mix, "rate_offered": args.rate,
        "duration_s": args.duration, "deliveries": len(records),
        "sent_per_s": round(len(records) / max(1e-9, max(sent_at.values()) - min(sent_at.values())), 1),
        "ack": {"p50_ms": percentile([r["ack_ms"] for r in acked], 0.50),
                "p99_ms": percentile([r["ack_ms"] for r in acked], 0.99),
                "max_ms": round(max((r["ack_ms"] for r in acked), default=0), 2),
                "answered": len(acked), "not_answered_2xx": dict(Counter(str(r["status"]) for r in records
                                                                          if r not in acked))},
        "end_to_end": {"p50_ms": percentile(e2e, 0.50), "p95_ms": percentile(e2e, 0.95), "labelled": len(e2e),
                       "issues_opened": len(opened)},
        "drained_after_s": drained_s, "deliveries_by_status": counts,
        "lost": sum(1 for r in acked if r["id"] not in stored),
        "duplicated": {"label_writes_of_labels_already_there": stack.repeated_label_writes,
                       "issues_with_two_comments": sum(1 for c in comments.values() if c > 1)},
        "labels_removed_and_added_again": _readded(stack.sim.label_events),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"load-{args.mode}-{int(args.rate)}-{args.mix}-{args.model}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
