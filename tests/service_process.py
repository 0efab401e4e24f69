"""The service and its workers as processes of their own (``ptm-triage serve``, ``ptm-triage worker``), for
faults a thread cannot show: ``kill -9``.

Used by ``tests/queue/test_recovery.py``, ``tests/queue/test_scale_out.py`` and the benchmarks.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from app.config import Settings
from tests import secret_watch
from tests.conftest import WEBHOOK_EXAMPLES
from tests.servers import free_port
from tests.waiting import HTTP_TIMEOUT_S, PATIENCE_S, wait_until

SECRET = "kill-test-secret"
secret_watch.register(SECRET)
OPENED = json.loads((WEBHOOK_EXAMPLES / "issues" / "opened.payload.json").read_text())


def opened_payloads(count: int) -> Iterator[tuple[str, bytes]]:
    """(delivery id, body) of ``count`` distinct ``issues.opened`` deliveries built from GitHub's example."""
    for n in range(1, count + 1):
        payload = copy.deepcopy(OPENED)
        payload["issue"].update(number=n, id=10_000_000 + n, title=f"CUDA out of memory loading the model, case {n}")
        yield f"kill-test-{n}", json.dumps(payload).encode()


@dataclass
class ServiceProcess:
    """``ptm-triage serve`` on a free port, with a SQLite database in ``workdir`` that outlives it."""

    workdir: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = _without_settings(os.environ)
        env.update(PTM_TRIAGE_DATA_DIR=str(self.workdir / "data"), HF_HUB_OFFLINE="1", GITHUB_WEBHOOK_SECRET=SECRET,
                   DATABASE_URL=f"sqlite:///{self.workdir / 'ptm-triage.db'}", PTM_TRIAGE_DRY_RUN="1",
                   PTM_TRIAGE_MODEL="baseline")
        env.update(self.env_extra)
        log = (self.workdir / "serve.log").open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)],
                                        env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._answers, "the service answered /healthz")

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the service exited with {self.process.returncode}; see {self.workdir}/serve.log")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=HTTP_TIMEOUT_S).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """``kill -9``: no shutdown, no hand-back of the delivery in flight."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=PATIENCE_S)
        secret_watch.check_file(self.workdir / "serve.log")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=PATIENCE_S)
        secret_watch.check_file(self.workdir / "serve.log")

    def send(self, delivery_id: str, body: bytes) -> int | None:
        """The status of the answer; None when the service did not answer (it is down)."""
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "issues", "X-GitHub-Delivery": delivery_id,
                   "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
        try:
            return httpx.post(f"{self.url}/webhook", content=body, headers=headers, timeout=HTTP_TIMEOUT_S).status_code
        except httpx.TransportError:
            return None

    def deliveries(self) -> dict[str, int]:
        counts: dict[str, int] = httpx.get(f"{self.url}/healthz", timeout=HTTP_TIMEOUT_S).json()["deliveries"]
        return counts

    def deliveries_in_db(self, status: str) -> int:
        return sum(1 for row in self.rows().values() if row["status"] == status)

    def rows(self) -> dict[str, dict[str, Any]]:
        """Every stored delivery's status and attempts, read from the database itself."""
        import sqlite3

        with sqlite3.connect(self.workdir / "ptm-triage.db") as db:
            return {i: {"status": s, "attempts": a} for i, s, a in db.execute(
                "SELECT id, status, attempts FROM deliveries")}


def _without_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """This process's environment less every setting of the app's: a test process gets only those it is given."""
    return {k: v for k, v in environ.items() if not k.startswith(("GITHUB_", "PTM_TRIAGE_", "DATABASE_URL"))}


def environment_of(settings: Settings) -> dict[str, str]:
    """The environment that gives a process of its own the same settings (those set explicitly)."""
    env = _without_settings(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    for name in settings.model_fields_set:
        value = getattr(settings, name)
        if value is None:
            continue
        alias = Settings.model_fields[name].alias
        assert alias is not None, name
        env[alias] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return env


@dataclass
class WorkerProcess:
    """``ptm-triage worker`` with the environment given; its log in ``log_path``."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT)
        wait_until(self._ready, f"the worker started (see {self.log_path})")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the worker exited with {self.process.returncode}; see {self.log_path}")
        return "worker: model" in self.log_path.read_text()

    def kill(self) -> None:
        """``kill -9``: the deliveries in hand are neither finished nor handed back."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=PATIENCE_S)
        secret_watch.check_file(self.log_path)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=PATIENCE_S)
        secret_watch.check_file(self.log_path)

    def log_lines(self, containing: str) -> int:
        return sum(containing in line for line in self.log_path.read_text().splitlines())
