"""Issues over time: per calendar month (UTC), how many were opened and closed in each group,
and the share of new issues that is PTM-related, counted by label and estimated from the PTM
probabilities (their mean is the share a calibrated model expects, mistakes included)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from app.stats.resolution import GROUPS, Filters, IssueRecord, group_of
from app.stats.results import Month


def _month(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def _months_between(first: str, last: str) -> list[str]:
    year, month = map(int, first.split("-"))
    months = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def monthly(records: Iterable[IssueRecord], filters: Filters | None = None) -> list[Month]:
    """One row per month from the first opening to the last opening or closing, empty months included."""
    filters = filters or Filters()
    opened: dict[str, dict[str, int]] = {}
    closed: dict[str, dict[str, int]] = {}
    probabilities: dict[str, list[float]] = {}
    for record in records:
        if filters.exclusion(record):
            continue
        group, month = group_of(record), _month(record.created)
        opened.setdefault(month, dict.fromkeys(GROUPS, 0))[group] += 1
        probability = record.probability()
        if probability is not None:
            probabilities.setdefault(month, []).append(probability)
        if record.closed is not None:
            closed.setdefault(_month(record.closed), dict.fromkeys(GROUPS, 0))[group] += 1
    if not opened:
        return []
    rows: list[Month] = []
    for month in _months_between(min(opened), max([*opened, *closed])):
        new = opened.get(month, dict.fromkeys(GROUPS, 0))
        labelled = new["ptm"] + new["non_ptm"]
        scores = probabilities.get(month, [])
        rows.append({
            "month": month,
            "opened": new,
            "closed": closed.get(month, dict.fromkeys(GROUPS, 0)),
            "ptm_share": new["ptm"] / labelled if labelled else None,
            "ptm_share_estimated": sum(scores) / len(scores) if scores else None,
        })
    return rows
