"""Dynamic batching for serving: many concurrent ``predict(text)`` calls, few model calls.

Requests wait in a queue; a collector takes up to ``max_batch`` of them, waiting
at most ``max_wait_ms`` after the first, and runs one ``classifier.predict`` in a
worker thread (the event loop stays free). While a batch runs, new requests queue
up for the next one. A failing batch fails every request in it.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Self

from app.triage.classifier import Classifier, IssueText, Prediction

_Request = tuple[IssueText, "asyncio.Future[Prediction]"]


class DynamicBatcher:
    def __init__(
        self, classifier: Classifier, max_batch: int = 32, max_wait_ms: float = 5.0, executor: Executor | None = None
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_wait_ms < 0:
            raise ValueError("max_wait_ms must not be negative")
        self.classifier = classifier
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self._executor = executor
        self._queue: asyncio.Queue[_Request] | None = None
        self._collector: asyncio.Task[None] | None = None

    async def predict(self, text: IssueText) -> Prediction:
        loop = asyncio.get_running_loop()
        if self._collector is None or self._collector.done():
            self._queue = asyncio.Queue()
            self._collector = loop.create_task(self._collect())
        assert self._queue is not None
        future: asyncio.Future[Prediction] = loop.create_future()
        await self._queue.put((text, future))
        return await future

    async def aclose(self) -> None:
        """Stop collecting; requests still queued fail with ``RuntimeError``."""
        if self._collector is not None:
            self._collector.cancel()
            try:
                await self._collector
            except asyncio.CancelledError:
                pass
            self._collector = None
        while self._queue is not None and not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("batcher closed"))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _collect(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout=remaining))
                except TimeoutError:
                    break
            await self._run(batch)

    async def _run(self, batch: list[_Request]) -> None:
        live = [(text, future) for text, future in batch if not future.cancelled()]
        if not live:
            return
        texts = [text for text, _ in live]
        try:
            predictions = await asyncio.get_running_loop().run_in_executor(
                self._executor, self.classifier.predict, texts
            )
            if len(predictions) != len(texts):
                raise RuntimeError(f"classifier returned {len(predictions)} predictions for {len(texts)} texts")
        except Exception as exc:  # noqa: BLE001 - every waiter of this batch gets the error
            for _, future in live:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), prediction in zip(live, predictions, strict=True):
            if not future.done():
                future.set_result(prediction)
