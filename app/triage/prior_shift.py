"""Probabilities made at one PTM share, moved to another, and a repository's share estimated.

A calibrated model's probabilities hold at the share of PTM-related issues it was
trained on (57% here); a repository may have 5% or 80%. ``correct_prior`` moves a
probability to another share by Bayes' rule on the odds; ``estimate_share`` finds a
repository's share from its own issues' probabilities with the EM re-estimation of
Saerens, Latinne and Decaestecker (2002), "Adjusting the outputs of a classifier to new
a priori probabilities": alternately move every probability to the current estimate and
take their mean as the next estimate. Issues whose labels a person set count as known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import numpy as np

SHARE_BOUNDS = (0.005, 0.995)
"""An estimate never leaves these bounds: a share of exactly 0 or 1 cannot be moved from again."""


@overload
def correct_prior(p: np.ndarray, share: float, train_share: float) -> np.ndarray: ...
@overload
def correct_prior(p: float, share: float, train_share: float) -> float: ...
def correct_prior(p: np.ndarray | float, share: float, train_share: float) -> np.ndarray | float:
    """Bayes' rule on the odds: move probabilities made at ``train_share`` to ``share``."""
    for name, value in (("share", share), ("train_share", train_share)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must be strictly between 0 and 1, got {value}")
    r1, r0 = share / train_share, (1.0 - share) / (1.0 - train_share)
    return p * r1 / (p * r1 + (1.0 - p) * r0)


def estimate_share(p: Sequence[float] | np.ndarray, train_share: float, *, known: Sequence[bool | None] = (),
                   start: float | None = None, max_iter: int = 200, tol: float = 1e-6) -> float:
    """The share of PTM-related issues among those scored ``p`` (probabilities at ``train_share``).

    ``known`` (aligned with ``p``, or empty) gives the issues whose class a person set:
    True or False count as they are, None as estimated. ``start`` is the first estimate
    (default: the training share).
    """
    scores = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    if scores.size == 0:
        raise ValueError("no probabilities to estimate a share from")
    fixed = np.array([np.nan if k is None else float(k) for k in known], dtype=np.float64) if len(known) else None
    if fixed is not None and fixed.shape != scores.shape:
        raise ValueError(f"known has {fixed.size} entries for {scores.size} probabilities")
    share = float(np.clip(start if start is not None else train_share, *SHARE_BOUNDS))
    for _ in range(max_iter):
        posterior = correct_prior(scores, share, train_share)
        if fixed is not None:
            posterior = np.where(np.isnan(fixed), posterior, fixed)
        new = float(np.clip(np.mean(posterior), *SHARE_BOUNDS))
        if abs(new - share) < tol:
            return new
        share = new
    return share


def expected_calibration_error(p: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """Mean gap between predicted probability and observed frequency, over ``bins`` equal-width bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    error = sum(abs(p[index == b].mean() - truth[index == b].mean()) * (index == b).sum()
                for b in range(bins) if (index == b).any())
    return round(float(error / len(p)), 4)
