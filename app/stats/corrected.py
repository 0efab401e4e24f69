"""PTM vs non-PTM resolution times corrected for the classifier's mistakes.

Counting closed issues by their predicted label shrinks every difference toward zero: a
PTM issue the model misses carries its long resolution time into the non-PTM group, and a
false positive carries a short one into the PTM group. The correction uses each issue's
PTM probability ``p`` instead of its label. When ``p`` is calibrated (of the issues scored
``p``, a share ``p`` is PTM-related), an issue's expected resolution time is
``mu_non + p * (mu_ptm - mu_non)``, so the least-squares line of resolution time on ``p``
has intercept ``mu_non`` and slope ``mu_ptm - mu_non``, whatever the mix. The same line
fitted to the indicator "resolved within s days" gives both groups' distribution functions
at ``s``, and from them the medians. Issues whose labels a person set have ``p`` 0 or 1.

"PTM issues take longer" is tested the way the uncorrected comparison tests it, on ranks:
the line of each issue's mid-rank on ``p`` has a slope of the difference of the groups'
mean ranks (Mann-Whitney's U, up to scale), which the long tail of resolution times cannot
dominate. ``p_greater`` is one-sided, from that slope and its bootstrap standard error.
The 95% interval of the difference of means is the estimate plus or minus 1.96 bootstrap
standard errors (a Poisson bootstrap over issues, seeded, so the same data give the same
figures); in the simulation study (``benchmarks/corrected_stats.py``) it covered the true
difference more often than the percentile interval of the same replicates did.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np
from scipy.stats import rankdata

from app.stats.results import Corrected

METHOD = (
    "least squares of resolution days (and of 'resolved within s days') on each issue's calibrated "
    "PTM probability; one-sided test on mid-ranks; 95% interval from Poisson-bootstrap standard errors"
)
MIN_EXPECTED = 3.0
"""Expected closed issues (sum of probabilities) each group needs before anything is estimated."""
MIN_SPREAD = 0.01
"""Variance the probabilities need: when every issue is scored alike the groups cannot be told apart."""
REPLICATES = 1000
BOOTSTRAP_SAMPLE = 4000
"""Above this many issues the bootstrap runs on a seeded sample of this size and its standard
errors are scaled by sqrt(sample / n) (the slopes are means of per-issue terms, so their error
falls as 1/sqrt(n)): a repository of 100,000 issues costs what one of 4,000 does."""
SEED = 0


def corrected_comparison(days: Sequence[float], probabilities: Sequence[float], *,
                         replicates: int = REPLICATES, seed: int = SEED) -> Corrected:
    """The corrected comparison of closed issues' resolution ``days`` given their PTM ``probabilities``."""
    t = np.asarray(days, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError(f"{len(t)} resolution times but {len(p)} probabilities")
    if p.size and (p.min() < 0.0 or p.max() > 1.0 or not np.isfinite(p).all()):
        raise ValueError("PTM probabilities must lie in [0, 1]")
    order = np.lexsort((p, t))  # the same issues in any order give the same figures
    t, p = t[order], p[order]
    expected_ptm, expected_non = float(p.sum()), float((1.0 - p).sum())
    if min(expected_ptm, expected_non) < MIN_EXPECTED:
        return without_correction(len(t), (
            f"too few closed issues: about {expected_ptm:.1f} PTM and {expected_non:.1f} non-PTM expected "
            f"(need at least {MIN_EXPECTED:.0f} each)"
        ))
    if float(p.var()) < MIN_SPREAD:
        return without_correction(len(t), "the PTM probabilities barely vary, so the two groups cannot be told apart")
    result = _empty(len(t))
    intercept, slope = _line(p, t)
    medians = _medians(p, t)
    result["ptm"] = {"mean": intercept + slope, "median": medians[0]}
    result["non_ptm"] = {"mean": intercept, "median": medians[1]}
    ranks = rankdata(t) / len(t)
    sample, scale = np.arange(len(t)), 1.0
    if len(t) > BOOTSTRAP_SAMPLE:
        sample = np.sort(np.random.default_rng(seed).choice(len(t), BOOTSTRAP_SAMPLE, replace=False))
        scale = math.sqrt(BOOTSTRAP_SAMPLE / len(t))
    mean_boot, rank_boot = _bootstrap(p[sample], t[sample], ranks[sample], replicates, seed)
    error = 1.96 * scale * float(np.std(mean_boot, ddof=1))
    result["difference_days"] = {"mean": slope, "ci95": [slope - error, slope + error]}
    rank_slope = _line(p, ranks)[1]
    spread = scale * float(np.std(rank_boot, ddof=1))
    if spread > 0:
        result["p_greater"] = 1.0 - NormalDist().cdf(rank_slope / spread)
    else:
        result["p_greater"] = 0.0 if rank_slope > 0 else 1.0
    return result


def without_correction(n: int, reason: str) -> Corrected:
    """The result that says, in words, why nothing was estimated."""
    return {**_empty(n), "reason": reason}


def _empty(n: int) -> Corrected:
    return {
        "n": n,
        "ptm": {"mean": None, "median": None},
        "non_ptm": {"mean": None, "median": None},
        "difference_days": {"mean": None, "ci95": None},
        "p_greater": None,
        "method": METHOD,
        "reason": None,
    }


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of the least-squares line of ``y`` on ``x``."""
    dx = x - x.mean()
    slope = float(dx @ (y - y.mean()) / (dx @ dx))
    return float(y.mean() - slope * x.mean()), slope


def _medians(p: np.ndarray, t: np.ndarray) -> tuple[float | None, float | None]:
    """PTM and non-PTM medians from the distribution functions the probabilities give.

    At each distinct time ``s`` the line of ``1[t <= s]`` on ``p`` comes from running sums over
    the sorted times; the estimates are clipped to [0, 1] and made non-decreasing in ``s``.
    """
    order = np.argsort(t, kind="stable")
    t_sorted, p_sorted = t[order], p[order]
    values, counts = np.unique(t_sorted, return_counts=True)
    ends = np.cumsum(counts) - 1
    within = (ends + 1) / len(t)  # mean of the indicator at each distinct time
    p_within = np.cumsum(p_sorted)[ends] / len(t)  # mean of p * indicator
    p_mean, p_var = float(p.mean()), float(p.var())
    slope = (p_within - p_mean * within) / p_var
    non = np.maximum.accumulate(np.clip(within - slope * p_mean, 0.0, 1.0))
    ptm = np.maximum.accumulate(np.clip(within + slope * (1.0 - p_mean), 0.0, 1.0))
    return _first_at_half(values, ptm), _first_at_half(values, non)


def _first_at_half(values: np.ndarray, cdf: np.ndarray) -> float | None:
    reached = np.flatnonzero(cdf >= 0.5)
    return float(values[reached[0]]) if reached.size else None


def _bootstrap(p: np.ndarray, t: np.ndarray, ranks: np.ndarray, replicates: int,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Slopes of days and of ranks on ``p`` under Poisson(1) weights, ``replicates`` of each."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(replicates, 2_000_000 // max(len(p), 1)))
    days_slopes, rank_slopes = [], []
    columns = np.stack([np.ones_like(p), p, p * p, t, p * t, ranks, p * ranks], axis=1)
    done = 0
    while done < replicates:
        size = min(chunk, replicates - done)
        weights = rng.poisson(1.0, size=(size, len(p))).astype(np.float64)
        s_w, s_p, s_pp, s_t, s_pt, s_r, s_pr = (weights @ columns).T
        spread = s_w * s_pp - s_p * s_p
        spread = np.where(spread > 0, spread, math.nan)
        days_slopes.append((s_w * s_pt - s_p * s_t) / spread)
        rank_slopes.append((s_w * s_pr - s_p * s_r) / spread)
        done += size
    days, ranks_out = np.concatenate(days_slopes), np.concatenate(rank_slopes)
    keep = np.isfinite(days)
    return days[keep], ranks_out[keep]
