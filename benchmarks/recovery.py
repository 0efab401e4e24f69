"""Recovery benchmark: ``kill -9`` of the service (``ptm-triage serve``, SQLite, in-process worker, dry-run)
mid-stream of a backlog of deliveries (acknowledged while no worker ran, then a tenth of them done), then a restart: how long until every acknowledged delivery is finished,
and whether any was lost or done twice.

    .venv/bin/python benchmarks/recovery.py [--deliveries 1000] [--model baseline|bert] [--lease-s 30]

The delivery the dead worker held waits for its lease (``PTM_TRIAGE_WORKER_LEASE_S``, 30 s by default,
renewed every 10 s while a live worker works on it). Written to ``benchmarks/results/recovery-<model>.json``.
Target: all finished within 60 s of the restart.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.service_process import ServiceProcess, opened_payloads  # noqa: E402
from tests.waiting import wait_until  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--model", default="baseline", choices=["baseline", "bert"])
    parser.add_argument("--lease-s", type=float, default=30.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ptm-recovery-"))
    service = ServiceProcess(workdir, {"PTM_TRIAGE_MODEL": args.model, "PTM_TRIAGE_WORKER_LEASE_S": str(args.lease_s),
                                       "PTM_TRIAGE_WORKER": "off"})
    service.start()
    try:
        acknowledged = [d for d, body in opened_payloads(args.deliveries) if service.send(d, body) == 202]
        service.stop()
        service.env_extra["PTM_TRIAGE_WORKER"] = "inprocess"
        service.start()
        wait_until(lambda: service.deliveries().get("done", 0) >= args.deliveries // 10, "the worker into the backlog",
                   timeout_s=3600)
        done_before = service.deliveries().get("done", 0)
        service.kill()
        rows = service.rows()
        held = [d for d, row in rows.items() if row["status"] == "processing"]
        killed_with = {s: sum(1 for r in rows.values() if r["status"] == s) for s in ("pending", "processing", "done")}
        started = time.monotonic()
        service.start()
        answering_s = time.monotonic() - started

        def finished() -> bool:
            counts = service.deliveries()
            return not counts.get("pending") and not counts.get("processing")

        wait_until(finished, "every delivery finished", timeout_s=3600)
        finished_s = time.monotonic() - started
        rows = service.rows()
    finally:
        service.stop()
    result = {
        "deliveries": args.deliveries, "acknowledged": len(acknowledged), "model": args.model,
        "lease_s": args.lease_s, "done_before_kill": done_before, "at_kill": killed_with, "held_at_kill": held,
        "restart_answering_s": round(answering_s, 1), "all_finished_after_restart_s": round(finished_s, 1),
        "lost": sum(1 for d in acknowledged if rows.get(d, {}).get("status") != "done"),
        "processed_twice": sorted(d for d in acknowledged if rows[d]["attempts"] > 1 and d not in held),
        "held_attempts": {d: rows[d]["attempts"] for d in held},
        "target_s": 60, "machine": f"{platform.machine()}, {platform.python_version()}",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"recovery-{args.model}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
