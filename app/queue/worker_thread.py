"""The embedded worker on an event loop of its own, in a thread of its own.

The loop that serves HTTP then only receives: an acknowledgement never waits behind a delivery's database
work, label writes or the batcher's bookkeeping, which otherwise run between its awaits. The model itself
already runs in a thread of the batcher's (``app.workflow.batching``); the backfill runner shares this loop
and its batcher.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from gidgethub.routing import Router

from app.queue.worker import DeliveryWorker, working
from app.services import Services

log = logging.getLogger(__name__)


class WorkerThread:
    def __init__(self, services: Services, router: Router) -> None:
        self.services = services.for_another_loop()
        self.router = router
        self._thread = threading.Thread(target=self._run, name="delivery-worker", daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._worker: DeliveryWorker | None = None
        self._failed: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._failed is not None:
            raise self._failed

    def notify(self) -> None:
        """A new delivery is stored (from any thread)."""
        if self._loop is not None and self._worker is not None:
            self._loop.call_soon_threadsafe(self._worker.notify)

    async def submit(self, delivery_id: str) -> None:
        self.notify()

    async def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            if self._ready.is_set():
                log.exception("the worker thread stopped with an error")
            else:  # it failed to start: start() raises it in the caller
                self._failed = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        try:
            async with working(self.services, self.router) as worker:
                self._worker, self._stopping = worker, asyncio.Event()
                self._loop = asyncio.get_running_loop()
                self._ready.set()
                await self._stopping.wait()
        finally:
            await self.services.aclose_loop_bound()
