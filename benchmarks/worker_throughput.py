"""Worker throughput on a backlog against the classifier's own: how much of what the model can do the worker
reaches when it batches across deliveries (``app.workflow.batching``).

    .venv/bin/python benchmarks/worker_throughput.py [--issues 600] [--model bert]

A backlog of 2 × ``--issues`` deliveries (each issue opened, then closed; GitHub's payload shape, titles and
bodies from ``../shared/data/dev.jsonl``) is stored while no worker runs; the service (``ptm-triage serve``,
SQLite, dry-run) is then started with its worker and timed from its first answer until every delivery is done.
In the same run ``classify`` (the model's ``predict`` on the same texts, in this process) is timed too.
``PTM_TRIAGE_WORKER_CONCURRENCY``, ``PTM_TRIAGE_BATCH_SIZE`` and ``PTM_TRIAGE_BATCH_WAIT_MS`` in the
environment are passed on to the service. Written to ``benchmarks/results/worker-throughput-<model>.json``. Target: the worker at ≥ 70% of classify's
issues/s.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.triage.classifier import IssueText  # noqa: E402
from app.triage.loader import load_classifier  # noqa: E402
from tests.service_process import OPENED, ServiceProcess  # noqa: E402
from tests.waiting import wait_until  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TUNING = ("PTM_TRIAGE_WORKER_CONCURRENCY", "PTM_TRIAGE_BATCH_SIZE", "PTM_TRIAGE_BATCH_WAIT_MS")
DEV = ROOT.parent / "shared" / "data" / "dev.jsonl"


def texts(count: int) -> list[IssueText]:
    rows = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    return [IssueText(r.get("title") or "", r.get("body") or "") for r in (rows * (count // len(rows) + 1))[:count]]


def deliveries(issues: list[IssueText]) -> list[tuple[str, bytes]]:
    """Every issue opened, then every one closed."""
    out = []
    for action in ("opened", "closed"):
        for n, text in enumerate(issues, 1):
            payload = copy.deepcopy(OPENED)
            payload["action"] = action
            payload["issue"].update(number=n, id=10_000_000 + n, title=text.title, body=text.body,
                                    state="open" if action == "opened" else "closed",
                                    closed_at=None if action == "opened" else "2026-12-01T00:00:00Z")
            out.append((f"throughput-{action}-{n}", json.dumps(payload).encode()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=600)
    parser.add_argument("--model", default="bert", choices=["baseline", "bert"])
    args = parser.parse_args()
    issues = texts(args.issues)
    workdir = Path(tempfile.mkdtemp(prefix="ptm-throughput-"))
    tuning = {k: v for k in TUNING if (v := os.environ.get(k)) is not None}  # passed on to the service
    service = ServiceProcess(workdir, {"PTM_TRIAGE_MODEL": args.model, "PTM_TRIAGE_WORKER": "off", **tuning})
    service.start()
    try:
        backlog = deliveries(issues)
        refused = [d for d, body in backlog if service.send(d, body) != 202]
        service.stop()
        service.env_extra["PTM_TRIAGE_WORKER"] = "inprocess"
        service.start()  # returns at the first answer of /healthz: the model is loaded, the worker running
        started = time.monotonic()
        wait_until(lambda: service.deliveries().get("done", 0) == len(backlog), "the backlog done", timeout_s=3600)
        drained_s = time.monotonic() - started
        counts = service.deliveries()
    finally:
        service.stop()

    classifier = load_classifier(args.model, None)
    classifier.predict(issues[:8])  # warm up, as the service's first batch is not timed either
    started = time.monotonic()
    classifier.predict(issues)
    classify_s = time.monotonic() - started

    worker_rate, classify_rate = len(issues) / drained_s, len(issues) / classify_s
    result = {
        "issues": len(issues), "deliveries": len(backlog), "refused": len(refused), "model": args.model,
        "outcomes": counts, "worker_drain_s": round(drained_s, 2), "worker_issues_per_s": round(worker_rate, 1),
        "classify_s": round(classify_s, 2), "classify_issues_per_s": round(classify_rate, 1),
        "worker_share_of_classify": round(worker_rate / classify_rate, 3), "target_share": 0.7,
        "settings": tuning or "defaults",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"worker-throughput-{args.model}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
