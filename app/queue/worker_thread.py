"""The embedded worker on an event loop of its own, in a thread of its own.

The loop that serves HTTP then only receives: an acknowledgement never waits behind a delivery's database
work, label writes or the batcher's bookkeeping, which otherwise run between its awaits. The model itself
already runs in a thread of the batcher's (``app.workflow.batching``); the backfill runner shares this loop
and its batcher.
"""

from __future__ import annotations

import asyncio
import threading

from gidgethub.routing import Router

from app.queue.worker import DeliveryWorker
from app.services import Services
from app.workflow.backfill import BackfillRunner


class WorkerThread:
    def __init__(self, services: Services, router: Router) -> None:
        self.services = services.for_another_loop()
        self.router = router
        self._thread = threading.Thread(target=self._run, name="delivery-worker", daemon=True)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self.worker = DeliveryWorker(self.services, router)
        self._failed: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._failed is not None:
            raise self._failed

    def notify(self) -> None:
        """A new delivery is stored (from any thread)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.worker.notify)

    async def submit(self, delivery_id: str) -> None:
        self.notify()

    async def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        runner = BackfillRunner(self.services)
        try:
            await self.worker.start()
            await runner.start()
            self._stopping = asyncio.Event()
            self._loop = asyncio.get_running_loop()
        except BaseException as exc:
            self._failed = exc
            raise
        finally:
            self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await runner.stop()
            await self.worker.stop()
            await self.services.aclose_loop_bound()
