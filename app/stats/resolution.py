"""Resolution times of PTM and non-PTM issues and the paper's RQ2 tests.

Pure functions: records in, a JSON-ready dict out (no NaN, no numpy types).

Resolution time is ``(closed.date() - created.date()).days`` with both
timestamps in UTC: the number of UTC midnights crossed, so an issue closed the
day it was opened takes 0 days and one opened at 23:59 and closed at 00:01
takes 1 day (the paper: "closed on the same day ... its resolution time is
zero"). Naive datetimes are taken to be UTC.

Groups of days (``DESC``) keep the sorted list of days so that the dashboard
can draw box plots from them; ``mean`` / ``median`` / ``p90`` are unrounded
floats (``p90`` interpolated like numpy's default percentile). Open issues are
counted apart, with their age so far in the same whole days.

By default every closed issue counts, the paper's definition. ``Filters`` can
leave out issues closed as "not planned" and issues opened by bots; what they
left out is counted under ``excluded``.
The tests follow the paper: a one-sided Mann-Whitney U test (PTM resolution
times greater than non-PTM, ``scipy.stats.mannwhitneyu`` with its default
method) with Cliff's delta as effect size, and a Kruskal-Wallis H test across
the themes of closed PTM issues, where an issue with several themes counts in
each of them. U and Cliff's delta are only reported when the test is run.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from scipy import stats as scipy_stats

from app.stats.corrected import corrected_comparison, without_correction
from app.stats.results import FilterChoice, GroupStats, KruskalWallis, MannWhitney, Stats, Summary
from app.taxonomy import SUBTHEME_CODES, THEME_CODES

ALPHA = 0.05  # the significance level of every test the app reports

_THEME_SET, _SUBTHEME_SET = frozenset(THEME_CODES), frozenset(SUBTHEME_CODES)

MIN_GROUP = 3
"""Closed issues each side needs before Mann-Whitney U is run."""

MIN_THEME_GROUP = 3
"""Closed PTM issues a theme needs to take part in the Kruskal-Wallis test."""


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def resolution_days(created: datetime, closed: datetime) -> int:
    """Whole days from creation to closure: the difference of UTC calendar dates.

    Raises ValueError when ``closed`` precedes ``created`` (clock skew, bad data).
    """
    created, closed = as_utc(created), as_utc(closed)
    if closed < created:
        raise ValueError(f"issue closed ({closed.isoformat()}) before it was created ({created.isoformat()})")
    return (closed.date() - created.date()).days


@dataclass(frozen=True)
class IssueRecord:
    """One issue as the statistics see it.

    ``ptm`` is None while the issue is not classified yet (or the model was unsure: ``unsure``); ``themes`` and
    ``subthemes`` are codes of ``app.taxonomy`` and only count for PTM issues.
    ``type`` is the issue type (``bug``, ``enhancement``, ``question``; None when
    unknown), which only the balanced comparison uses. Datetimes are normalised
    to UTC on construction.
    """

    repo: str
    number: int
    created: datetime
    closed: datetime | None
    ptm: bool | None
    themes: tuple[str, ...] = ()
    type: str | None = None
    subthemes: tuple[str, ...] = ()
    closed_reason: str | None = None  # GitHub's state_reason: completed, not_planned, ...
    author_is_bot: bool = False
    abstain_reason: str | None = None  # the model abstained for a reason of its own: the issue is left out
    ptm_probability: float | None = None  # calibrated P(PTM-related); 0 or 1 where a person set the labels
    unsure: bool = False  # no label because the model was unsure (it abstained, ``ptm`` None), not yet unclassified

    days: int | None = field(init=False, repr=False, compare=False)  # resolution days; None while open

    def __post_init__(self) -> None:
        created = as_utc(self.created)
        object.__setattr__(self, "created", created)
        days = None
        if self.closed is not None:
            closed = as_utc(self.closed)
            object.__setattr__(self, "closed", closed)
            days = resolution_days(created, closed)
        object.__setattr__(self, "days", days)
        for name, known in (("themes", _THEME_SET), ("subthemes", _SUBTHEME_SET)):
            codes = tuple(getattr(self, name))
            object.__setattr__(self, name, codes)
            if not known.issuperset(codes):
                unknown = [code for code in codes if code not in known]
                raise ValueError(f"unknown {name[:-1]} codes for {self.repo}#{self.number}: {unknown}")

    def probability(self) -> float | None:
        """P(PTM-related) for the corrected statistics: the classifier's, else the label taken as certain."""
        if self.ptm_probability is not None:
            return self.ptm_probability
        return None if self.ptm is None else float(self.ptm)


