"""The statistics corrected for misclassification: exact on certain labels, refusing what cannot
be estimated, and, where the truth is known, right about as often as a 95% interval should be."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from app.stats.corrected import corrected_comparison
from app.stats.resolution import ALPHA
from tests.misclassified_installation import mann_whitney_p, simulate, true_difference


def test_certain_labels_give_the_groups_own_means_and_medians() -> None:
    ptm, non_ptm = [3, 9, 20, 40, 41], [1, 2, 2, 5, 8, 13, 30]
    result = corrected_comparison(ptm + non_ptm, [1.0] * len(ptm) + [0.0] * len(non_ptm))
    assert result["ptm"]["mean"] == pytest.approx(statistics.fmean(ptm))
    assert result["non_ptm"]["mean"] == pytest.approx(statistics.fmean(non_ptm))
    assert (result["ptm"]["median"], result["non_ptm"]["median"]) == (20.0, 5.0)
    difference = result["difference_days"]
    assert difference["mean"] == pytest.approx(statistics.fmean(ptm) - statistics.fmean(non_ptm))
    assert difference["ci95"] is not None and difference["ci95"][0] < difference["mean"] < difference["ci95"][1]
    assert result["p_greater"] is not None and 0.0 < result["p_greater"] < 0.5
    assert result["n"] == 12 and result["reason"] is None


def test_same_data_in_any_order_same_figures() -> None:
    data = simulate(3, n=200)
    first = corrected_comparison(data.days, data.probability)
    assert corrected_comparison(data.days, data.probability) == first
    shuffled = np.random.default_rng(0).permutation(len(data.days))
    assert corrected_comparison(data.days[shuffled], data.probability[shuffled]) == first


def test_what_cannot_be_estimated_is_said_in_words() -> None:
    few = corrected_comparison([1, 2, 3, 4, 5], [0.9, 0.1, 0.2, 0.1, 0.3])
    assert few["reason"] is not None and few["reason"].startswith("too few closed issues")
    assert few["p_greater"] is None and few["difference_days"] == {"mean": None, "ci95": None}
    alike = corrected_comparison(list(range(40)), [0.5] * 40)
    assert alike["reason"] == "the PTM probabilities barely vary, so the two groups cannot be told apart"
    assert corrected_comparison([], [])["reason"] is not None


@pytest.mark.parametrize(("days", "probabilities", "message"), [
    ([1, 2], [0.5], "2 resolution times but 1 probabilities"),
    ([1, 2], [0.5, 1.5], r"must lie in \[0, 1\]"),
    ([1, 2], [0.5, float("nan")], r"must lie in \[0, 1\]"),
])
def test_bad_input_is_refused(days: list[int], probabilities: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        corrected_comparison(days, probabilities)


def test_the_correction_recovers_what_labels_shrink() -> None:
    """One large repository: the labelled difference is shrunk, the corrected one is not."""
    data = simulate(11, n=4000, share=0.3, factor=2.0, k=2.0)
    truth = true_difference(2.0)
    labelled = data.days[data.predicted].mean() - data.days[~data.predicted].mean()
    corrected = corrected_comparison(data.days, data.probability)["difference_days"]
    assert labelled < 0.85 * truth  # misclassification shrinks the labelled difference
    assert corrected["ci95"] is not None and corrected["ci95"][0] <= truth <= corrected["ci95"][1]


def test_simulation_coverage_and_verdicts() -> None:
    """Over many seeds (small: the benchmark runs the large study): the interval covers the true
    difference about 95% of the time, and the corrected verdict agrees with the one the true
    labels give more often than the labelled verdict does."""
    seeds, covered, agree_corrected, agree_labelled = 60, 0, 0, 0
    truth = true_difference(1.6)
    for seed in range(seeds):
        data = simulate(seed, n=300, share=0.3, factor=1.6, k=3.0)
        result = corrected_comparison(data.days, data.probability, replicates=200, seed=seed)
        low, high = result["difference_days"]["ci95"] or (np.inf, -np.inf)
        covered += low <= truth <= high
        true_verdict = mann_whitney_p(data.days, data.truth) < ALPHA
        agree_corrected += ((result["p_greater"] or 1.0) < ALPHA) == true_verdict
        agree_labelled += (mann_whitney_p(data.days, data.predicted) < ALPHA) == true_verdict
    assert 0.85 <= covered / seeds <= 1.0
    assert agree_corrected > agree_labelled


def test_a_large_repository_bootstraps_a_sample_with_the_same_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above ``BOOTSTRAP_SAMPLE`` issues the interval comes from a sample, scaled: about as wide as
    the interval of the bootstrap over every issue."""
    from app.stats import corrected

    data = simulate(5, n=12000, share=0.3, factor=1.5)
    sampled = corrected_comparison(data.days, data.probability)["difference_days"]
    monkeypatch.setattr(corrected, "BOOTSTRAP_SAMPLE", 100_000)
    full = corrected_comparison(data.days, data.probability)["difference_days"]
    assert sampled["mean"] == full["mean"]
    width = lambda d: d["ci95"][1] - d["ci95"][0]  # noqa: E731
    assert width(sampled) == pytest.approx(width(full), rel=0.15)
