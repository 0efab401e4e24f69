"""``ptm-triage demo``: the service with something to show before real deliveries arrive.

It starts the service (embedded default: SQLite, in-process worker) on a database of its own
in a fresh directory, so nothing mixes with real data, and sends it signed ``issues.opened``
and ``issues.closed`` deliveries through the real webhook path: two made-up repositories of
an AI application, their issues written for this demo from the templates below (PTM-related
ones about models, GPUs and checkpoints; the rest about the application around them), PTM
issues taking longer to close. Without GitHub credentials the service writes no labels; it
classifies, records and counts every issue, and the dashboard shows them.
"""

from __future__ import annotations

import json
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ACCOUNT, INSTALLATION_ID = "demo-org", 4242
REPOSITORIES = (
    {"id": 910001, "name": "image-studio", "full_name": "demo-org/image-studio", "private": False},
    {"id": 910002, "name": "voice-notes", "full_name": "demo-org/voice-notes", "private": False},
)
MODELS = ("SDXL", "Whisper large-v3", "Llama 3 8B", "a LoRA checkpoint", "the ControlNet model", "Bark")
PTM_TEMPLATES = (
    ("CUDA out of memory when loading {model}", "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB on an "
     "8 GB card. Is there a way to run {model} with less VRAM?"),
    ("{model} produces blurry output after the update", "Since the last release every result from {model} looks "
     "washed out, with the same prompt and seed as before."),
    ("Please add support for {model}", "It would be great if the app could load {model}; it is the model most of "
     "our users ask about."),
    ("Checkpoint download for {model} fails with a hash mismatch", "The weights file downloads to 99% and then the "
     "checksum check fails. Deleting the cache does not help."),
    ("Torch not compiled with CUDA enabled", "AssertionError: Torch not compiled with CUDA enabled, although "
     "nvidia-smi shows my GPU. I installed the requirements with pip."),
    ("Which sampler settings give the best quality with {model}?", "The docs do not say which steps and guidance "
     "values suit {model}; what do you recommend?"),
    ("Transcription of long files stops after 30 seconds", "With {model} only the first 30 seconds of a one-hour "
     "recording come out as text, the rest is empty."),
    ("transformers 4.x breaks model loading", "After upgrading transformers, loading {model} raises "
     "AttributeError: 'NoneType' object has no attribute 'config'."),
)
OTHER_TEMPLATES = (
    ("The language selector is too small on mobile", "On a phone the dropdown in the header is hard to tap."),
    ("Broken link to the changelog on the homepage", "The 'What's new' link points to a page that does not exist."),
    ("Add a dark mode", "The settings page could follow the system theme."),
    ("Export the history as CSV", "I would like to download my past sessions as a spreadsheet."),
    ("Typo in the installation guide", "Step 3 says 'instal' instead of 'install'."),
    ("Keyboard shortcut to start a new session", "Ctrl+N could open an empty session."),
    ("Login with a magic link email never arrives", "The sign-in email is not delivered to Outlook addresses."),
    ("Sidebar overlaps the editor when the window is narrow", "Below 900 pixels the sidebar hides the text."),
    ("Docker compose file uses a deprecated version key", "docker compose warns about the top-level version."),
    ("Translate the interface into Portuguese", "Happy to help with the strings."),
)
START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class DemoIssue:
    repository: dict[str, Any]
    number: int
    title: str
    body: str
    created: datetime
    closed: datetime | None


