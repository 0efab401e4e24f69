"""Per-repository configuration: ``.github/ptm-triage.yml``, or the owner's ``.github`` repository's.

Read through the contents API, cached in the database, refreshed when a push
changes the file (and at the latest after ``CACHE_TTL``). A file that does not
parse or validate leaves the app on its defaults; the problem is logged and kept
with the cached row (``GET /api/config``), the app never crashes on it.

Example::

    enabled: true
    dry_run: false          # classify and record, never write labels
    comment: false          # explain the labels in a comment on new issues
    labels:
      prefix: ptm
      abstain: "ptm: needs-triage"
      subthemes: false
      types: false          # label the issue type (bug / enhancement / question) where the repository's own labels don't
      colors: {PTM: 5319e7, HR: b60205}
    thresholds:
      ptm: 0.7              # replaces the model's own decision
      uncertain: [0.4, 0.6] # abstain between these PTM scores; null: never
      themes: {HR: 0.5}
    ignore:
      authors: ["dependabot[bot]"]
      labels: [wontfix]
      bots: true            # issues opened by bot accounts
    backfill:
      labels: open          # open | all | none: which imported issues get labels written
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

import yaml
from gidgethub import BadRequest
from gidgethub.abc import GitHubAPI
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import CursorResult, func, select, update

from app.github.client import is_rate_limited
from app.services import Services
from app.store.models import RepoConfig, Repository, utcnow
from app.triage.labels import LabelPolicy

log = logging.getLogger(__name__)

CONFIG_PATH = ".github/ptm-triage.yml"
CACHE_TTL = timedelta(hours=1)
MAX_CONFIG_BYTES = 64 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelsConfig(_Strict):
    prefix: str | None = Field(default=None, min_length=1, max_length=20)
    abstain: str | None = Field(default=None, min_length=1, max_length=50)
    subthemes: bool = False
    types: bool = False
    colors: dict[str, str] = Field(default_factory=dict)


class ThresholdsConfig(_Strict):
    ptm: float | None = Field(default=None, ge=0, le=1)
    uncertain: tuple[float, float] | None = (0.35, 0.65)
    themes: dict[str, float] = Field(default_factory=dict)


class IgnoreConfig(_Strict):
    authors: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    bots: bool = True


class BackfillConfig(_Strict):
    labels: Literal["open", "all", "none"] = "open"


class RepoSettings(_Strict):
    enabled: bool = True
    dry_run: bool = False
    comment: bool = False
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    thresholds: ThresholdsConfig = Field(default_factory=ThresholdsConfig)
    ignore: IgnoreConfig = Field(default_factory=IgnoreConfig)
    backfill: BackfillConfig = Field(default_factory=BackfillConfig)

    def policy(self, default: LabelPolicy) -> LabelPolicy:
        """The service's policy with this repository's choices laid over it."""
        prefix = self.labels.prefix or default.prefix
        return LabelPolicy(
            prefix=prefix,
            abstain_label=self.labels.abstain or (default.abstain_label if prefix == default.prefix else None),
            ptm_threshold=self.thresholds.ptm if self.thresholds.ptm is not None else default.ptm_threshold,
            theme_thresholds={**default.theme_thresholds, **self.thresholds.themes},
            uncertain_band=self.thresholds.uncertain,
            subthemes=self.labels.subthemes,
            types=self.labels.types,
            colors={**default.colors, **self.labels.colors},
        )

    def ignore_reason(self, author: str | None, author_type: str | None, labels: list[str]) -> str | None:
        """Why this repository's configuration says to leave an issue alone, if it does."""
        if author and author.lower() in {a.lower() for a in self.ignore.authors}:
            return f"author {author} is ignored"
        if self.ignore.bots and (author_type == "Bot" or (author or "").endswith("[bot]")):
            return f"author {author} is a bot"
        ignored = {name.lower() for name in self.ignore.labels} & {name.lower() for name in labels}
        if ignored:
            return f"label {sorted(ignored)[0]!r} is ignored"
        return None


class ConfigProblem(ValueError):
    """The configuration file is not valid; the message says where."""


