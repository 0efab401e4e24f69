"""The running service and the GitHub simulator, wired for end-to-end tests over HTTP on loopback.

Nothing is patched: the service talks to the simulator through gidgethub with a real
app JWT and installation tokens, and receives signed deliveries on /webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.triage.labels import LabelPolicy
from app.web.main import create_app
from tests import secret_watch
from tests.conftest_github import GITHUB_APP_ID
from tests.github_sim import GitHubSimulator
from tests.servers import serve
from tests.waiting import HTTP_TIMEOUT_S, wait_until

SECRET = "e2e-secret"
secret_watch.register(SECRET)
INSTALLATION = 77
REPO = "octo-org/diffusion-studio"
POLICY = LabelPolicy()


@dataclass
class Stack:
    sim: GitHubSimulator
    url: str
    app: FastAPI | None = None

    def send(self, event: str, payload: dict, delivery: str | None = None) -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        }
        return httpx.post(f"{self.url}/webhook", content=body, headers=headers, timeout=HTTP_TIMEOUT_S)

    def get(self, path: str, **params: str) -> dict:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=HTTP_TIMEOUT_S)
        assert response.status_code == 200, response.text
        return response.json()

    def get_text(self, path: str) -> str:
        response = httpx.get(f"{self.url}{path}", timeout=HTTP_TIMEOUT_S)
        assert response.status_code == 200, response.text
        return response.text

    def settle(self) -> dict[str, int]:
        """Wait until no delivery is queued and no backfill is left to finish; the delivery counts."""
        seen: dict[str, int] = {}

        def settled() -> bool:
            seen.clear()
            seen.update(self.get("/healthz")["deliveries"])
            return not seen.get("pending") and not seen.get("processing") and not self.backfilling()

        wait_until(settled, lambda: f"deliveries still queued: {seen}")
        return seen

    def backfilling(self) -> bool:
        """A backfill is still to finish (in dry-run none runs)."""
        found = self.get("/api/backfill")
        return not found["dry_run"] and any(b["status"] in ("pending", "running") for b in found["backfills"])

    def labels_on(self, number: int) -> set[str]:
        return {label["name"] for label in self.sim.issue(REPO, number)["labels"]}

    def label_writes(self) -> int:
        return sum(1 for x in self.sim.exchanges if x.method in {"POST", "DELETE"} and "/issues/" in x.path)


@pytest.fixture
def simulator(github_app_keys: tuple[str, str]) -> Iterator[GitHubSimulator]:
    sim = GitHubSimulator(GITHUB_APP_ID, github_app_keys[1])
    sim.add_installation(INSTALLATION, "octo-org", [REPO], account_type="Organization")
    with serve(sim.app) as url:
        sim.api_url = url
        yield sim


@pytest.fixture
def settings_for(
    make_settings: Callable[..., Settings], database_url: str, simulator: GitHubSimulator,
    github_app_keys: tuple[str, str],
) -> Callable[..., Settings]:
    def build(**fields: object) -> Settings:
        return make_settings(
            github_app_id=GITHUB_APP_ID, github_private_key=github_app_keys[0],
            github_webhook_secret=SECRET, github_api_url=simulator.api_url,
            database_url=database_url, **fields,
        )

    return build


@pytest.fixture
def stack(settings_for: Callable[..., Settings], simulator: GitHubSimulator) -> Iterator[Stack]:
    app = create_app(settings_for())
    with serve(app) as url:
        s = Stack(simulator, url, app)
        assert s.send("installation", simulator.installation_payload("created", INSTALLATION)).status_code == 202
        s.settle()
        yield s


def days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def open_issue(stack: Stack, title: str, body: str | None, created_days_ago: int = 0, **kw: object) -> int:
    issue = stack.sim.add_issue(REPO, title, body, created_at=days_ago(created_days_ago), **kw)
    assert stack.send("issues", stack.sim.issues_payload("opened", REPO, issue["number"], INSTALLATION)).status_code == 202
    stack.settle()
    return issue["number"]