def demo_issues(seed: int = 0, per_repository: int = 60) -> list[DemoIssue]:
    """About a third PTM-related; 80% closed, PTM issues about three times slower at the median."""
    rng = random.Random(seed)
    issues = []
    for repository in REPOSITORIES:
        for number in range(1, per_repository + 1):
            ptm = rng.random() < 0.35
            title, body = rng.choice(PTM_TEMPLATES if ptm else OTHER_TEMPLATES)
            model = rng.choice(MODELS)
            created = START + timedelta(days=rng.uniform(0, 300))
            days = rng.lognormvariate(3.0 if ptm else 1.9, 0.9)
            closed = created + timedelta(days=days) if rng.random() < 0.8 else None
            issues.append(DemoIssue(repository, number, title.format(model=model), body.format(model=model),
                                    created, closed))
    return issues


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def deliveries(issues: list[DemoIssue]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, payload) in the order GitHub would send them: openings, then closings."""
    def payload(issue: DemoIssue, action: str) -> dict[str, Any]:
        closing = action == "closed" and issue.closed is not None
        return {
            "action": action,
            "issue": {
                "id": issue.repository["id"] * 1000 + issue.number, "number": issue.number,
                "title": issue.title, "body": issue.body, "labels": [],
                "user": {"login": f"user{issue.number % 17}", "type": "User"},
                "state": "closed" if closing else "open", "state_reason": "completed" if closing else None,
                "created_at": _time(issue.created), "updated_at": _time(issue.closed if closing and issue.closed
                                                                          else issue.created),
                "closed_at": _time(issue.closed) if closing and issue.closed else None,
                "html_url": f"https://github.com/{issue.repository['full_name']}/issues/{issue.number}",
            },
            "repository": {**issue.repository, "owner": {"login": ACCOUNT}},
            "installation": {"id": INSTALLATION_ID},
            "sender": {"login": f"user{issue.number % 17}", "type": "User"},
        }

    for issue in issues:
        yield "issues", payload(issue, "opened")
    for issue in issues:
        if issue.closed is not None:
            yield "issues", payload(issue, "closed")


def run_demo(host: str, port: int, once: bool, timeout_s: float = 600.0) -> dict[str, Any]:
    """Start the service, send the demo deliveries, wait until they are processed and print the
    dashboard's address; then serve until interrupted (or, with ``once``, stop). Returns what it did."""
    import httpx
    import uvicorn

    from app.config import load_settings
    from app.github.signature import delivery_headers
    from app.web.main import create_app

    directory = Path(tempfile.mkdtemp(prefix="ptm-triage-demo-"))
    settings = load_settings(
        DATABASE_URL=f"sqlite:///{directory / 'demo.db'}", PTM_TRIAGE_DATA_DIR=str(directory),
        GITHUB_APP_ID=None, GITHUB_WEBHOOK_SECRET=None, PTM_TRIAGE_WORKER_POLL_S=0.2,
    )
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the demo service did not start on {host}:{port}")
        if time.monotonic() > deadline:
            raise TimeoutError("the demo service did not start in time")
        time.sleep(0.05)
    bound = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://{host}:{bound}"
    sent = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for event, payload in deliveries(demo_issues()):
            body = json.dumps(payload).encode()
            client.post("/webhook", content=body, headers=delivery_headers(settings.webhook_secret, event, body))\
                .raise_for_status()
            sent += 1
        while True:
            counts = client.get("/healthz").json()["deliveries"]
            if not set(counts) - {"done", "failed"}:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"demo deliveries still waiting after {timeout_s:.0f} s: {counts}")
            time.sleep(0.2)
        overall = client.get("/api/stats").json()["overall"]
    summary = {"url": url, "dashboard": f"{url}/dashboard", "deliveries": counts, "sent": sent,
               "directory": str(directory), "ptm_closed": overall["ptm"]["n"], "non_ptm_closed": overall["non_ptm"]["n"]}
    print(f"sent {sent} demo deliveries ({counts}); closed issues: {summary['ptm_closed']} PTM-related, "
          f"{summary['non_ptm_closed']} not; database in {directory}")
    print(f"dashboard: {summary['dashboard']}")
    if once:
        server.should_exit = True
        thread.join(timeout=30)
        return summary
    print("serving until Ctrl-C")
    try:
        while thread.is_alive():
            thread.join(timeout=0.5)
    except KeyboardInterrupt:
        server.should_exit = True
        thread.join(timeout=30)
    return summary
