"""One classifier call for the issues of many deliveries at once.

The worker works on several deliveries together (``app.queue.worker``); each asks for its issue's
prediction here. The first request of a batch waits at most ``max_wait_s`` (a few milliseconds) for
others, or until ``max_batch`` texts are waiting, and then all of them go to the model in one call
(length-grouped batches on CPU, fp16 on CUDA: ``app.triage.bert``). While the model works, new
requests gather for the next call, so a busy worker fills its batches and a lone delivery waits no
longer than ``max_wait_s``. The backfill asks here too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.triage.classifier import IssueText, Prediction

Observe = Callable[[int, float], None]


def _ignore(size: int, seconds: float) -> None:
    """The hook when nobody counts batches."""


@dataclass
class _Request:
    texts: list[IssueText]
    answer: asyncio.Future[list[Prediction]]


@dataclass
class ClassifyBatcher:
    predict: Callable[[list[IssueText]], list[Prediction]]
    max_batch: int = 64
    max_wait_s: float = 0.01
    observe: Observe = _ignore  # (batch size, seconds the model took)
    _waiting: list[_Request] = field(default_factory=list)
    _running: asyncio.Task[None] | None = None
    _wake: asyncio.Event | None = None

    async def classify(self, texts: Sequence[IssueText]) -> list[Prediction]:
        if not texts:
            return []
        request = _Request(list(texts), asyncio.get_running_loop().create_future())
        self._waiting.append(request)
        if self._running is None or self._running.done():
            self._wake = asyncio.Event()
            self._running = asyncio.create_task(self._run(), name="classify-batches")
        elif self._wake is not None and self._size() >= self.max_batch:
            self._wake.set()
        return await request.answer

    def _size(self) -> int:
        return sum(len(r.texts) for r in self._waiting)

    async def _run(self) -> None:
        """Batches, one after the other, until nobody waits."""
        while self._waiting:
            if self._size() < self.max_batch and self._wake is not None:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.max_wait_s)
                except TimeoutError:
                    pass
            taken, self._waiting = self._take()
            texts = [text for request in taken for text in request.texts]
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                predictions = await asyncio.to_thread(self.predict, texts)
            except Exception as error:  # every caller of the batch hears of it
                for request in taken:
                    if not request.answer.done():
                        request.answer.set_exception(error)
                continue
            self.observe(len(texts), loop.time() - started)
            start = 0
            for request in taken:
                if not request.answer.done():  # its caller may have been cancelled meanwhile
                    request.answer.set_result(predictions[start: start + len(request.texts)])
                start += len(request.texts)

    def _take(self) -> tuple[list[_Request], list[_Request]]:
        """Whole requests up to ``max_batch`` texts (at least one request), and the rest."""
        taken: list[_Request] = []
        size = 0
        for n, request in enumerate(self._waiting):
            if taken and size + len(request.texts) > self.max_batch:
                return taken, self._waiting[n:]
            taken.append(request)
            size += len(request.texts)
        return taken, []
