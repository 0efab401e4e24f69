"""What the web layer, the worker and the handlers share in one process."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import httpx
from gidgethub.abc import GitHubAPI

from app.computed import Computed
from app.config import ConfigError, Settings
from app.github.auth import AppAuth
from app.github.client import DELIVERY, GitHubClientFactory
from app.metrics import Metrics
from app.store.db import Database
from app.triage.classifier import Classifier
from app.triage.labels import LabelPolicy
from app.triage.loader import load_classifier
from app.workflow.batching import ClassifyBatcher

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    classifier: Classifier
    policy: LabelPolicy
    github: GitHubClientFactory | None = None
    bot_login: str | None = None
    known_labels: dict[str, set[str]] = field(default_factory=dict)
    backfills_scheduled: Callable[[], None] = lambda: None  # the backfill runner's wake-up, when one runs
    computed: Computed = field(default_factory=Computed)  # the dashboard's answers, until their data changes
    metrics: Metrics = field(default_factory=Metrics)
    share_locks: defaultdict[int, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))
    batcher: ClassifyBatcher = field(init=False)  # the handlers' and the backfill's way to the classifier

    def __post_init__(self) -> None:
        self.batcher = ClassifyBatcher(self.classifier.predict, self.settings.batch_size,
                                       self.settings.batch_wait_ms / 1000, self.metrics.classified)

    @property
    def dry_run(self) -> bool:
        return self.github is None

    async def installation_client(self, installation_id: int | None) -> GitHubAPI | None:
        """A client for the installation; None in dry-run (nothing is written to GitHub)
        and for a delivery that names no installation."""
        if self.github is None or installation_id is None:
            return None
        return await self.github.for_installation(installation_id, DELIVERY)

    def for_another_loop(self) -> Services:
        """What a thread with an event loop of its own works with: the same database, model, settings, metrics and
        dashboard answers; its own GitHub connections, batcher and locks (each bound to the loop that uses it)."""
        return replace(self, github=self.github.for_another_loop() if self.github else None, known_labels={},
                       share_locks=defaultdict(asyncio.Lock))

    async def aclose_loop_bound(self) -> None:
        """Close what ``for_another_loop`` made anew (the database stays open for the others)."""
        if self.github is not None:
            await self.github.aclose()

    async def aclose(self) -> None:
        await self.aclose_loop_bound()
        self.db.dispose()


def default_policy(settings: Settings) -> LabelPolicy:
    return LabelPolicy(prefix=settings.label_prefix, abstain_label=settings.abstain_label)


def build_services(settings: Settings) -> Services:
    db = Database(settings.sqlalchemy_url)
    db.migrate()
    # Scores at the training share: each repository's decisions are made at its own share
    # (app.workflow.repo_share), starting from PTM_TRIAGE_PTM_SHARE.
    classifier = load_classifier(settings.model_kind, settings.model_dir, device=settings.device,
                                 runtime=settings.runtime)
    if settings.ptm_share is not None and classifier.train_ptm_share is None:
        raise ConfigError(f"PTM_TRIAGE_PTM_SHARE needs a calibrated model; {settings.model_kind} is not (use bert)")
    policy = default_policy(settings)
    metrics = Metrics()
    metrics.watch(db)
    github = None
    if not settings.effective_dry_run:
        assert settings.github_app_id is not None  # not in dry-run: there are credentials
        auth = AppAuth(settings.github_app_id, settings.private_key_pem())
        github = GitHubClientFactory(settings.github_api_url, auth, httpx.AsyncClient(timeout=30),
                                     on_answer=metrics.github_answer)
    return Services(settings=settings, db=db, classifier=classifier, policy=policy, github=github, metrics=metrics)


async def identify_app(services: Services) -> None:
    """Learn the app's bot login, so that its own label changes are not taken for a person's."""
    if services.github is None:
        return
    try:
        gh = await services.github.app_client()
        app = await gh.getitem("/app")
    except Exception as exc:  # the service still runs; feedback then treats every bot as not-a-person
        log.warning("could not read GET /app (%s); the app's bot login stays unknown", exc)
        return
    services.bot_login = f"{app['slug']}[bot]"
    log.info("GitHub App %s (id %s); bot login %s", app.get("name"), app.get("id"), services.bot_login)