@dataclass(frozen=True)
class Filters:
    """Which issues count. ``since`` / ``until``: creation dates, both inclusive. ``theme``: the PTM
    group keeps only issues of that theme (the non-PTM group stays whole, as the comparison).
    ``type``: issues of that type only (bug, enhancement, question)."""

    include_not_planned: bool = True
    include_bots: bool = True
    since: date | None = None
    until: date | None = None
    theme: str | None = None
    type: str | None = None

    def __post_init__(self) -> None:
        if self.theme is not None and self.theme not in THEME_CODES:
            raise ValueError(f"unknown theme {self.theme!r}; one of {', '.join(THEME_CODES)}")
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")

    def exclusion(self, record: IssueRecord) -> str | None:
        """Why ``record`` is left out, or None when it counts.

        An issue in a language the model cannot read is always left out: a guess there
        would move its resolution time into a group at random.
        """
        if record.abstain_reason is not None:
            return "language"
        if not self.include_bots and record.author_is_bot:
            return "bots"
        if not self.include_not_planned and record.closed is not None and record.closed_reason == "not_planned":
            return "not_planned"
        created = record.created.date()
        if (self.since and created < self.since) or (self.until and created > self.until):
            return "period"
        if self.type is not None and record.type != self.type:
            return "type"
        if self.theme is not None and record.ptm is not False and self.theme not in record.themes:
            return "theme"  # the unsure and unclassified too: they cannot be placed in a theme
        return None

    def choice(self) -> FilterChoice:
        return {
            "include_not_planned": self.include_not_planned, "include_bots": self.include_bots,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "theme": self.theme, "type": self.type,
        }


EXCLUSIONS = ("not_planned", "bots", "language", "period", "type", "theme")


def percentile(ordered: Sequence[int], q: float) -> float:
    """The ``q``-th fraction of sorted values, interpolated linearly (numpy's default)."""
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Box:
    q1: float
    median: float
    q3: float
    low: float
    high: float
    outliers: tuple[int, ...]


def box_summary(days: Sequence[int]) -> Box | None:
    if not days:
        return None
    ordered = sorted(days)
    q1, median, q3 = (percentile(ordered, q) for q in (0.25, 0.5, 0.75))
    reach = 1.5 * (q3 - q1)
    inside = [d for d in ordered if q1 - reach <= d <= q3 + reach]
    outliers = tuple(d for d in ordered if not q1 - reach <= d <= q3 + reach)
    return Box(q1, median, q3, inside[0], inside[-1], outliers)


def describe(days: Iterable[int]) -> Summary:
    values = sorted(days)
    if not values:
        return {"n": 0, "mean": None, "median": None, "p90": None, "max": None, "days": []}
    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "median": float(statistics.median(values)),
        "p90": float(percentile(values, 0.9)),
        "max": values[-1],
        "days": values,
    }


def cliffs_delta(xs: Sequence[float], ys: Sequence[float]) -> float:
    """P(x > y) - P(x < y) over all pairs, exactly, in O((n + m) log m)."""
    if not xs or not ys:
        raise ValueError("Cliff's delta needs two non-empty samples")
    ordered = sorted(ys)
    greater = sum(bisect_left(ordered, x) for x in xs)
    less = sum(len(ordered) - bisect_right(ordered, x) for x in xs)
    return (greater - less) / (len(xs) * len(ordered))


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def mann_whitney(ptm: Sequence[int], non_ptm: Sequence[int]) -> MannWhitney:
    result: MannWhitney = {
        "u": None,
        "p": None,
        "alternative": "greater",
        "cliffs_delta": None,
        "n_ptm": len(ptm),
        "n_non_ptm": len(non_ptm),
        "reason": None,
    }
    if len(ptm) < MIN_GROUP or len(non_ptm) < MIN_GROUP:
        result["reason"] = (
            f"too few closed issues: PTM n={len(ptm)}, non-PTM n={len(non_ptm)} "
            f"(need at least {MIN_GROUP} each)"
        )
        return result
    test = scipy_stats.mannwhitneyu(ptm, non_ptm, alternative="greater")
    result["u"] = _finite(test.statistic)
    result["p"] = _finite(test.pvalue)
    result["cliffs_delta"] = cliffs_delta(ptm, non_ptm)
    if result["p"] is None:
        result["reason"] = "the test is undefined for these resolution times"
    return result


