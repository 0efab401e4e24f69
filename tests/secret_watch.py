"""The whole suite's logs searched for the tests' secrets and tokens: one found fails the run.

Every log record made in the test process passes a handler on the root logger (the app's loggers log
at INFO for the run); the logs of services run as processes are searched when they stop
(``check_file``). A record is searched for the secrets the tests registered (webhook secrets, session
secrets, OAuth client secrets: ``register``) and for anything shaped like a token or a private key
(``app.logs.TOKEN_SHAPES``: installation and user tokens, API tokens, PEM blocks), before the app's
own redaction, so a secret the code logs is found even where the service's handler would hide it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.logs import TOKEN_SHAPES

SECRETS: set[str] = set()
FOUND: list[str] = []


def register(*secrets: str) -> None:
    SECRETS.update(s for s in secrets if s)


def check(text: str, where: str) -> None:
    shaped = TOKEN_SHAPES.search(text)
    named = next((s for s in SECRETS if s in text), None)
    if shaped or named:
        what = shaped.group(0)[:12] if shaped else f"the registered secret {named[:4]}…"
        FOUND.append(f"{where}: {what}… in {text[:200]!r}")


def check_file(path: Path) -> None:
    if path.exists():
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            check(line, f"{path}:{n}")


class _Watch(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        check(text, f"log record of {record.name}")


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(_Watch())
    logging.getLogger("app").setLevel(logging.INFO)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if FOUND:
        print(f"\n{len(FOUND)} log lines with a secret or token:\n" + "\n".join(FOUND[:20]))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
