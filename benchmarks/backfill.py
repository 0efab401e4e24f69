"""Backfill benchmark: a repository of 10,000 issues imported through the GitHub simulator,
served over HTTP on loopback (uvicorn in a thread), with the service's own code path
(``run_backfill_cli``: installation discovery, pages, one ``predict`` per page, labels).

    .venv/bin/python benchmarks/backfill.py [--issues 10000] [--model bert|baseline] [--database-url URL]

Wall time, issues/s and peak memory (RSS of the whole process: simulator included) are
printed and written to ``benchmarks/results/backfill-<model>.json``. Targets on CPU: at most
5 minutes and 1.5 GB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# After the checkout is on sys.path: the benchmark imports the app and the test doubles from it.
from app.config import Settings  # noqa: E402
from app.workflow.backfill import run_backfill_cli  # noqa: E402
from tests.backfill_data import populate  # noqa: E402
from tests.github_sim import GitHubSimulator, generate_app_keypair  # noqa: E402
from tests.servers import serve  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
APP_ID = 4242
INSTALLATION = 1
REPO = "bench/big-model-hub"
TARGETS = {"wall_s": 300, "peak_rss_mb": 1536}


def benchmark(n_issues: int, model: str, database_url: str | None) -> dict[str, object]:
    private_key, public_key = generate_app_keypair()
    sim = GitHubSimulator(APP_ID, public_key)
    sim.add_installation(INSTALLATION, "bench", [REPO])
    populate(sim, REPO, n_issues)
    with tempfile.TemporaryDirectory() as tmp, serve(sim.app) as url:
        sim.api_url = url
        settings = Settings(
            _env_file=None, github_app_id=APP_ID, github_private_key=private_key,
            github_webhook_secret="benchmark", github_api_url=url, data_dir=Path(tmp),
            database_url=database_url or f"sqlite:///{tmp}/backfill.db", model_kind=model,
        )
        started = time.perf_counter()
        result = asyncio.run(run_backfill_cli(settings, REPO, progress=True))
        wall = time.perf_counter() - started
        backend = settings.sqlalchemy_url.split(":", 1)[0]
    if result["status"] != "done":
        raise SystemExit(f"backfill did not finish: {result}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    return {
        "model": model,
        "issues": result["imported"],
        "labelled": result["labelled"],
        "pages": result["last_page"],
        "github_requests": len(sim.exchanges),
        "wall_s": round(wall, 2),
        "issues_per_s": round(result["imported"] / wall, 1),
        "peak_rss_mb": round(peak_mb, 1),
        "database": backend,
        "targets": TARGETS,
        "within_targets": wall <= TARGETS["wall_s"] and peak_mb <= TARGETS["peak_rss_mb"],
        "machine": {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=10_000)
    parser.add_argument("--model", choices=["bert", "baseline"], default="bert")
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    args = parser.parse_args()
    figures = benchmark(args.issues, args.model, args.database_url)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"backfill-{args.model}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
