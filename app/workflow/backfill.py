"""Importing a repository's existing issues: page by page, resumable, within GitHub's rate limits.

Each page of ``GET /repos/{o}/{r}/issues?state=all&sort=created&direction=asc`` is
stored (upserted by repository and number, with creation and closing times; pull
requests skipped), classified with one ``predict`` call and recorded and labelled
through :mod:`app.workflow.labelling`; only then does ``next_page`` move on, with the page's
counts. A process that stops mid-page leaves ``next_page`` on that page and the next
run imports it again: the upserts change nothing and an issue that has a prediction
of the serving model is not classified again, so every issue is imported and
predicted once.

Which imported issues get labels written is the repository's ``backfill.labels``
(``open``: open issues only, ``all``, ``none``); humans first: never an issue that
carries one of the app's labels or whose labels a person corrected.

The GitHub client is a patient one (``PATIENT``): it sleeps until a used-up rate
limit resets, honours ``Retry-After`` and retries 5xx answers; webhook deliveries
keep their fail-fast clients, and the runner is a task of its own, so neither
holds up the other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from tqdm import tqdm

from app.config import ConfigError, Settings
from app.github.client import (
    PATIENT,
    GitHubClient,
    GitHubClientFactory,
    Page,
    RetryPolicy,
)
from app.services import Services, build_services
from app.store.models import Backfill, Issue, Repository, utcnow
from app.store.queries import (
    add_issue_event,
    add_missing_issues,
    backfills,
    issues_labelled_by_app,
    next_backfill,
    predicted_issue_ids,
    repository_by_name,
    schedule_backfill,
    upsert_installation,
    upsert_repository,
)
from app.triage.labels import LabelPolicy
from app.workflow import labelling, repo_config
from app.workflow.labelling import Target
from app.workflow.repo_config import RepoSettings

log = logging.getLogger(__name__)

PER_PAGE = 100
LIST_URL = "/repos/{repo}/issues?state=all&sort=created&direction=asc&per_page={per_page}&page={page}"
DRY_RUN_MESSAGE = (
    "the service is in dry-run (PTM_TRIAGE_DRY_RUN, or no GitHub App credentials or GITHUB_WEBHOOK_SECRET): "
    "a backfill reads the issues through GitHub's API and cannot run"
)

Progress = dict[str, Any]


class BackfillUnavailable(ConfigError):
    """There is no GitHub API to read issues from (dry-run: no credentials)."""


@dataclass(frozen=True)
class _Work:
    target: Target
    write: bool


@dataclass(frozen=True)
class _StoredPage:
    issue_ids: list[int]
    work: list[_Work]


def status_json(backfill: Backfill) -> Progress:
    def when(moment: Any) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "repo": backfill.repository.full_name,
        "status": backfill.status,
        "imported": backfill.imported,
        "labelled": backfill.labelled,
        "next_page": backfill.next_page,
        "last_page": backfill.last_page,
        "started_at": when(backfill.started_at),
        "finished_at": when(backfill.finished_at),
        "error": backfill.error,
    }


def statuses(services: Services, repository_id: int | None = None) -> list[Progress]:
    with services.db.session() as session:
        return [status_json(b) for b in backfills(session, repository_id)]


# One repository ----------------------------------------------------------------------

async def run(services: Services, repository_id: int, on_page: Callable[[Progress], None] | None = None,
              retry: RetryPolicy = PATIENT) -> Progress:
    """Run the repository's scheduled backfill from its ``next_page`` to the end; its status after.

    A failure is recorded on the backfill (``failed``, with the error) rather than raised.
    ``retry`` is how its GitHub client sits out limits and failures (and on which clock).
    """
    if services.github is None:
        raise BackfillUnavailable(DRY_RUN_MESSAGE)
    with services.db.session() as session:
        backfill = _start(session, repository_id)
        full_name, installation_id, page = backfill.repository.full_name, backfill.installation_id, backfill.next_page
    try:
        gh = await services.github.for_installation(installation_id, retry)
        await _import(services, gh, repository_id, full_name, page, on_page)
    except Exception as exc:
        log.exception("backfill of %s failed", full_name)
        _fail(services, repository_id, _describe(exc))
    (progress,) = statuses(services, repository_id)
    return progress


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    return f"{type(exc).__name__}{f' ({int(status)})' if status else ''}: {exc}"


def _start(session: Session, repository_id: int) -> Backfill:
    backfill = session.get_one(Backfill, repository_id)  # scheduled before it is run
    backfill.status, backfill.error, backfill.finished_at = "running", None, None
    backfill.started_at = backfill.started_at or utcnow()
    return backfill


def _fail(services: Services, repository_id: int, error: str) -> None:
    with services.db.session() as session:
        backfill = session.get_one(Backfill, repository_id)
        backfill.status, backfill.error = "failed", error


async def _import(services: Services, gh: GitHubClient, repository_id: int, full_name: str, page: int,
                  on_page: Callable[[Progress], None] | None) -> None:
    log.info("backfill of %s from page %d", full_name, page)
    config: RepoSettings | None = None  # read with the first issue: an empty repository leaves no cached file
    while True:
        fetched = await gh.get_page(LIST_URL.format(repo=full_name, per_page=PER_PAGE, page=page))
        issue_ids: list[int] = []
        if fetched.items:
            config = config or (await repo_config.load(services, gh, repository_id, full_name)).settings
            issue_ids = await _import_page(services, gh, repository_id, fetched.items, config)
            await labelling.follow_share(services, gh, repository_id, config)
        progress = _advance(services, repository_id, page, fetched, issue_ids)
        if on_page is not None:
            on_page(progress)
        if progress["status"] == "done":
            log.info("backfill of %s done: %d issues, %d labelled", full_name, progress["imported"],
                     progress["labelled"])
            return
        page += 1


async def _import_page(services: Services, gh: GitHubClient, repository_id: int, items: list[dict[str, Any]],
                       config: RepoSettings) -> list[int]:
    """Store, classify and label one page's issues; their ids."""
    policy = config.policy(services.policy)
    stored = await asyncio.to_thread(_store_page, services, repository_id, items, config, policy)
    await _classify_and_apply(services, gh, stored.work, policy)
    return stored.issue_ids


