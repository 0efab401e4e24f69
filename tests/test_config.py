"""Configuration from the environment: defaults, clear errors, the local webhook secret."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_the_embedded_ones(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PTM_TRIAGE_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.github_api_url == "https://api.github.com"
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path.resolve() / 'ptm-triage.db'}"
    assert settings.effective_dry_run, "no credentials means dry-run"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GITHUB_APP_ID": "twelve"}, "GITHUB_APP_ID"),
        ({"GITHUB_APP_ID": "12"}, "neither GITHUB_PRIVATE_KEY nor GITHUB_PRIVATE_KEY_PATH"),
        ({"GITHUB_PRIVATE_KEY": "x"}, "GITHUB_APP_ID is not"),
        ({"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY_PATH": "/nonexistent/key.pem"}, "no such file"),
        ({"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": "-----BEGIN NOTHING-----"}, "not a valid unencrypted RSA"),
        ({"GITHUB_API_URL": "api.github.com"}, "GITHUB_API_URL"),
        ({"PTM_TRIAGE_DRY_RUN": "perhaps"}, "PTM_TRIAGE_DRY_RUN"),
        ({"PTM_TRIAGE_ABSTAIN_LABEL": "x" * 51}, "50 characters"),
        ({"PTM_TRIAGE_MODEL": "gpt"}, "unknown model kind 'gpt'"),
        ({"PTM_TRIAGE_DEVICE": "tpu"}, "PTM_TRIAGE_DEVICE"),
        ({"PTM_TRIAGE_RUNTIME": "tensorrt"}, "PTM_TRIAGE_RUNTIME"),
    ],
)
def test_wrong_settings_name_the_problem(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_postgres_urls_use_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db:5432/triage")
    assert load_settings().sqlalchemy_url == "postgresql+psycopg://u@db:5432/triage"


def test_without_a_secret_a_local_one_is_made_and_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PTM_TRIAGE_DATA_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="no GITHUB_WEBHOOK_SECRET and no local secret"):
        load_settings().webhook_secret  # noqa: B018 - nothing is made by reading it
    load_settings().make_local_secret()
    first = load_settings().webhook_secret
    assert len(first) == 64 and (tmp_path / "webhook-secret").stat().st_mode & 0o077 == 0
    load_settings().make_local_secret()
    assert load_settings().webhook_secret == first


def test_a_configured_secret_without_credentials_is_still_dry_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "s3cret")
    settings = load_settings()
    assert settings.webhook_secret == "s3cret" and settings.effective_dry_run


def test_manifest_asks_for_the_least_the_app_needs() -> None:
    manifest = yaml.safe_load((ROOT / "app.yml").read_text())
    assert {"name", "description", "url", "hook_attributes", "default_events", "default_permissions"} <= set(manifest)
    assert manifest["default_permissions"] == {"metadata": "read", "contents": "read", "issues": "write"}
    from app.events import router

    handled = {event for event in {**router._shallow_routes, **router._deep_routes}}
    assert set(manifest["default_events"]) <= handled
    assert "installation" not in manifest["default_events"], "installation events reach every app unasked"
