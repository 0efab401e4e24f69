"""``kill -9`` of the service mid-stream: nothing acknowledged is lost, and the delivery in flight is taken up
again once its short lease runs out (``app.queue.lease``). ``benchmarks/recovery.py`` times it for 1,000."""

from __future__ import annotations

from pathlib import Path

from tests.service_process import ServiceProcess, opened_payloads
from tests.waiting import wait_until


def test_a_killed_service_loses_no_acknowledged_delivery(tmp_path: Path) -> None:
    service = ServiceProcess(tmp_path, {"PTM_TRIAGE_WORKER_LEASE_S": "3"})
    payloads = list(opened_payloads(160))
    acknowledged: list[str] = []

    def send(batch: list[tuple[str, bytes]]) -> None:
        acknowledged.extend(delivery for delivery, body in batch if service.send(delivery, body) == 202)

    service.env_extra["PTM_TRIAGE_WORKER"] = "off"
    service.start()
    try:
        send(payloads[:100])  # a backlog, acknowledged while no worker runs
        service.stop()
        service.env_extra["PTM_TRIAGE_WORKER"] = "inprocess"
        service.start()
        wait_until(lambda: service.deliveries().get("done", 0) >= 10, "the worker into the backlog")
        service.kill()
        assert service.deliveries_in_db("pending"), "killed mid-stream, with deliveries still queued"
        held = [d for d, row in service.rows().items() if row["status"] == "processing"]
        assert len(held) <= 32, "a worker holds at most PTM_TRIAGE_WORKER_CONCURRENCY deliveries at a time"
        service.start()
        send(payloads[100:])

        def finished() -> bool:
            counts = service.deliveries()
            return not counts.get("pending") and not counts.get("processing")

        wait_until(finished, "every delivery finished after the restart")
        rows = service.rows()
        assert len(acknowledged) == len(payloads)
        assert {rows[d]["status"] for d in acknowledged} == {"done"}
        assert {d: rows[d]["attempts"] for d in held} == dict.fromkeys(held, 2)
        assert {rows[d]["attempts"] for d in acknowledged if d not in held} == {1}
    finally:
        service.stop()
