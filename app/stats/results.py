"""What the statistics return, typed: the dashboard, ``study`` and ``/api/stats`` read these.

TypedDicts rather than classes because the results are JSON as they are (``/api/stats``,
``study``'s report.json); pydantic reads them as the API's response models.
"""

from __future__ import annotations

from typing import (
    Literal,
    NotRequired,  # pydantic needs typing_extensions' on Python < 3.12
)

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

# a key the type does not name fails the API's response validation instead of vanishing from it
_EXACT = ConfigDict(extra="forbid")


@with_config(_EXACT)
class Summary(TypedDict):
    """Resolution times (or open ages) in days: count, mean, median, 90th percentile, max, all values."""

    n: int
    mean: float | None
    median: float | None
    p90: float | None
    max: int | None
    days: list[int]


@with_config(_EXACT)
class MannWhitney(TypedDict):
    """One-sided Mann-Whitney U (PTM greater), with Cliff's delta; ``reason`` says why it did not run."""

    u: float | None
    p: float | None
    alternative: str
    cliffs_delta: float | None
    n_ptm: int
    n_non_ptm: int
    reason: str | None


@with_config(_EXACT)
class KruskalWallis(TypedDict):
    """Kruskal-Wallis H across themes; the balanced comparison adds ε²."""

    h: float | None
    p: float | None
    groups: int
    n: int
    reason: str | None
    epsilon_squared: NotRequired[float | None]


@with_config(_EXACT)
class CorrectedGroup(TypedDict):
    mean: float | None
    median: float | None


@with_config(_EXACT)
class CorrectedDifference(TypedDict):
    mean: float | None  # PTM minus non-PTM, days
    ci95: list[float] | None


@with_config(_EXACT)
class Corrected(TypedDict):
    """:func:`app.stats.corrected.corrected_comparison`: the groups estimated from PTM probabilities,
    not from labels; ``reason`` says why nothing was estimated."""

    n: int
    ptm: CorrectedGroup
    non_ptm: CorrectedGroup
    difference_days: CorrectedDifference
    p_greater: float | None
    method: str
    reason: str | None


@with_config(_EXACT)
class GroupStats(TypedDict):
    ptm: Summary
    non_ptm: Summary
    unsure_closed: int  # closed issues the model abstained on (unsure); the corrected figures count them
    unclassified_closed: int
    open: dict[str, int]  # ptm, non_ptm, unsure, unclassified
    open_age: dict[str, Summary]
    excluded: dict[str, int]  # not_planned, bots, language, period, type, theme
    mann_whitney: MannWhitney
    kruskal_wallis: KruskalWallis
    themes: dict[str, Summary]
    corrected: Corrected


@with_config(_EXACT)
class Month(TypedDict):
    """:func:`app.stats.trends.monthly`: one calendar month (UTC), counts by group
    (ptm, non_ptm, unsure, unclassified)."""

    month: str  # YYYY-MM
    opened: dict[str, int]
    closed: dict[str, int]
    ptm_share: float | None  # of the new issues with a PTM label, the PTM-related share
    ptm_share_estimated: float | None  # the mean PTM probability of the new issues


@with_config(_EXACT)
class FilterChoice(TypedDict):
    include_not_planned: bool
    include_bots: bool
    since: str | None  # creation dates, ISO
    until: str | None
    theme: str | None
    type: str | None


@with_config(_EXACT)
class Stats(TypedDict):
    """:func:`app.stats.resolution.compute_stats`: overall and per repository."""

    repo: str | None
    filters: FilterChoice
    overall: GroupStats
    repositories: dict[str, GroupStats]


@with_config(_EXACT)
class ChiSquare(TypedDict):
    """Chi-square test of independence of issue type and group."""

    chi2: float | None
    p: float | None
    dof: int | None
    comparable: bool | None
    verdict: str | None
    types: list[str]
    n: int
    excluded_unknown_type: int
    reason: str | None
    warning: str | None


@with_config(_EXACT)
class ComparisonGroup(TypedDict):
    n_per_group: int
    available: dict[str, int]  # ptm, non_ptm: closed issues to sample from
    ptm: Summary
    non_ptm: Summary
    type_mix: dict[str, dict[str, int]]
    chi_square: ChiSquare
    mann_whitney: MannWhitney
    kruskal_wallis: KruskalWallis
    themes: dict[str, Summary]
    subthemes: dict[str, Summary]


@with_config(_EXACT)
class Balanced(TypedDict):
    """:func:`app.stats.comparison.balanced_comparison`: the paper's method, pooled and per repository."""

    method: Literal["balanced"]
    seed: int
    repo: str | None
    pooled: ComparisonGroup
    repositories: dict[str, ComparisonGroup]
    excluded_repositories: dict[str, str]
