"""SQLAlchemy models: every table the app keeps."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import true as sa_true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Installation(Base):
    __tablename__ = "installations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    account_login: Mapped[str] = mapped_column(String(255))
    account_type: Mapped[str | None] = mapped_column(String(32))
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    repositories: Mapped[list[Repository]] = relationship(back_populates="installation")


class Repository(Base):
    __tablename__ = "repositories"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    full_name: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    installation_id: Mapped[int | None] = mapped_column(ForeignKey("installations.id"), index=True)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Raised in the same transaction as every change to the repository's issues (app.store.versioning).
    data_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Only those who may read it on GitHub see a private repository's data (app.web.access).
    private: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())

    installation: Mapped[Installation | None] = relationship(back_populates="repositories")


class Issue(Base):
    """One issue of a repository. ``closed_at`` is the closure that currently stands
    (the latest one; a reopen clears it), which is what resolution time uses."""

    __tablename__ = "issues"
    __table_args__ = (UniqueConstraint("repository_id", "number", name="uq_issue_repo_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    github_id: Mapped[int | None] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str | None] = mapped_column(Text)
    author_login: Mapped[str | None] = mapped_column(String(255))
    author_type: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="open")
    state_reason: Mapped[str | None] = mapped_column(String(32))
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    transferred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    labels_locked_by_human: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    repository: Mapped[Repository] = relationship()
    events: Mapped[list[IssueEvent]] = relationship(
        back_populates="issue", order_by="IssueEvent.id", cascade="all, delete-orphan"
    )
    predictions: Mapped[list[Prediction]] = relationship(
        back_populates="issue", order_by="Prediction.id", cascade="all, delete-orphan"
    )


class IssueEvent(Base):
    """Lifecycle history: opened, closed, reopened, deleted, transferred."""

    __tablename__ = "issue_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivery_id: Mapped[str | None] = mapped_column(String(64))

    issue: Mapped[Issue] = relationship(back_populates="events")


class Delivery(Base):
    """A webhook delivery, stored before it is acknowledged; the worker's queue."""

    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payload_pruned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # payload dropped after retention
    lease_owner: Mapped[str | None] = mapped_column(String(120))  # the worker processing it (app.queue.lease)
    ordering_key: Mapped[str | None] = mapped_column(String(80), index=True)  # app.queue.ordering


class Prediction(Base):
    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id"), index=True)
    model_version: Mapped[str] = mapped_column(String(128))
    ptm: Mapped[bool] = mapped_column(Boolean)
    ptm_score: Mapped[float] = mapped_column(Float)
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)
    theme_scores: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    subthemes: Mapped[list[str]] = mapped_column(JSON, default=list)
    subtheme_scores: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    type: Mapped[str | None] = mapped_column(String(16))
    type_scores: Mapped[dict[str, float]] = mapped_column(JSON, default=dict, server_default="{}")
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    abstained: Mapped[bool] = mapped_column(Boolean, default=False)
    abstain_reason: Mapped[str | None] = mapped_column(String(64))  # e.g. "language not supported"
    # The PTM decision in full: the model's score at its training share, the repository share
    # it was moved to (``app.workflow.repo_share``; None: not moved) and the threshold it was held to.
    ptm_score_at_training_share: Mapped[float | None] = mapped_column(Float)
    ptm_share: Mapped[float | None] = mapped_column(Float)
    ptm_threshold: Mapped[float | None] = mapped_column(Float)
    delivery_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    issue: Mapped[Issue] = relationship(back_populates="predictions")


class LabelChange(Base):
    """A label added to or removed from an issue, by the app or by a person."""

    __tablename__ = "label_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(255))
    by_app: Mapped[bool] = mapped_column(Boolean, default=False)
    labels_before: Mapped[list[str]] = mapped_column(JSON, default=list)
    labels_after: Mapped[list[str]] = mapped_column(JSON, default=list)
    delivery_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Backfill(Base):
    """Importing a repository's existing issues, page by page; ``next_page`` is where to resume."""

    __tablename__ = "backfills"

    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id"), primary_key=True)
    installation_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    next_page: Mapped[int] = mapped_column(Integer, default=1)
    last_page: Mapped[int | None] = mapped_column(Integer)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    labelled: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    repository: Mapped[Repository] = relationship()


class RepoConfig(Base):
    """The last ``.github/ptm-triage.yml`` read for a repository (its own or its owner's ``.github``)."""

    __tablename__ = "repo_configs"

    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id"), primary_key=True)
    source: Mapped[str | None] = mapped_column(String(300))
    sha: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RepoShare(Base):
    """A repository's share of PTM-related issues, as its probabilities are moved to (``app.workflow.repo_share``)."""

    __tablename__ = "repo_shares"

    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id"), primary_key=True)
    share: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16))  # estimated | deployment | training
    issues: Mapped[int] = mapped_column(Integer)  # scored issues the estimate rests on
    known: Mapped[int] = mapped_column(Integer)  # of them, with labels a person set
    estimated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WebSession(Base):
    """A person signed in with GitHub: who, and which private repositories they may read (as GitHub
    said at sign-in). The cookie holds the token whose SHA-256 is ``id``; no GitHub token is kept."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    login: Mapped[str] = mapped_column(String(255))
    repository_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ApiToken(Base):
    """An operator's token for the read API (``ptm-triage token create``); only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
