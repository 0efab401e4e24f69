"""app.logs: one line per event, JSON on request, with the delivery, repository and issue, and no secret."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pytest

from app import logs
from tests.service_process import ServiceProcess, opened_payloads
from tests.waiting import wait_until

Capture = Callable[..., Callable[[], str]]


@pytest.fixture
def capture(capsys: pytest.CaptureFixture[str]) -> Iterator[Capture]:
    """``capture(fmt, secrets)``: ``logs.setup``'s handler alone on the root logger; returns a function
    giving what it wrote to stderr."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = []  # these tests log secrets on purpose: only the handler under test sees them

    def start(fmt: Literal["text", "json"], secrets: tuple[str, ...] = ()) -> Callable[[], str]:
        logs.setup("INFO", fmt, secrets)
        capsys.readouterr()
        return lambda: capsys.readouterr().err

    try:
        yield start
    finally:
        root.handlers[:], root.level = saved


def test_json_lines_carry_the_delivery_repository_and_issue_into_worker_threads(capture: Capture) -> None:
    captured = capture("json")
    log = logging.getLogger("app.test")

    async def handle() -> None:
        with logs.about(delivery_id="d-1"):
            log.info("stored")
            logs.note(repository="octo-org/models", issue=7)
            await asyncio.to_thread(log.info, "classified %d issue", 1)
        log.info("between deliveries")

    asyncio.run(handle())
    lines = [json.loads(line) for line in captured().splitlines()]
    assert [line["message"] for line in lines] == ["stored", "classified 1 issue", "between deliveries"]
    assert [(x["delivery_id"], x["repository"], x["issue"]) for x in lines] == [
        ("d-1", None, None), ("d-1", "octo-org/models", 7), (None, None, None)]
    assert {"time", "level", "logger"} <= set(lines[0]) and lines[0]["level"] == "INFO"


def test_text_lines_name_their_context(capture: Capture) -> None:
    captured = capture("text")
    with logs.about(delivery_id="d-2", repository="octo-org/models", issue=3):
        logging.getLogger("app.test").warning("label write failed")
    line = captured().strip()
    assert line.endswith("WARNING app.test [delivery_id=d-2 repository=octo-org/models issue=3]: label write failed")


def test_secrets_and_token_shapes_are_redacted_in_messages_and_tracebacks(capture: Capture) -> None:
    captured = capture("json", ("webhook-secret-123",))
    log = logging.getLogger("app.test")
    log.info("secret %s, installation token ghs_%s", "webhook-secret-123", "a" * 36)
    try:
        raise RuntimeError("GitHub said no to ghu_" + "B" * 36 + " and ptmt_" + "c" * 43)
    except RuntimeError:
        log.exception("failed")
    log.info("key -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- done")
    text = captured()
    for secret in ("webhook-secret-123", "ghs_aaaa", "ghu_BBBB", "ptmt_cccc", "MIIE"):
        assert secret not in text
    assert text.count(logs.REDACTED) == 5
    assert "RuntimeError" in text and "Traceback" in text


def test_the_suites_watch_finds_a_secret_in_a_log_record() -> None:
    """``tests.secret_watch`` (which fails the run when the suite's logs hold a secret) is not blind."""
    from tests import secret_watch

    found = len(secret_watch.FOUND)
    secret_watch.register("watched-secret-42")
    logging.getLogger("app.test").warning("about to leak watched-secret-42")
    logging.getLogger("app.test").info("and a token ghs_" + "z" * 36)
    assert len(secret_watch.FOUND) == found + 2
    del secret_watch.FOUND[found:]
    secret_watch.SECRETS.discard("watched-secret-42")


def test_the_service_logs_json_lines_naming_each_delivery(tmp_path: Path) -> None:
    service = ServiceProcess(tmp_path, {"PTM_TRIAGE_LOG_FORMAT": "json"})
    service.start()
    try:
        for delivery, body in opened_payloads(2):
            assert service.send(delivery, body) == 202
        wait_until(lambda: service.deliveries().get("done") == 2, "both deliveries done")
    finally:
        service.stop()
    lines = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines()]
    assert {line["logger"] for line in lines} >= {"app.web.main", "uvicorn.error"}
    labelled = [line for line in lines if line["logger"] == "app.workflow.labelling"]
    assert [(x["delivery_id"], x["repository"], x["issue"]) for x in labelled] == [
        ("kill-test-1", "Codertocat/Hello-World", 1), ("kill-test-2", "Codertocat/Hello-World", 2)]
