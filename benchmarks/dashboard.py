"""Dashboard benchmark: how long the pages take to render for a large installation.

Fills an SQLite database directly (bulk inserts of issues and their predictions, as the
webhook path would have left them; a person's labels on 2% of the issues), then times the
service's own answers in process (FastAPI's TestClient, the embedded default):

- ``GET /dashboard/bench/huge``: one repository of ``--issues`` issues (target: at most 1 s);
- ``GET /api/stats?repo=bench/huge``: its statistics;
- ``GET /dashboard``: ``--repositories`` repositories of ``--per-repository`` issues each (target: 1 s).

    .venv/bin/python benchmarks/dashboard.py [--issues 100000] [--repositories 500] [--per-repository 40]

Each run changes one issue (as a delivery would), then times the first request, which computes
the answer (cold), and the next, which is served the answer kept for that data version (warm,
``app.computed``); then changes it again, runs the refresh the worker runs when it has worked
through the queue (which computes again the answers asked for lately and the standing ones) and
times a request. Last, a fresh start with the in-process worker: the time until the standing
answers are ready, and the first requests. Medians and maxima of ``--runs`` runs after one warm-up, written to
``benchmarks/results/dashboard.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI
from fastapi.testclient import TestClient
from locations import write_result
from sqlalchemy import insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from app.config import Settings  # noqa: E402
from app.store.db import Database  # noqa: E402
from app.store.models import Issue, Prediction, Repository  # noqa: E402
from app.triage.labels import LabelPolicy  # noqa: E402
from app.web.main import create_app  # noqa: E402

TARGET_S = 1.0
START = datetime(2023, 1, 1, tzinfo=UTC)
THEMES = ("HR", "SE", "PQ", "MU", "FN", "RC", "DI")


def fill(db: Database, repositories: list[tuple[int, str, int]], seed: int = 0) -> None:
    """Issues and one prediction each, about 30% PTM-related, 80% closed, for each (id, name, count)."""
    rng = random.Random(seed)
    policy = LabelPolicy()
    theme_label = {code: policy.label_name(code) for code in THEMES}
    issue_id = 0
    with db.session() as session:
        session.execute(insert(Repository), [{"id": rid, "full_name": name} for rid, name, _ in repositories])
        for repository_id, _, count in repositories:
            issues, predictions = [], []
            for number in range(1, count + 1):
                issue_id += 1
                score = rng.betavariate(0.45, 1.05)
                ptm = score >= 0.5
                theme = rng.choice(THEMES)
                labels = [policy.ptm_label, theme_label[theme]] if ptm else []
                created = START + timedelta(days=rng.uniform(0, 700))
                closed = created + timedelta(days=rng.lognormvariate(2.8 if ptm else 2.0, 1.0)) \
                    if rng.random() < 0.8 else None
                issues.append({
                    "id": issue_id, "repository_id": repository_id, "number": number, "title": f"issue {number}",
                    "body": "", "state": "closed" if closed else "open", "labels": labels, "created_at": created,
                    "closed_at": closed, "state_reason": "completed" if closed else None,
                    "labels_locked_by_human": rng.random() < 0.02, "author_login": "someone", "author_type": "User",
                })
                predictions.append({
                    "issue_id": issue_id, "model_version": "bench", "ptm": ptm, "ptm_score": score,
                    "themes": [theme] if ptm else [], "labels": labels, "subthemes": [], "type": "bug",
                    "abstained": False, "created_at": created,
                })
            for start in range(0, len(issues), 5000):
                session.execute(insert(Issue), issues[start:start + 5000])
                session.execute(insert(Prediction), predictions[start:start + 5000])


def change_one_issue(db: Database, repository_id: int, run: int) -> None:
    """A real change, as a delivery makes one: it raises the repository's data version, so the next
    request computes its answer again (cold) instead of serving the one kept (warm)."""
    with db.session() as session:
        issue = session.scalar(select(Issue).where(Issue.repository_id == repository_id, Issue.number == 1))
        assert issue is not None
        issue.title = f"issue 1, edited {run}"


def timed(client: TestClient, db: Database, repository_id: int, path: str, runs: int) -> dict[str, Any]:
    """Per run: one change, then the first request (cold: computed) and the next (warm: kept); then
    another change, the refresh the worker runs once it has worked through the queue, and a request."""
    assert client.get(path).status_code == 200  # warm-up: imports, templates, plotly
    computed = cast(FastAPI, client.app).state.services.computed
    cold, warm, refresh, refreshed = [], [], [], []

    def get() -> float:
        started = time.perf_counter()
        response = client.get(path)
        assert response.status_code == 200, response.text[:300]
        return time.perf_counter() - started

    for run in range(runs):
        change_one_issue(db, repository_id, 2 * run)
        cold.append(get())
        warm.append(get())
        change_one_issue(db, repository_id, 2 * run + 1)
        started = time.perf_counter()
        computed.refresh(db)
        refresh.append(time.perf_counter() - started)
        refreshed.append(get())
    response = client.get(path)
    return {
        "path": path, "runs": runs, "target_s": TARGET_S, "bytes": len(response.content),
        "cold_median_s": round(statistics.median(cold), 3), "cold_max_s": round(max(cold), 3),
        "warm_median_s": round(statistics.median(warm), 4), "warm_max_s": round(max(warm), 4),
        "refresh_median_s": round(statistics.median(refresh), 3),
        "after_refresh_median_s": round(statistics.median(refreshed), 4),
        "cold_met": statistics.median(cold) <= TARGET_S, "warm_met": statistics.median(warm) <= TARGET_S,
        "after_refresh_met": statistics.median(refreshed) <= TARGET_S,
    }


def fresh_start(settings: Settings, db: Database) -> dict[str, Any]:
    """A new process with the in-process worker: how long until its standing answers (the overview
    and the largest repositories' pages) are computed, and the first requests after that."""
    started = time.perf_counter()
    with TestClient(create_app(settings.model_copy(update={"worker": "inprocess"}))) as client:
        computed = cast(FastAPI, client.app).state.services.computed
        while computed.stale(db):
            time.sleep(0.05)
        ready_s = time.perf_counter() - started
        first = {}
        for path in ("/dashboard/bench/huge", "/dashboard"):
            begun = time.perf_counter()
            assert client.get(path).status_code == 200
            first[path] = round(time.perf_counter() - begun, 4)
    return {"standing_answers_ready_s": round(ready_s, 2), "first_request_s": first,
            "met": all(seconds <= TARGET_S for seconds in first.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issues", type=int, default=100_000)
    parser.add_argument("--repositories", type=int, default=500)
    parser.add_argument("--per-repository", type=int, default=40)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/bench.db",
                            model_kind="baseline", worker="off")
        db = Database(settings.sqlalchemy_url)
        db.migrate()
        started = time.perf_counter()
        fill(db, [(1, "bench/huge", args.issues)]
             + [(100 + k, f"bench/repo-{k:03d}", args.per_repository) for k in range(args.repositories)])
        fill_s = time.perf_counter() - started
        with TestClient(create_app(settings)) as client:
            results = {
                "repository_page": {"issues": args.issues,
                                    **timed(client, db, 1, "/dashboard/bench/huge", args.runs)},
                "stats_api": {"issues": args.issues, **timed(client, db, 1, "/api/stats?repo=bench/huge", args.runs)},
                "overview": {"repositories": args.repositories + 1,
                             "issues": args.issues + args.repositories * args.per_repository,
                             **timed(client, db, 100, "/dashboard", args.runs)},
            }
        results["fresh_start"] = fresh_start(settings, db)
    out = {**results, "fill_s": round(fill_s, 1), "database": "sqlite"}
    print(json.dumps(out, indent=2))
    write_result("dashboard", out)


if __name__ == "__main__":
    main()
