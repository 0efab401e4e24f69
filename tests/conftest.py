"""Shared fixtures: settings, databases (SQLite and PostgreSQL, both for real) and paths."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from app.config import Settings

pytest_plugins = ["tests.secret_watch", "tests.conftest_github", "tests.e2e", "tests.private_postgres"]

SHARED = Path(os.environ.get("PTM_TRIAGE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
WEBHOOK_EXAMPLES = SHARED / "github-webhooks"
# PostgreSQL runs on every developer's and CI's machine; set this empty to leave it out on purpose.
POSTGRES_URL = os.environ.get("PTM_TRIAGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

ENV_NAMES = [
    "GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "GITHUB_PRIVATE_KEY_PATH", "GITHUB_WEBHOOK_SECRET",
    "GITHUB_API_URL", "DATABASE_URL", "PTM_TRIAGE_DRY_RUN", "PTM_TRIAGE_DATA_DIR", "PTM_TRIAGE_MODEL",
    "PTM_TRIAGE_WORKER",
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def _engine(url: str) -> Engine:
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")


def reset_postgres(url: str) -> None:
    engine = _engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test run's own on the configured server, dropped at the end, so that
    two runs at once (a developer's and CI's) never reset each other's tables."""
    if not POSTGRES_URL:
        pytest.skip("PTM_TRIAGE_TEST_POSTGRES_URL is set empty: PostgreSQL left out")
    server = make_url(POSTGRES_URL)
    name = f"{server.database or 'test'}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = _engine(POSTGRES_URL)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ptm-triage.db'}"
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return url


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**fields: object) -> Settings:
        fields.setdefault("data_dir", tmp_path / "data")
        fields.setdefault("database_url", f"sqlite:///{tmp_path / 'ptm-triage.db'}")
        fields.setdefault("worker_poll_s", 0.2)
        return Settings(_env_file=None, **fields)

    return make
