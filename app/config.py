"""Settings from the environment: the one place that reads it."""

from __future__ import annotations

import logging
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

SECRET_FILE_NAME = "webhook-secret"
SESSION_KEY_FILE_NAME = "session-key"


class ConfigError(ValueError):
    """A setting is missing or wrong; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    github_app_id: int | None = Field(default=None, alias="GITHUB_APP_ID")
    github_private_key: SecretStr | None = Field(default=None, alias="GITHUB_PRIVATE_KEY")
    github_private_key_path: Path | None = Field(default=None, alias="GITHUB_PRIVATE_KEY_PATH")
    github_webhook_secret: SecretStr | None = Field(default=None, alias="GITHUB_WEBHOOK_SECRET")
    github_api_url: str = Field(default="https://api.github.com", alias="GITHUB_API_URL")
    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    data_dir: Path = Field(default=Path("data"), alias="PTM_TRIAGE_DATA_DIR")
    dry_run: bool = Field(default=False, alias="PTM_TRIAGE_DRY_RUN")
    model_kind: str = Field(default="bert", alias="PTM_TRIAGE_MODEL")
    ptm_share: float | None = Field(default=None, alias="PTM_TRIAGE_PTM_SHARE", gt=0, lt=1)
    model_dir: Path | None = Field(default=None, alias="PTM_TRIAGE_MODEL_DIR")
    device: str = Field(default="auto", alias="PTM_TRIAGE_DEVICE", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    runtime: Literal["auto", "torch", "onnx"] = Field(default="auto", alias="PTM_TRIAGE_RUNTIME")
    abstain_label: str = Field(default="ptm: needs-triage", alias="PTM_TRIAGE_ABSTAIN_LABEL")
    label_prefix: str = Field(default="ptm", alias="PTM_TRIAGE_LABEL_PREFIX")
    max_body_bytes: int = Field(default=25 * 1024 * 1024, alias="PTM_TRIAGE_MAX_BODY_BYTES", gt=0)
    worker: Literal["inprocess", "off"] = Field(default="inprocess", alias="PTM_TRIAGE_WORKER")
    # Where stored deliveries wait for a worker: the deliveries table itself (the embedded default), or an
    # arq queue on Redis that `ptm-triage worker` processes take them from (scale-out; app.queue.redis_queue).
    queue: Literal["database", "redis"] = Field(default="database", alias="PTM_TRIAGE_QUEUE")
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", alias="PTM_TRIAGE_REDIS_URL")
    redis_queue_name: str = Field(default="ptm-triage:deliveries", alias="PTM_TRIAGE_REDIS_QUEUE", min_length=1)
    sweep_s: float = Field(default=5.0, alias="PTM_TRIAGE_SWEEP_S", gt=0)
    worker_poll_s: float = Field(default=5.0, alias="PTM_TRIAGE_WORKER_POLL_S", gt=0)
    worker_lease_s: float = Field(default=30.0, alias="PTM_TRIAGE_WORKER_LEASE_S", gt=0)
    worker_concurrency: int = Field(default=32, alias="PTM_TRIAGE_WORKER_CONCURRENCY", ge=1, le=1000)
    batch_size: int = Field(default=64, alias="PTM_TRIAGE_BATCH_SIZE", ge=1, le=4096)
    batch_wait_ms: float = Field(default=10.0, alias="PTM_TRIAGE_BATCH_WAIT_MS", ge=0, le=1000)
    worker_max_attempts: int = Field(default=5, alias="PTM_TRIAGE_WORKER_MAX_ATTEMPTS", ge=1)
    delivery_retention_days: float = Field(default=30.0, alias="PTM_TRIAGE_DELIVERY_RETENTION_DAYS", gt=0)
    log_level: str = Field(default="INFO", alias="PTM_TRIAGE_LOG_LEVEL")
    log_format: Literal["text", "json"] = Field(default="text", alias="PTM_TRIAGE_LOG_FORMAT")
    # Who may read what (app.web.access): sign-in through the App's OAuth web flow, operators' API tokens.
    github_client_id: str | None = Field(default=None, alias="GITHUB_CLIENT_ID")
    github_client_secret: SecretStr | None = Field(default=None, alias="GITHUB_CLIENT_SECRET")
    github_web_url: str = Field(default="https://github.com", alias="GITHUB_WEB_URL")
    public_repositories: bool = Field(default=True, alias="PTM_TRIAGE_PUBLIC_REPOSITORIES")
    session_secret: SecretStr | None = Field(default=None, alias="PTM_TRIAGE_SESSION_SECRET")
    session_hours: float = Field(default=8.0, alias="PTM_TRIAGE_SESSION_HOURS", gt=0)

    @field_validator("github_api_url", "github_web_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"must be a redis://, rediss:// or unix:// URL, got {value!r}")
        return value

    @field_validator("model_kind")
    @classmethod
    def _model_kind(cls, value: str) -> str:
        from app.triage.registry import check_kind

        return check_kind(value)

    @field_validator("abstain_label")
    @classmethod
    def _label_length(cls, value: str) -> str:
        if not 0 < len(value) <= 50:
            raise ValueError("PTM_TRIAGE_ABSTAIN_LABEL must be 1 to 50 characters (GitHub's limit)")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> Settings:
        if self.github_private_key and self.github_private_key_path:
            raise ValueError("set GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH, not both")
        if self.github_private_key_path and not self.github_private_key_path.is_file():
            raise ValueError(f"GITHUB_PRIVATE_KEY_PATH: no such file: {self.github_private_key_path}")
        has_key = bool(self.github_private_key or self.github_private_key_path)
        if has_key and self.github_app_id is None:
            raise ValueError("a GitHub private key is set but GITHUB_APP_ID is not")
        if self.github_app_id is not None and not has_key:
            raise ValueError("GITHUB_APP_ID is set but neither GITHUB_PRIVATE_KEY nor GITHUB_PRIVATE_KEY_PATH")
        if has_key:
            from app.github.auth import load_rsa_private_key

            load_rsa_private_key(self.private_key_pem())
        return self

    @property
    def has_github_credentials(self) -> bool:
        return self.github_app_id is not None

    @property
    def effective_dry_run(self) -> bool:
        """Dry-run when asked, without credentials, or without a configured webhook secret."""
        return self.dry_run or not self.has_github_credentials or self.github_webhook_secret is None

    def private_key_pem(self) -> str:
        if self.github_private_key is not None:
            return self.github_private_key.get_secret_value().replace("\\n", "\n")
        if self.github_private_key_path is not None:
            return self.github_private_key_path.read_text()
        raise ConfigError("no GitHub private key configured (GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH)")

    @property
    def secret_file(self) -> Path:
        return self.data_dir / SECRET_FILE_NAME

    def make_local_secret(self) -> None:
        """Without ``GITHUB_WEBHOOK_SECRET``, make the local secret in the data directory unless
        it is there already (the service calls this at start-up; deliveries are signed with it)."""
        if self.github_webhook_secret is not None or self.secret_file.is_file():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.secret_file.write_text(secrets.token_hex(32) + "\n")
        self.secret_file.chmod(0o600)

    @cached_property
    def webhook_secret(self) -> str:
        """The configured secret, else the local one (``make_local_secret``)."""
        if self.github_webhook_secret is not None:
            return self.github_webhook_secret.get_secret_value()
        if not self.secret_file.is_file():
            raise ConfigError(f"no GITHUB_WEBHOOK_SECRET and no local secret in {self.secret_file.resolve()}; "
                              "start the service once (`ptm-triage serve`) or set GITHUB_WEBHOOK_SECRET")
        return self.secret_file.read_text().strip()

    @cached_property
    def secret_values(self) -> list[str]:
        """Every configured secret, for the log to leave out (``app.logs``); read once (the private key
        may be a file)."""
        values = [secret.get_secret_value() for secret in (self.github_webhook_secret, self.github_private_key,
                                                           self.github_client_secret, self.session_secret) if secret]
        if self.has_github_credentials:
            values += [line for line in self.private_key_pem().splitlines() if len(line) >= 16]
        return values

    @cached_property
    def session_key(self) -> str:
        """What signs the session cookie: ``PTM_TRIAGE_SESSION_SECRET``, else a key made once in the data
        directory (every receiver behind one load balancer needs the same: set the variable there)."""
        if self.session_secret is not None:
            return self.session_secret.get_secret_value()
        path = self.data_dir / SESSION_KEY_FILE_NAME
        if not path.is_file():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32) + "\n")
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgres://"):
                url = "postgresql://" + url[len("postgres://"):]
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://"):]
            return url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'ptm-triage.db').resolve()}"


def keep_hub_offline() -> None:
    """Base weights come from installed packages, never from the Hugging Face Hub (which
    reads ``HF_HUB_OFFLINE`` when it is imported): offline unless the environment says otherwise."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; a wrong one raises ``ConfigError`` naming it."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
