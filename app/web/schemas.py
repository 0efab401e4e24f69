"""What the JSON routes answer, so that ``/openapi.json`` describes every response.

Each model forbids fields it does not name: a route that returned more than its model says
fails its tests instead of dropping the field quietly.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.workflow.repo_config import RepoSettings


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Health(_Answer):
    status: str = Field(description="ok while the service runs")
    model: str = Field(description="version of the serving classifier")
    dry_run: bool = Field(description="true when nothing is written to GitHub")
    database: str = Field(description="sqlite or postgresql")
    deliveries: dict[str, int] = Field(description="stored deliveries by status")


class StoredPrediction(_Answer):
    model: str
    ptm: bool | None
    ptm_score: float
    themes: list[str]
    theme_scores: dict[str, float]
    subthemes: list[str]
    subtheme_scores: dict[str, float]
    type: str | None
    type_scores: dict[str, float]
    labels: list[str] = Field(description="the labels the app chose")
    abstained: bool
    abstain_reason: str | None = Field(description="why the model's decisions were withdrawn, if they were")


class TrackedIssue(_Answer):
    repo: str
    number: int
    title: str
    state: str
    labels: list[str]
    created_at: str
    closed_at: str | None
    resolution_days: int | None
    reopen_count: int
    labels_locked_by_human: bool = Field(description="a person changed the app's labels: the app leaves them")
    prediction: StoredPrediction | None = Field(description="the latest prediction, if the issue was classified")


class IssuePage(_Answer):
    total: int
    limit: int
    offset: int
    issues: list[TrackedIssue]


class ShareInForce(_Answer):
    share: float = Field(description="the share of PTM-related issues decisions are made at")
    source: str = Field(description="estimated (from the repository's issues), deployment or training")
    issues: int = Field(description="scored issues the estimate rests on")
    known: int = Field(description="of them, issues whose labels a person set")


class RepositoryConfig(_Answer):
    repo: str
    source: str | None = Field(description="where the configuration came from")
    error: str | None = Field(description="what was wrong with the repository's configuration file")
    fetched_at: str | None
    settings: RepoSettings
    ptm_share: ShareInForce | None = Field(description="null when the model is not calibrated")


class BackfillProgress(_Answer):
    repo: str
    status: str
    imported: int
    labelled: int
    next_page: int
    last_page: int | None
    started_at: str | None
    finished_at: str | None
    error: str | None


class Backfills(_Answer):
    dry_run: bool
    backfills: list[BackfillProgress]
    note: str | None = Field(default=None, description="why nothing is imported, in dry-run")
