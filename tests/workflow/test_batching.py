"""app.workflow.batching: the texts of concurrent callers go to the model together, in order, bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from app.triage.classifier import IssueText, Prediction
from app.workflow.batching import ClassifyBatcher


def fake_model(calls: list[list[str]], fail_on: str | None = None) -> Callable[[list[IssueText]], list[Prediction]]:
    """Predicts a text's PTM score from its title's number, and records each call's titles."""

    def predict(texts: list[IssueText]) -> list[Prediction]:
        calls.append([t.title for t in texts])
        if fail_on is not None and fail_on in calls[-1]:
            raise RuntimeError("the model failed")
        return [Prediction(ptm_score=int(t.title.split()[-1]) / 1000, theme_scores={}, subtheme_scores={}, ptm=True,
                           themes=(), subthemes=(), model="fake") for t in texts]

    return predict


def text(n: int) -> IssueText:
    return IssueText(title=f"issue {n}", body="")


def test_concurrent_callers_share_one_model_call_and_each_gets_its_own_answers() -> None:
    calls: list[list[str]] = []
    batcher = ClassifyBatcher(fake_model(calls), max_batch=10, max_wait_s=3600)  # full batch: no waiting

    async def run() -> list[list[Prediction]]:
        return await asyncio.gather(*(batcher.classify([text(n)]) for n in range(10)))

    answers = asyncio.run(run())
    assert calls == [[f"issue {n}" for n in range(10)]]
    assert [a[0].ptm_score for a in answers] == [n / 1000 for n in range(10)]


def test_a_lone_caller_is_answered_after_the_bounded_wait() -> None:
    calls: list[list[str]] = []
    batcher = ClassifyBatcher(fake_model(calls), max_batch=64, max_wait_s=0.005)
    assert asyncio.run(batcher.classify([text(7)]))[0].ptm_score == 0.007
    assert calls == [["issue 7"]]


def test_batches_hold_whole_requests_up_to_the_size_and_keep_the_order() -> None:
    calls: list[list[str]] = []
    batcher = ClassifyBatcher(fake_model(calls), max_batch=4, max_wait_s=0.001)

    async def run() -> list[list[Prediction]]:
        return await asyncio.gather(*(batcher.classify([text(n), text(n + 100)]) for n in range(5)))

    answers = asyncio.run(run())
    assert all(len(call) <= 4 for call in calls) and sum(len(call) for call in calls) == 10
    assert [[p.ptm_score for p in a] for a in answers] == [[n / 1000, (n + 100) / 1000] for n in range(5)]


def test_a_failing_batch_fails_its_callers_only() -> None:
    calls: list[list[str]] = []
    batcher = ClassifyBatcher(fake_model(calls, fail_on="issue 1"), max_batch=2, max_wait_s=3600)

    async def run() -> list[object]:
        return await asyncio.gather(*(batcher.classify([text(n)]) for n in range(4)), return_exceptions=True)

    first, second, third, fourth = asyncio.run(run())
    assert isinstance(first, RuntimeError) and isinstance(second, RuntimeError)
    assert [p.ptm_score for p in third] == [0.002] and [p.ptm_score for p in fourth] == [0.003]  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):
        asyncio.run(ClassifyBatcher(fake_model([], fail_on="issue 5")).classify([text(5)]))
