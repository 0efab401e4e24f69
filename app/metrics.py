"""What ``GET /metrics`` tells Prometheus (``prometheus-client``, its text format).

Counters and histograms are counted where things happen (the webhook, the worker, the classifier's one
entry point, the GitHub client); the queue and the backfills are read from the database at each scrape,
so every process of a deployment reports the same queue. No label names a repository: a private
repository's name is not to be told to whoever can reach ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from app.store.db import Database
from app.store.models import Backfill, Delivery, utcnow
from app.store.queries import delivery_counts

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """One process's metrics, in a registry of their own (so that two apps in one process, as in tests,
    count apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.webhook_answers = Counter("ptm_triage_webhook_requests", "Answers of POST /webhook, by status code",
                                       ["code"], registry=r)
        self.deliveries = Counter("ptm_triage_deliveries", "Deliveries the worker finished or put back, by event "
                                  "and outcome (done, skipped, failed, retry)", ["event", "outcome"], registry=r)
        self.processing = Histogram("ptm_triage_delivery_processing_seconds", "Time to process one delivery",
                                    ["event"], buckets=LATENCY_BUCKETS, registry=r)
        self.classification = Histogram("ptm_triage_classification_seconds", "Time the classifier took for one "
                                        "batch of issues", buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("ptm_triage_classification_batch_size", "Issues per classifier call",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.github_requests = Counter("ptm_triage_github_requests", "Requests to GitHub's API, by method and "
                                       "answer (a status code, or 'transport-error')", ["method", "status"],
                                       registry=r)
        self.rate_limit_remaining = Gauge("ptm_triage_github_rate_limit_remaining", "Requests left in GitHub's "
                                          "primary rate limit, as its last answer said, per client ('app' or "
                                          "'installation:ID')", ["client"], registry=r)

    def classified(self, size: int, seconds: float) -> None:
        """``app.workflow.batching``'s hook: one classifier call."""
        self.batch_size.observe(size)
        self.classification.observe(seconds)

    def github_answer(self, client: str, method: str, status: str, remaining: int | None) -> None:
        """``app.github.client``'s hook: one answer from GitHub."""
        self.github_requests.labels(method, status).inc()
        if remaining is not None:
            self.rate_limit_remaining.labels(client).set(remaining)

    def watch(self, db: Database) -> None:
        """Report the queue and the backfills of ``db`` at every scrape."""
        self.registry.register(_StoredWork(db))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _StoredWork(Collector):
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("ptm_triage_queue_deliveries", "Stored deliveries by status", labels=["status"])
        oldest = GaugeMetricFamily("ptm_triage_queue_oldest_pending_age_seconds",
                                   "Age of the oldest delivery waiting to be processed (0 when none waits)")
        backfills = GaugeMetricFamily("ptm_triage_backfills", "Imports of repositories' history by status",
                                      labels=["status"])
        imported = GaugeMetricFamily("ptm_triage_backfill_imported_issues", "Issues imported by the backfills "
                                     "not finished yet")
        with self.db.session() as session:
            statuses = delivery_counts(session)
            first: datetime | None = session.scalar(select(func.min(Delivery.received_at))
                                                    .where(Delivery.status == "pending"))
            by_status = dict(session.execute(select(Backfill.status, func.count()).group_by(Backfill.status)).all())
            running = session.scalar(select(func.coalesce(func.sum(Backfill.imported), 0))
                                     .where(Backfill.status.in_(("pending", "running")))) or 0
        for status in ("pending", "processing", "done", "skipped", "failed"):
            depth.add_metric([status], statuses.get(status, 0))
        oldest.add_metric([], max((utcnow() - first).total_seconds(), 0.0) if first else 0.0)
        for status in ("pending", "running", "done", "failed"):
            backfills.add_metric([status], by_status.get(status, 0))
        imported.add_metric([], running)
        yield from (depth, oldest, backfills, imported)
