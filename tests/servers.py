"""Run ASGI apps on loopback ports in background threads, as real HTTP servers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from tests.waiting import PATIENCE_S, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(app: object, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL.

    Start-up (the app's lifespan: migrations, loading the model) and shutdown are waited
    for as long as they take; a server that dies on the way fails the test at once.
    """
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def started() -> bool:
        if not thread.is_alive():
            raise RuntimeError("server stopped before it started")
        return server.started

    wait_until(started, "server started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=PATIENCE_S)
        if thread.is_alive():
            raise RuntimeError(f"server still running {PATIENCE_S:.0f}s after it was asked to stop")
