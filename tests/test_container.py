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


def test_the_compose_file_starts_postgres_redis_two_receivers_and_two_workers_on_one_queue() -> None:
    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[1] / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis"} <= set(services)
    app = {name: s for name, s in services.items() if s.get("build") == "."}
    workers = [name for name, s in app.items() if s.get("command", [])[-1:] == ["worker"]]
    receivers = [name for name, s in app.items() if "command" not in s]  # the image's CMD: serve
    assert len(workers) == 2 and len(receivers) == 2, (workers, receivers)
    environments = [s["environment"] for s in app.values()]
    assert all(e["PTM_TRIAGE_QUEUE"] == "redis" for e in environments)
    for shared in ("DATABASE_URL", "PTM_TRIAGE_REDIS_URL", "GITHUB_WEBHOOK_SECRET", "PTM_TRIAGE_SESSION_SECRET"):
        assert len({e[shared] for e in environments}) == 1, f"{shared} differs between the app's processes"
    assert environments[0]["DATABASE_URL"].startswith("postgresql://")
    assert "serve" in " ".join(instructions("CMD"))
