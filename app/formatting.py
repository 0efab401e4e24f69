"""How figures are written and coloured, the same on `/dashboard` and in `study`'s report."""

from __future__ import annotations

from app.stats.resolution import ALPHA
from app.stats.results import Corrected, GroupStats

PTM_COLOUR = "#d9822b"
NON_PTM_COLOUR = "#4a7fb5"


def fmt_number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def axis_ticks(top: float) -> list[int]:
    """0 and the 1-2-5 series up to the first value >= ``top`` (at least 1)."""
    ticks = [0]
    magnitude = 1
    while ticks[-1] < top or len(ticks) == 1:
        for step in (1, 2, 5):
            ticks.append(step * magnitude)
            if ticks[-1] >= top:
                break
        magnitude *= 10
    return ticks


def corrected_text(corrected: Corrected) -> str:
    """The comparison corrected for the classifier's mistakes, in words."""
    if corrected["reason"] is not None:
        return f"not estimated: {corrected['reason']}"
    ptm, non, difference = corrected["ptm"], corrected["non_ptm"], corrected["difference_days"]
    p = corrected["p_greater"]
    verdict = ("PTM-related issues take longer to close" if p is not None and p < ALPHA
               else "no significant difference")
    low, high = difference["ci95"] or (None, None)
    return (f"{verdict}: mean {fmt_number(ptm['mean'])} vs {fmt_number(non['mean'])} days, median "
            f"{fmt_number(ptm['median'])} vs {fmt_number(non['median'])}; difference {fmt_number(difference['mean'])} "
            f"days (95% CI {fmt_number(low)} to {fmt_number(high)}), one-sided p = {fmt_p(p)}, "
            f"from {corrected['n']} closed issues")


def verdict(group: GroupStats) -> str:
    """The Mann-Whitney result of a group of issues in one sentence a maintainer can act on."""
    test = group["mann_whitney"]
    if test["p"] is None:
        return f"Not enough to tell yet: {test['reason']}."
    medians = (f"median {fmt_number(group['ptm']['median'])} vs {fmt_number(group['non_ptm']['median'])} days, "
               f"p = {fmt_p(test['p'])}, Cliff's delta = {fmt_number(test['cliffs_delta'], 2)}")
    if test["p"] < ALPHA:
        return f"PTM-related issues take longer to close here: {medians}."
    return f"No significant difference in time to close: {medians}."
