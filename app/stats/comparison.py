"""The paper's balanced PTM vs non-PTM comparison (RQ2), as pure functions.

Per repository an equal number of closed PTM and closed non-PTM issues is
sampled: as many as the smaller group has, the larger group reduced to match
(the paper's stratified sampling). Repositories where either group has no
closed issue are left out, with the reason. The sample of a repository depends
only on ``seed``, the repository's name and its issues, never on which other
repositories are present, so filtering by ``repo`` gives the same sample.

On the balanced sample, pooled across repositories (as the paper pooled its 27
projects) and per repository:

- a chi-square test of independence of issue types between the two groups
  (``scipy.stats.chi2_contingency`` with its defaults, i.e. Yates' correction
  on a 2×2 table) on the types present; issues of unknown type are left out of
  the table and counted. ``comparable`` is True when p ≥ ``ALPHA``.
- the one-sided Mann-Whitney U test with Cliff's delta
  (:func:`app.stats.resolution.mann_whitney`),
- the Kruskal-Wallis H test across the themes of the balanced PTM issues
  (:func:`app.stats.resolution.kruskal_wallis`) with epsilon-squared,
- DESC blocks per group, theme and sub-theme.

Everything returned is JSON-ready: no NaN, no numpy types.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from scipy import stats as scipy_stats

from app.stats.resolution import (
    ALPHA,
    IssueRecord,
    describe,
    kruskal_wallis,
    mann_whitney,
)
from app.stats.results import Balanced, ChiSquare, ComparisonGroup
from app.taxonomy import SUBTHEME_CODES, THEME_CODES

MIN_EXPECTED = 5
"""Cochran's rule: chi-square is unreliable when over 20% of cells expect fewer than this."""

COMPARABLE = "groups comparable (p ≥ 0.05)"
DIFFERS = "type mix differs (p < 0.05)"


def epsilon_squared(h: float | None, n: int) -> float | None:
    """Kruskal-Wallis effect size ε² = H / ((n² − 1) / (n + 1)), None when undefined."""
    if h is None or n < 2:
        return None
    return h * (n + 1) / (n * n - 1)


def balanced_sample(ptm: Sequence[IssueRecord], non_ptm: Sequence[IssueRecord],
                    rng: random.Random) -> tuple[list[IssueRecord], list[IssueRecord]]:
    """Equal-sized random subsets of two groups of closed issues, each in issue order."""
    size = min(len(ptm), len(non_ptm))
    return _subset(ptm, size, rng), _subset(non_ptm, size, rng)


def _subset(records: Sequence[IssueRecord], size: int, rng: random.Random) -> list[IssueRecord]:
    ordered = sorted(records, key=_order)
    return sorted(rng.sample(ordered, size), key=_order)


def _order(record: IssueRecord) -> tuple[int, Any, Any]:
    return record.number, record.created, record.closed


def type_mix(records: Iterable[IssueRecord]) -> dict[str, int]:
    """Known issue types and their counts, sorted by type."""
    counts = Counter(r.type for r in records if r.type is not None)
    return dict(sorted(counts.items()))


def chi_square(ptm: Sequence[IssueRecord], non_ptm: Sequence[IssueRecord]) -> ChiSquare:
    """Chi-square test of independence of issue type and group, on the types present."""
    mix = {"ptm": type_mix(ptm), "non_ptm": type_mix(non_ptm)}
    types = sorted(set(mix["ptm"]) | set(mix["non_ptm"]))
    unknown = sum(r.type is None for r in (*ptm, *non_ptm))
    result: ChiSquare = {
        "chi2": None, "p": None, "dof": None, "comparable": None, "verdict": None,
        "types": types, "n": len(ptm) + len(non_ptm) - unknown, "excluded_unknown_type": unknown,
        "reason": None, "warning": None,
    }
    warnings = [f"{unknown} issue(s) of unknown type left out of the table"] if unknown else []
    result["reason"] = _chi_square_obstacle(mix, types)
    if result["reason"] is None:
        table = [[mix[group].get(t, 0) for t in types] for group in ("ptm", "non_ptm")]
        test = scipy_stats.chi2_contingency(table)
        p = float(test.pvalue)
        result["chi2"], result["p"], result["dof"] = float(test.statistic), p, int(test.dof)
        result["comparable"] = p >= ALPHA
        result["verdict"] = COMPARABLE if result["comparable"] else DIFFERS
        low = int((test.expected_freq < MIN_EXPECTED).sum())
        if low * 5 > test.expected_freq.size:
            warnings.append(f"too few issues for a reliable test: {low} of {test.expected_freq.size} cells "
                            f"expect fewer than {MIN_EXPECTED} issues")
    result["warning"] = "; ".join(warnings) or None
    return result