def _store_page(services: Services, repository_id: int, items: list[dict[str, Any]], config: RepoSettings,
                policy: LabelPolicy) -> _StoredPage:
    try:
        return _store_page_once(services, repository_id, items, config, policy)
    except IntegrityError:  # a webhook delivery stored one of these issues meanwhile; now they are found
        return _store_page_once(services, repository_id, items, config, policy)


def _store_page_once(services: Services, repository_id: int, items: list[dict[str, Any]],
                     config: RepoSettings, policy: LabelPolicy) -> _StoredPage:
    issues = [item for item in items if "pull_request" not in item]
    with services.db.session() as session:
        rows = [_track(session, issue, created, policy)
                for issue, created in add_missing_issues(session, session.get_one(Repository, repository_id), issues)]
        predicted = predicted_issue_ids(session, [issue.id for issue in rows], services.classifier.version)
        work = [_Work(labelling.target_of(issue), _writes_labels(config, issue, policy)) for issue in rows
                if issue.id not in predicted and _classifies(config, issue)]
    return _StoredPage([issue.id for issue in rows], work)


def _track(session: Session, issue: Issue, created: bool, policy: LabelPolicy) -> Issue:
    if created:
        add_issue_event(session, issue, "opened", issue.created_at, None)
        if issue.closed_at is not None:
            add_issue_event(session, issue, "closed", issue.closed_at, None)
        # Humans first, as for an issue opened with the app's labels: the person's labels stand.
        issue.labels_locked_by_human = any(policy.is_app_label(name) for name in issue.labels)
    return issue


def _classifies(config: RepoSettings, issue: Issue) -> bool:
    return config.enabled and config.ignore_reason(issue.author_login, issue.author_type, issue.labels) is None


def _writes_labels(config: RepoSettings, issue: Issue, policy: LabelPolicy) -> bool:
    if config.dry_run or issue.labels_locked_by_human or any(policy.is_app_label(n) for n in issue.labels):
        return False
    mode = config.backfill.labels
    return mode == "all" or (mode == "open" and issue.state == "open")


async def _classify_and_apply(services: Services, gh: GitHubClient, work: list[_Work], policy: LabelPolicy) -> None:
    """Predictions for the page's issues in one batch, recorded (and labels written) one by one."""
    if not work:
        return
    predictions = await labelling.classify(services, [item.target.text for item in work])
    for item, prediction in zip(work, predictions, strict=True):  # one prediction per text
        await labelling.apply(services, gh, item.target, prediction, policy, write=item.write)


