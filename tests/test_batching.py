from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from app.taxonomy import SUBTHEME_CODES, THEME_CODES
from app.triage.batching import DynamicBatcher
from app.triage.classifier import IssueText, Prediction
from tests.waiting import PATIENCE_S


class EchoClassifier:
    """Scores each text by its title's number; records the batches it was called with.

    With ``hold_first`` the first batch blocks, once it has begun (``started``), until the test
    sets ``release``: what arrives meanwhile is known to arrive during a running batch.
    """

    version = "echo@0"

    def __init__(self, fail_on: str | None = None, hold_first: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[int] = set()
        self.fail_on = fail_on
        self.hold_first = hold_first
        self.started = threading.Event()
        self.release = threading.Event()

    def predict(self, texts: Sequence[IssueText]) -> list[Prediction]:
        self.threads.add(threading.get_ident())
        self.batches.append([t.title for t in texts])
        if self.hold_first and len(self.batches) == 1:
            self.started.set()
            assert self.release.wait(PATIENCE_S), "the test never released the first batch"
        if self.fail_on is not None and any(t.title == self.fail_on for t in texts):
            raise ValueError(f"cannot score {self.fail_on}")
        return [_prediction(float(t.title) / 1000) for t in texts]


def _prediction(score: float) -> Prediction:
    return Prediction(
        ptm_score=score,
        theme_scores=dict.fromkeys(THEME_CODES, 0.0),
        subtheme_scores=dict.fromkeys(SUBTHEME_CODES, 0.0),
        ptm=score >= 0.5,
        themes=(),
        subthemes=(),
        model="echo@0",
    )


async def test_each_caller_gets_its_own_prediction() -> None:
    classifier = EchoClassifier()
    async with DynamicBatcher(classifier, max_batch=4, max_wait_ms=20) as batcher:
        results = await asyncio.gather(*(batcher.predict(IssueText(str(n))) for n in range(10)))
    assert [r.ptm_score for r in results] == [n / 1000 for n in range(10)]


async def test_concurrent_requests_are_batched_up_to_max_batch() -> None:
    classifier = EchoClassifier()
    async with DynamicBatcher(classifier, max_batch=4, max_wait_ms=50) as batcher:
        await asyncio.gather(*(batcher.predict(IssueText(str(n))) for n in range(10)))
    sizes = [len(b) for b in classifier.batches]
    assert sum(sizes) == 10
    assert max(sizes) == 4 and len(sizes) == 3
    assert threading.get_ident() not in classifier.threads  # ran in a worker thread


async def test_a_lone_request_is_not_held_for_a_full_batch() -> None:
    classifier = EchoClassifier()
    async with DynamicBatcher(classifier, max_batch=64, max_wait_ms=10) as batcher:
        result = await asyncio.wait_for(batcher.predict(IssueText("7")), timeout=PATIENCE_S)
    assert result.ptm_score == 0.007
    assert classifier.batches == [["7"]]


async def test_requests_arriving_during_a_batch_form_the_next_one() -> None:
    classifier = EchoClassifier(hold_first=True)
    async with DynamicBatcher(classifier, max_batch=8, max_wait_ms=1) as batcher:
        first = asyncio.ensure_future(batcher.predict(IssueText("1")))
        assert await asyncio.to_thread(classifier.started.wait, PATIENCE_S), "the first batch never ran"
        rest = [asyncio.ensure_future(batcher.predict(IssueText(str(n)))) for n in range(2, 6)]
        await asyncio.sleep(0)  # each of them is queued now
        classifier.release.set()
        results = await asyncio.gather(*rest)
        await first
    assert classifier.batches == [["1"], ["2", "3", "4", "5"]]
    assert [r.ptm_score for r in results] == [0.002, 0.003, 0.004, 0.005]


async def test_an_error_reaches_every_waiter_of_the_batch_and_only_them() -> None:
    classifier = EchoClassifier(fail_on="3")
    async with DynamicBatcher(classifier, max_batch=4, max_wait_ms=50) as batcher:
        results = await asyncio.gather(
            *(batcher.predict(IssueText(str(n))) for n in range(6)), return_exceptions=True
        )
        after = await batcher.predict(IssueText("9"))  # the batcher keeps serving
    assert all(isinstance(r, ValueError) and "cannot score 3" in str(r) for r in results[:4])
    assert [r.ptm_score for r in results[4:]] == [0.004, 0.005]
    assert after.ptm_score == 0.009


async def test_a_wrong_number_of_predictions_is_an_error() -> None:
    class Short(EchoClassifier):
        def predict(self, texts: Sequence[IssueText]) -> list[Prediction]:
            return super().predict(texts)[:-1]

    async with DynamicBatcher(Short(), max_batch=2, max_wait_ms=50) as batcher:
        results = await asyncio.gather(*(batcher.predict(IssueText(str(n))) for n in range(2)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_a_cancelled_caller_does_not_break_the_batch() -> None:
    classifier = EchoClassifier()
    async with DynamicBatcher(classifier, max_batch=4, max_wait_ms=30) as batcher:
        doomed = asyncio.ensure_future(batcher.predict(IssueText("1")))
        kept = asyncio.ensure_future(batcher.predict(IssueText("2")))
        await asyncio.sleep(0)
        doomed.cancel()
        assert (await kept).ptm_score == 0.002
    assert classifier.batches == [["2"]]


def test_invalid_settings() -> None:
    with pytest.raises(ValueError):
        DynamicBatcher(EchoClassifier(), max_batch=0)
    with pytest.raises(ValueError):
        DynamicBatcher(EchoClassifier(), max_wait_ms=-1)