def _chi_square_obstacle(mix: dict[str, dict[str, int]], types: list[str]) -> str | None:
    missing = [name for name, group in (("PTM", "ptm"), ("non-PTM", "non_ptm")) if not mix[group]]
    if missing:
        return f"no {' or '.join(missing)} issue of known type"
    if len(types) < 2:
        return f"a single issue type ({types[0]}): nothing to compare"
    return None


def _closed_days(record: IssueRecord) -> int:
    """The resolution days of a closed issue: the comparison takes closed issues only."""
    days = record.days
    if days is None:
        raise ValueError(f"{record.repo}#{record.number} is open: the comparison takes closed issues only")
    return days


def theme_days(records: Iterable[IssueRecord], field: str, codes: Sequence[str]) -> dict[str, list[int]]:
    """Resolution days per code of ``field`` (``themes`` or ``subthemes``); an issue counts in each of its codes."""
    grouped: dict[str, list[int]] = {code: [] for code in codes}
    for record in records:
        for code in dict.fromkeys(getattr(record, field)):
            grouped[code].append(_closed_days(record))
    return grouped


def comparison_group(ptm: Sequence[IssueRecord], non_ptm: Sequence[IssueRecord],
                     available: dict[str, int]) -> ComparisonGroup:
    """The GROUP block for a balanced sample (``ptm`` and ``non_ptm`` of equal size)."""
    ptm_days = [_closed_days(r) for r in ptm]
    non_ptm_days = [_closed_days(r) for r in non_ptm]
    themes = theme_days(ptm, "themes", THEME_CODES)
    kruskal = kruskal_wallis(themes)
    kruskal["epsilon_squared"] = epsilon_squared(kruskal["h"], kruskal["n"])
    return {
        "n_per_group": len(ptm),
        "available": available,
        "ptm": describe(ptm_days),
        "non_ptm": describe(non_ptm_days),
        "type_mix": {"ptm": type_mix(ptm), "non_ptm": type_mix(non_ptm)},
        "chi_square": chi_square(ptm, non_ptm),
        "mann_whitney": mann_whitney(ptm_days, non_ptm_days),
        "kruskal_wallis": kruskal,
        "themes": {code: describe(days) for code, days in themes.items()},
        "subthemes": {code: describe(days)
                      for code, days in theme_days(ptm, "subthemes", SUBTHEME_CODES).items()},
    }


def _exclusion(ptm: int, non_ptm: int) -> str | None:
    missing = [name for name, n in (("PTM", ptm), ("non-PTM", non_ptm)) if n == 0]
    return f"no closed {' and no closed '.join(missing)} issues" if missing else None


def balanced_comparison(records: Iterable[IssueRecord], *, seed: int = 0, repo: str | None = None) -> Balanced:
    """The balanced comparison pooled and per repository (sorted by name).

    With ``repo`` only that repository counts (case-insensitively), as in
    :func:`app.stats.resolution.compute_stats`. Open and unclassified issues
    take no part.
    """
    repo = repo or None
    by_repo: dict[str, dict[bool, list[IssueRecord]]] = {}
    for record in records:
        if repo is None or record.repo.casefold() == repo.casefold():
            groups = by_repo.setdefault(record.repo, {True: [], False: []})
            if record.closed is not None and record.ptm is not None:
                groups[record.ptm].append(record)
    repositories: dict[str, ComparisonGroup] = {}
    excluded: dict[str, str] = {}
    pooled: dict[bool, list[IssueRecord]] = {True: [], False: []}
    for name in sorted(by_repo):
        ptm, non_ptm = by_repo[name][True], by_repo[name][False]
        reason = _exclusion(len(ptm), len(non_ptm))
        if reason:
            excluded[name] = reason
            continue
        chosen_ptm, chosen_non = balanced_sample(ptm, non_ptm, random.Random(f"{seed}:{name}"))
        repositories[name] = comparison_group(chosen_ptm, chosen_non, {"ptm": len(ptm), "non_ptm": len(non_ptm)})
        pooled[True] += chosen_ptm
        pooled[False] += chosen_non
    available = {group: sum(r["available"][group] for r in repositories.values()) for group in ("ptm", "non_ptm")}
    return {
        "method": "balanced",
        "seed": seed,
        "repo": repo,
        "pooled": comparison_group(pooled[True], pooled[False], available),
        "repositories": repositories,
        "excluded_repositories": excluded,
    }