def _advance(services: Services, repository_id: int, page: int, fetched: Page, issue_ids: list[int]) -> Progress:
    """The page is done: move ``next_page`` on and count its issues (counted from the database,
    so a page done twice over an interruption counts once)."""
    with services.db.session() as session:
        backfill = session.get_one(Backfill, repository_id)
        backfill.next_page = page + 1
        backfill.last_page = fetched.last_page or (page if fetched.next_page is None else backfill.last_page)
        backfill.imported += len(issue_ids)
        backfill.labelled += issues_labelled_by_app(session, issue_ids)
        if fetched.next_page is None:
            backfill.status, backfill.finished_at = "done", utcnow()
        return status_json(backfill)


# In the service ------------------------------------------------------------------------

def _nothing() -> None:
    """No runner in this process: scheduled backfills wait for one."""


class BackfillRunner:
    """Works through interrupted and pending backfills, one at a time, beside the delivery worker.

    It looks at start (resuming what a stopped process left ``running``), when notified,
    and every ``worker_poll_s`` (backfills scheduled by another process).
    """

    def __init__(self, services: Services) -> None:
        self.services = services
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self.services.github is None:
            log.warning("backfills stay pending: %s", DRY_RUN_MESSAGE)
            return
        self.services.backfills_scheduled = self.notify
        self._task = asyncio.create_task(self._run(), name="backfill-runner")

    async def stop(self) -> None:
        self.services.backfills_scheduled = _nothing
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                while (repository_id := self._next()) is not None:
                    await run(self.services, repository_id)
            except Exception:
                log.exception("backfill runner error; continuing")
            try:
                await asyncio.wait_for(self._wake.wait(), self.services.settings.worker_poll_s)
            except TimeoutError:
                pass

    def _next(self) -> int | None:
        with self.services.db.session() as session:
            return next_backfill(session)


# From the command line -----------------------------------------------------------------

async def run_backfill_cli(settings: Settings, full_name: str, progress: bool = True) -> Progress:
    """``ptm-triage backfill owner/name``: the repository's backfill, run in this process.

    An unfinished backfill resumes; a finished one starts again from the first page
    (issues and predictions already stored are kept, not doubled). The installation
    comes from the database, else from ``GET /app/installations``. Returns the status
    (``status`` is ``failed`` with ``error`` when it did not finish). Raises
    ``BackfillUnavailable`` in dry-run and ``LookupError`` when no installation of
    the app covers the repository. Do not run it for a repository whose backfill a
    running service is working on.
    """
    services = build_services(settings)
    try:
        if services.github is None:
            raise BackfillUnavailable(DRY_RUN_MESSAGE)
        repository_id = await _scheduled_repository(services, services.github, full_name)
        with tqdm(desc=full_name, unit="page", disable=not progress) as bar:
            return await run(services, repository_id, on_page=partial(_show, bar))
    finally:
        await services.aclose()


def _show(bar: tqdm, progress: Progress) -> None:
    bar.total = progress["last_page"]
    bar.n = progress["next_page"] - 1
    bar.set_postfix_str(f"imported={progress['imported']}, labelled={progress['labelled']}")


async def _scheduled_repository(services: Services, github: GitHubClientFactory, full_name: str) -> int:
    with services.db.session() as session:
        repo = repository_by_name(session, full_name)
        if repo is not None and repo.installation_id is not None:
            return _rearm(session, repo, repo.installation_id)
    installation, data = await _discover(github, full_name)
    with services.db.session() as session:
        upsert_installation(session, installation)
        return _rearm(session, upsert_repository(session, data, installation["id"]), installation["id"])


def _rearm(session: Session, repo: Repository, installation_id: int) -> int:
    backfill = schedule_backfill(session, repo.id, installation_id)
    if backfill.status == "done":
        backfill.status, backfill.next_page, backfill.imported, backfill.labelled = "pending", 1, 0, 0
        backfill.started_at = backfill.finished_at = None
    return repo.id


async def _discover(github: GitHubClientFactory, full_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(installation, repository) JSON of the app's installation that covers ``full_name``."""
    app = await github.app_client(PATIENT)
    async for installation in app.getiter("/app/installations"):
        gh = await github.for_installation(installation["id"], PATIENT)
        async for repo in gh.getiter("/installation/repositories", iterable_key="repositories"):
            if repo["full_name"].lower() == full_name.lower():
                return installation, repo
    raise LookupError(f"no installation of the GitHub App covers {full_name}: install the app on it first")
