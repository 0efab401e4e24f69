"""The container image as the Dockerfile describes it (no Docker engine runs here to build it)."""

from __future__ import annotations

from pathlib import Path

DOCKERFILE = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def test_the_service_runs_as_a_user_of_its_own_and_says_whether_it_is_healthy() -> None:
    users = instructions("USER")
    assert users and users[-1].strip() not in ("root", "0")
    assert "/healthz" in " ".join(instructions("HEALTHCHECK"))
    assert any("scripts/setup.sh" in step for step in instructions("RUN")), "the README's install step"