def parse(text: str, default: LabelPolicy) -> RepoSettings:
    """A configuration file's settings; ``ConfigProblem`` naming what is wrong otherwise."""
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise ConfigProblem(f"{CONFIG_PATH} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigProblem(f"{CONFIG_PATH} must be a mapping of settings, not {type(data).__name__}")
    try:
        settings = RepoSettings.model_validate(data)
        settings.policy(default)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigProblem(f"{CONFIG_PATH}: {where}") from None
    except ValueError as exc:
        raise ConfigProblem(f"{CONFIG_PATH}: {exc}") from None
    return settings


@dataclass(frozen=True)
class LoadedConfig:
    settings: RepoSettings
    source: str | None  # "owner/name:.github/ptm-triage.yml", None for the defaults
    error: str | None = None
    report_error: bool = False  # just read, invalid, and the file asks for comments: say so on GitHub

    def error_comment(self) -> str:
        return (f"PTM Triage could not use `{self.source}` and works with its defaults until it is fixed:\n\n"
                f"> {self.error}")


def asks_for_comments(text: str) -> bool:
    """Whether an invalid file still says ``comment: true`` at its top level."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return isinstance(data, dict) and data.get("comment") is True


async def _fetch(gh: GitHubAPI, full_name: str) -> tuple[str, str, str] | None:
    """(source, sha, text) of the repository's file, else its owner's ``.github`` one; None when neither."""
    owner = full_name.split("/")[0]
    for repo in dict.fromkeys([full_name, f"{owner}/.github"]):
        try:
            data = await gh.getitem(f"/repos/{repo}/contents/{CONFIG_PATH}")
        except BadRequest as exc:
            # 404: no file; 403: a repository the installation cannot read. A rate limit is
            # neither: taken for "no file", it would put a repository that turned the app
            # off back on its defaults for as long as the cache lasts.
            if exc.status_code in (403, 404) and not is_rate_limited(exc):
                continue
            raise
        if not isinstance(data, dict) or data.get("type") != "file":
            continue
        if data.get("size", 0) > MAX_CONFIG_BYTES:
            return f"{repo}:{CONFIG_PATH}", data.get("sha", ""), "\0too large"
        text = base64.b64decode(data.get("content") or "").decode("utf-8", "replace")
        return f"{repo}:{CONFIG_PATH}", data.get("sha", ""), text
    return None


def interpret(row: RepoConfig, default: LabelPolicy) -> LoadedConfig:
    if row.text is None:
        return LoadedConfig(RepoSettings(), None)
    if row.text.startswith("\0"):
        return LoadedConfig(RepoSettings(), row.source, f"{CONFIG_PATH} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return LoadedConfig(parse(row.text, default), row.source)
    except ConfigProblem as exc:
        return LoadedConfig(RepoSettings(), row.source, str(exc))


async def load(services: Services, gh: GitHubAPI | None, repository_id: int, full_name: str) -> LoadedConfig:
    """The repository's settings: cached, else read from GitHub (defaults in dry-run)."""
    if gh is None:
        return LoadedConfig(RepoSettings(), None)
    with services.db.session() as session:
        row = session.get(RepoConfig, repository_id)
        if row is not None and utcnow() - row.fetched_at < CACHE_TTL:  # fresh
            return interpret(row, services.policy)
    fetched = await _fetch(gh, full_name)
    with services.db.session() as session:
        row = session.get(RepoConfig, repository_id) or RepoConfig(repository_id=repository_id)
        row.source, row.sha, row.text = fetched if fetched else (None, None, None)
        row.fetched_at = utcnow()
        loaded = interpret(row, services.policy)
        row.error = loaded.error
        session.merge(row)
    if loaded.error:
        log.warning("%s: configuration ignored, defaults used: %s", full_name, loaded.error)
        return replace(loaded, report_error=asks_for_comments(row.text or ""))
    return loaded


def invalidate(services: Services, full_name: str) -> int:
    """Forget the cached configuration of a repository, or of every repository of the owner
    when the changed file is in the owner's ``.github`` repository."""
    owner, name = full_name.split("/", 1)
    stale = datetime(1970, 1, 1, tzinfo=UTC)
    which = (
        Repository.full_name.istartswith(f"{owner}/", autoescape=True) if name == ".github"
        else func.lower(Repository.full_name) == full_name.lower()
    )
    with services.db.session() as session:
        result = cast("CursorResult[Any]", session.execute(  # an UPDATE's result is a CursorResult
            update(RepoConfig)
            .where(RepoConfig.repository_id.in_(select(Repository.id).where(which)))
            .values(fetched_at=stale)
        ))
        return result.rowcount or 0
