"""Closed issues whose truth is known, scored by a classifier of known error: the test double
for the statistics corrected for misclassification (``app.stats.corrected``).

Each issue gets a calibrated PTM probability ``p`` drawn from Beta(share * k, (1 - share) * k),
then its true class with probability ``p``, so of the issues scored ``p`` a share ``p`` is
PTM-related, the property the correction assumes. A smaller ``k`` gives probabilities nearer
0 and 1 (a better classifier). The model's label is ``p >= 0.5``. Resolution days are whole
days of a lognormal whose median is ``NON_PTM_MEDIAN`` for non-PTM issues and ``factor`` times
it for PTM ones; ``true_difference`` is the difference of the two groups' mean whole days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.stats import mannwhitneyu

NON_PTM_MEDIAN = 8.0
SIGMA = 1.0


@dataclass(frozen=True)
class Simulated:
    days: np.ndarray
    truth: np.ndarray  # bool: PTM-related
    probability: np.ndarray  # the classifier's calibrated P(PTM)
    predicted: np.ndarray  # bool: the classifier's label

    def accuracy(self) -> float:
        return float((self.truth == self.predicted).mean())


def _whole_days(rng: np.random.Generator, median: float, size: int) -> np.ndarray:
    return np.floor(rng.lognormal(math.log(median), SIGMA, size))


def simulate(seed: int, n: int = 400, share: float = 0.3, factor: float = 2.0, k: float = 1.5) -> Simulated:
    rng = np.random.default_rng(seed)
    probability = rng.beta(share * k, (1.0 - share) * k, n)
    truth = rng.random(n) < probability
    days = np.where(truth, _whole_days(rng, NON_PTM_MEDIAN * factor, n), _whole_days(rng, NON_PTM_MEDIAN, n))
    return Simulated(days, truth, probability, probability >= 0.5)


@cache
def true_difference(factor: float) -> float:
    """PTM minus non-PTM mean whole days in the population (Monte Carlo on 4 million draws)."""
    rng = np.random.default_rng(12345)
    draws = 2_000_000
    return float(_whole_days(rng, NON_PTM_MEDIAN * factor, draws).mean() - _whole_days(rng, NON_PTM_MEDIAN, draws).mean())


def mann_whitney_p(days: np.ndarray, ptm: np.ndarray) -> float:
    """One-sided Mann-Whitney p (PTM longer) between the issues ``ptm`` marks and the rest."""
    if ptm.sum() < 3 or (~ptm).sum() < 3:
        return 1.0
    return float(mannwhitneyu(days[ptm], days[~ptm], alternative="greater").pvalue)
