"""The service's log: one line per event, plain text or JSON (``PTM_TRIAGE_LOG_FORMAT``), each line
carrying the delivery, repository and issue it is about, and never a secret.

The worker opens ``about(delivery=…)`` around each delivery and the handlers add the repository and
the issue with ``note(…)``; the values are context variables, so they follow the work into the
classifier's thread. Whatever is logged passes ``Redact``: the configured secrets and anything shaped
like a GitHub token, an API token or a private key are replaced before a line is written.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

CONTEXT = ("delivery_id", "repository", "issue")
_context: dict[str, ContextVar[Any]] = {name: ContextVar(name, default=None) for name in CONTEXT}

# GitHub's token prefixes (installation ghs_, user ghu_, OAuth gho_, refresh ghr_, personal ghp_ / github_pat_),
# the app's API tokens, and PEM blocks.
TOKEN_SHAPES = re.compile(
    r"\b(?:gh[spuor]_[A-Za-z0-9]{16,}|github_pat_\w{20,}|ptmt_[\w-]{16,})"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL)
REDACTED = "[redacted]"


@contextmanager
def about(**values: Any) -> Iterator[None]:
    """Log lines within the block carry these values (and those ``note`` adds); all are reset after."""
    tokens = {name: var.set(values.get(name)) for name, var in _context.items()}
    try:
        yield
    finally:
        for name, token in tokens.items():
            _context[name].reset(token)


def note(**values: Any) -> None:
    """Add to what the current ``about`` block's lines carry (the repository and issue, once known)."""
    for name, value in values.items():
        _context[name].set(value)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return TOKEN_SHAPES.sub(REDACTED, text)


class Redact(logging.Filter):
    """Puts the context on every record and takes secrets out of its message and traceback."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _context.items():
            setattr(record, name, var.get())
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = redact(message, self.secrets), None
        return True


class _Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(f"{name}={value}" for name in CONTEXT if (value := getattr(record, name, None)) is not None)
        record.context = f" [{context}]" if context else ""
        return super().format(record)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``setup`` installs (and replaces when called again). It writes to whatever
    ``sys.stderr`` is at the time, as logging's last-resort handler does."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """The stream is always the current ``sys.stderr``."""


def setup(level: str, fmt: Literal["text", "json"], secrets: Iterable[str] = ()) -> None:
    """The root logger's handler to stderr, for the service's loggers and uvicorn's alike."""
    handler = _Handler()
    handler.addFilter(Redact(secrets))
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(_Text("%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _Handler)] + [handler]
    root.setLevel(level.upper())
