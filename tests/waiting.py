"""Waiting for a condition, never for a time: how tests stay right on a busy machine.

A test that waits polls its condition and fails only after ``PATIENCE_S``, a bound far
above what any step needs even on a slow, loaded CI machine; when the condition holds
the test goes on at once, so the bound costs nothing but on a real failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

PATIENCE_S = 300.0
"""The longest a test waits for one condition (the longest real need is a few seconds)."""

HTTP_TIMEOUT_S = 120.0
"""Timeout of a test's own HTTP requests to a service on loopback."""


def wait_until(condition: Callable[[], T], what: str | Callable[[], str], timeout_s: float = PATIENCE_S,
               interval_s: float = 0.05) -> T:
    """Poll ``condition`` until it returns a true value, and return that value.

    Raises ``AssertionError`` naming ``what`` (a text, or a function giving one from the
    last state seen) when ``timeout_s`` passes first.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"not so after {timeout_s:.0f}s: {described}")
        time.sleep(interval_s)