def kruskal_wallis(theme_days: Mapping[str, Sequence[int]]) -> KruskalWallis:
    """``n`` counts the resolution times in the test: an issue once per theme it takes part in."""
    samples = [list(days) for days in theme_days.values() if len(days) >= MIN_THEME_GROUP]
    result: KruskalWallis = {"h": None, "p": None, "groups": len(samples), "n": sum(map(len, samples)),
                             "reason": None}
    if len(samples) < 2:
        result["reason"] = (
            f"too few themes: {len(samples)} with at least {MIN_THEME_GROUP} closed PTM issues "
            f"(need at least 2)"
        )
        return result
    if len({day for sample in samples for day in sample}) == 1:
        result["reason"] = "all resolution times are identical"
        return result
    test = scipy_stats.kruskal(*samples)
    result["h"] = _finite(test.statistic)
    result["p"] = _finite(test.pvalue)
    if result["p"] is None:
        result["reason"] = "the test is undefined for these resolution times"
    return result


GROUPS = ("ptm", "non_ptm", "unsure", "unclassified")


def group_of(record: IssueRecord) -> str:
    """The group an issue counts in: PTM, non-PTM, the model was unsure, or not classified yet."""
    if record.ptm is None:
        return "unsure" if record.unsure else "unclassified"
    return "ptm" if record.ptm else "non_ptm"


def group_stats(records: Iterable[IssueRecord], filters: Filters = Filters(),
                now: datetime | None = None) -> GroupStats:
    """The GROUP block of :func:`compute_stats` for ``records``; open ages are taken at ``now``."""
    today = as_utc(now or datetime.now(UTC))
    ptm: list[int] = []
    non_ptm: list[int] = []
    themes: dict[str, list[int]] = {code: [] for code in THEME_CODES}
    unlabelled_closed = {"unsure": 0, "unclassified": 0}
    open_ages: dict[str, list[int]] = {group: [] for group in GROUPS}
    excluded = dict.fromkeys(EXCLUSIONS, 0)
    scored: tuple[list[int], list[float]] = ([], [])  # closed issues with a PTM probability
    for record in records:
        reason = filters.exclusion(record)
        if reason:
            excluded[reason] += 1
            continue
        days = record.days
        probability = record.probability()
        if days is not None and probability is not None:
            scored[0].append(days)
            scored[1].append(probability)
        if days is None:
            open_ages[group_of(record)].append(max(0, (today.date() - record.created.date()).days))
        elif record.ptm is None:
            unlabelled_closed[group_of(record)] += 1
        elif record.ptm:
            ptm.append(days)
            for code in dict.fromkeys(record.themes):
                themes[code].append(days)
        else:
            non_ptm.append(days)
    return {
        "ptm": describe(ptm),
        "non_ptm": describe(non_ptm),
        "unsure_closed": unlabelled_closed["unsure"],
        "unclassified_closed": unlabelled_closed["unclassified"],
        "open": {group: len(ages) for group, ages in open_ages.items()},
        "open_age": {group: describe(ages) for group, ages in open_ages.items()},
        "excluded": excluded,
        "mann_whitney": mann_whitney(ptm, non_ptm),
        "kruskal_wallis": kruskal_wallis(themes),
        "themes": {code: describe(days) for code, days in themes.items()},
        "corrected": corrected_comparison(*scored) if filters.theme is None else without_correction(
            len(scored[0]), "not estimated for one theme: the probabilities are of PTM-related, not of a theme"),
    }


def compute_stats(records: Iterable[IssueRecord], repo: str | None = None, *,
                  filters: Filters = Filters(), now: datetime | None = None) -> Stats:
    """Statistics overall and per repository (sorted by name).

    With ``repo`` only that repository's records count (compared
    case-insensitively, as GitHub does), so ``overall`` is that repository.
    """
    repo = repo or None
    chosen = [r for r in records if repo is None or r.repo.casefold() == repo.casefold()]
    by_repo: dict[str, list[IssueRecord]] = {}
    for record in chosen:
        by_repo.setdefault(record.repo, []).append(record)
    overall = group_stats(chosen, filters, now)
    return {
        "repo": repo,
        "filters": filters.choice(),
        "overall": overall,
        # one repository's block is the overall one: computed once
        "repositories": {name: overall if len(by_repo) == 1 else group_stats(by_repo[name], filters, now)
                         for name in sorted(by_repo)},
    }
