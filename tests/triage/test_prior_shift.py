"""Moving probabilities between PTM shares, and estimating a repository's share (EM)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit

from app.triage.prior_shift import (
    correct_prior,
    estimate_share,
    expected_calibration_error,
)

TRAIN_SHARE = 0.57


def calibrated_sample(share: float, n: int, seed: int, separation: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Labels at ``share`` and probabilities a calibrated model trained at TRAIN_SHARE gives them.

    Scores are N(+-separation, 1) by class, so the likelihood ratio is exp(2 * separation * x)
    and the calibrated probability at TRAIN_SHARE is expit(2 * separation * x + logit(TRAIN_SHARE)).
    """
    rng = np.random.default_rng(seed)
    truth = rng.random(n) < share
    x = rng.normal(np.where(truth, separation, -separation), 1.0)
    return expit(2 * separation * x + logit(TRAIN_SHARE)), truth


@pytest.mark.parametrize("share", [0.05, 0.1, 0.3, 0.57, 0.8])
def test_em_finds_the_share_of_a_sample(share: float) -> None:
    estimates = [estimate_share(calibrated_sample(share, 400, seed)[0], TRAIN_SHARE) for seed in range(20)]
    assert np.mean(estimates) == pytest.approx(share, abs=0.02)
    assert np.std(estimates) < 0.04


def test_the_mean_probability_alone_is_biased_towards_the_training_share() -> None:
    p, _ = calibrated_sample(0.1, 2000, 0)
    assert p.mean() > 0.15 and estimate_share(p, TRAIN_SHARE) == pytest.approx(0.1, abs=0.02)


def test_moving_to_the_estimated_share_calibrates_the_probabilities() -> None:
    p, truth = calibrated_sample(0.1, 4000, 1)
    moved = correct_prior(p, estimate_share(p, TRAIN_SHARE), TRAIN_SHARE)
    assert expected_calibration_error(moved, truth) < 0.03 < expected_calibration_error(p, truth)


def test_known_labels_count_as_they_are() -> None:
    p = np.full(10, 0.5)
    assert estimate_share(p, 0.5, known=[True] * 10) == pytest.approx(0.995)  # bounded, never 1
    mixed = estimate_share(p, 0.5, known=[True, True, False, False, None, None, None, None, None, None])
    assert mixed == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ValueError, match="known has 2 entries for 10"):
        estimate_share(p, 0.5, known=[True, False])
    with pytest.raises(ValueError, match="no probabilities"):
        estimate_share([], 0.5)


def test_prior_correction_math() -> None:
    assert correct_prior(0.3, 0.6, 0.6) == pytest.approx(0.3)
    # p = 0.5 at a 60% training share, deployed at 20%: odds 1 * (0.2/0.8) / (0.6/0.4) = 1/6
    assert correct_prior(0.5, 0.2, 0.6) == pytest.approx(1 / 7)
    p = np.array([0.0, 0.25, 0.9, 1.0])
    corrected = correct_prior(p, 0.1, 0.5)
    odds = p[1:3] / (1 - p[1:3])
    np.testing.assert_allclose(corrected[1:3] / (1 - corrected[1:3]), odds * (0.1 / 0.9), rtol=1e-12)
    assert corrected[0] == 0.0 and corrected[3] == 1.0
    with pytest.raises(ValueError):
        correct_prior(0.5, 0.0, 0.6)
