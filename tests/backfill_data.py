"""A repository of many issues for the backfill's tests and benchmark.

Texts and labels come from ``../shared/data/train.jsonl``, read when called (the data
stays in the shared folder). Creation dates run over five years in order, most issues
are closed some days later (PTM-related ones later on average), and every
``pr_every``-th item is a pull request, which the backfill must skip.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import SHARED
from tests.github_sim import GitHubSimulator

DAY_S = 86400.0
START = datetime(2019, 1, 1, tzinfo=UTC).timestamp()
SPAN_S = 5 * 365 * DAY_S


@dataclass(frozen=True)
class MadeIssue:
    number: int
    created: datetime
    closed: datetime | None


def load_texts(path: Path = SHARED / "data" / "train.jsonl") -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def populate(sim: GitHubSimulator, repo: str, n_issues: int, *, seed: int = 0, pr_every: int = 16,
             closed_share: float = 0.8) -> list[MadeIssue]:
    """Add ``n_issues`` issues (and pull requests besides) to ``repo``; the issues, in number order."""
    texts = load_texts()
    rng = random.Random(seed)
    made: list[MadeIssue] = []
    total = n_issues + n_issues // (pr_every - 1)
    for i in itertools.count():
        if len(made) == n_issues:
            break
        created = float(int(START + SPAN_S * i / total))
        if i % pr_every == pr_every - 1:
            sim.add_issue(repo, f"Bump dependency #{i}", "Automated update.", created_at=created, pull_request=True)
            continue
        row = texts[len(made) % len(texts)]
        closed = None
        if rng.random() < closed_share:
            closed = float(int(created + rng.expovariate(1 / ((45 if row["ptm"] else 20) * DAY_S))))
        data = sim.add_issue(repo, row["title"], row["body"], labels=row["labels"], created_at=created,
                             state="closed" if closed else "open", closed_at=closed, user=f"user{i % 97}")
        made.append(MadeIssue(data["number"], _utc(created), _utc(closed) if closed else None))
    return made


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
