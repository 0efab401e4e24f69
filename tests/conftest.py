"""Shared fixtures: settings, databases (SQLite and PostgreSQL, both for real) and paths."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.config import Settings

pytest_plugins = ["tests.conftest_github", "tests.e2e"]

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


def reset_postgres(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ptm-triage.db'}"
    if not POSTGRES_URL:
        pytest.skip("PTM_TRIAGE_TEST_POSTGRES_URL is set empty: PostgreSQL left out")
    reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**fields: object) -> Settings:
        fields.setdefault("data_dir", tmp_path / "data")
        fields.setdefault("database_url", f"sqlite:///{tmp_path / 'ptm-triage.db'}")
        fields.setdefault("worker_poll_s", 0.2)
        return Settings(_env_file=None, **fields)

    return make
