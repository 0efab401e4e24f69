"""A synthetic installation with known effects, to check that the study recovers them.

Five repositories (``SYNTHETIC_EFFECTS``): in two, closed PTM issues take three
times as long (median) as non-PTM ones; in three, both groups share one
distribution; in one of those the PTM issues are mostly bugs and the non-PTM
ones mostly questions, which the chi-square test should flag.

Resolution days follow a lognormal distribution drawn by jittered stratified
quantiles (one draw in each of n equal slices of probability, shuffled), so a
sample of n follows its distribution closely and the effects show reliably at
these sizes for any seed. Within the PTM group slower themes (PQ, FN) get the
longer times and HR the shorter, like the paper's Figure 5, without changing
the group's distribution. Lines are labelled (``ptm``, ``themes``,
``subthemes``, ``type``), so the study needs no classifier.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import NormalDist

from app.taxonomy import SUBTHEMES, theme_of

TYPES = ("bug", "enhancement", "question")
USUAL_MIX = (0.5, 0.3, 0.2)
NON_PTM_MEDIAN_DAYS = 8.0
SIGMA = 1.1
OPEN_SHARE = 0.1
START = datetime(2022, 1, 1, tzinfo=UTC)
CREATION_SPAN_DAYS = 700


@dataclass(frozen=True)
class RepoSpec:
    name: str
    ptm_closed: int
    non_ptm_closed: int
    ptm_median_factor: float
    ptm_types: tuple[float, float, float] = USUAL_MIX
    non_ptm_types: tuple[float, float, float] = USUAL_MIX


REPOS: tuple[RepoSpec, ...] = (
    RepoSpec("acme/diffusion-ui", 50, 150, 3.0),
    RepoSpec("acme/speech-kit", 90, 60, 3.0),
    RepoSpec("acme/doc-search", 60, 64, 1.0),
    RepoSpec("acme/chat-widget", 72, 70, 1.0),
    RepoSpec("acme/ocr-tool", 80, 82, 1.0, ptm_types=(0.65, 0.25, 0.10), non_ptm_types=(0.30, 0.25, 0.45)),
)

SYNTHETIC_EFFECTS: dict[str, dict[str, bool]] = {
    spec.name: {"ptm_slower": spec.ptm_median_factor > 1, "type_mix_differs": spec.ptm_types != spec.non_ptm_types}
    for spec in REPOS
}

# Paper counts per sub-theme (how often each is drawn) and how slow each theme is.
_SUBTHEME_WEIGHTS: dict[str, int] = {
    "MU1": 93, "MU2": 32, "MU3": 19, "MU4": 18, "MU5": 16, "PQ1": 106, "PQ2": 43, "PQ3": 23,
    "SE1": 42, "SE2": 28, "SE3": 27, "SE4": 21, "DI1": 61, "DI2": 26, "DI3": 18, "DI4": 10,
    "HR1": 49, "HR2": 30, "HR3": 18, "HR4": 18, "RC1": 37, "RC2": 21, "RC3": 15, "RC4": 13,
    "RC5": 12, "RC6": 7, "RC7": 6, "FN1": 45, "FN2": 30, "FN3": 13, "FN4": 13, "FN5": 5,
}
_THEME_SLOWNESS = {"PQ": 1.0, "FN": 0.6, "RC": 0.2, "SE": 0.0, "MU": 0.0, "DI": -0.2, "HR": -0.6}
_SECOND_SUBTHEME_SHARE = 0.15


def stratified_lognormal(n: int, median: float, rng: random.Random) -> list[int]:
    """``n`` whole-day resolution times, one per equal slice of probability, shuffled."""
    normal = NormalDist(math.log(median), SIGMA)
    days = [int(math.exp(normal.inv_cdf((i + rng.random()) / n))) for i in range(n)]
    rng.shuffle(days)
    return days


def stratified_types(n: int, mix: tuple[float, ...], rng: random.Random) -> list[str]:
    """``n`` issue types in the proportions of ``mix`` (largest remainders), shuffled."""
    exact = [share * n for share in mix]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(mix)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    types = [t for t, count in zip(TYPES, counts, strict=True) for _ in range(count)]
    rng.shuffle(types)
    return types


def _subthemes(rng: random.Random) -> tuple[str, ...]:
    codes, weights = list(_SUBTHEME_WEIGHTS), list(_SUBTHEME_WEIGHTS.values())
    count = 2 if rng.random() < _SECOND_SUBTHEME_SHARE else 1
    return tuple(dict.fromkeys(rng.choices(codes, weights, k=count)))


def _by_theme_slowness(days: list[int], subthemes: list[tuple[str, ...]], rng: random.Random) -> list[int]:
    """``days`` reordered so that issues of slower themes tend to get the longer times."""
    keys = [_THEME_SLOWNESS[theme_of(codes[0])] + rng.gauss(0, 0.5) for codes in subthemes]
    ranks = sorted(range(len(keys)), key=keys.__getitem__)
    reordered = [0] * len(days)
    for rank, day in zip(ranks, sorted(days), strict=True):
        reordered[rank] = day
    return reordered


def _issue(spec: RepoSpec, number: int, ptm: bool, kind: str, subthemes: tuple[str, ...],
           days: int | None, rng: random.Random) -> dict:
    created = START + timedelta(minutes=rng.randrange(CREATION_SPAN_DAYS * 24 * 60))
    closed = None
    if days is not None:
        hour = rng.randrange(created.hour, 24) if days == 0 else rng.randrange(24)
        closed = (created + timedelta(days=days)).replace(hour=hour)
    topic = ", ".join(SUBTHEMES[code] for code in subthemes) if ptm else "a non-model component"
    return {
        "repo": spec.name,
        "number": number,
        "title": f"Synthetic {kind} #{number} about {topic}",
        "body": f"Generated for the PTM Triage study example ({spec.name}).",
        "created": created.isoformat(),
        "closed": None if closed is None else closed.isoformat(),
        "ptm": ptm,
        "themes": sorted({theme_of(code) for code in subthemes}),
        "subthemes": list(subthemes),
        "type": kind,
    }


def _group(spec: RepoSpec, ptm: bool, rng: random.Random) -> list[tuple[bool, str, tuple[str, ...], int | None]]:
    closed = spec.ptm_closed if ptm else spec.non_ptm_closed
    n = closed + round(closed * OPEN_SHARE)
    subthemes = [_subthemes(rng) if ptm else () for _ in range(n)]
    durations = stratified_lognormal(closed, NON_PTM_MEDIAN_DAYS * (spec.ptm_median_factor if ptm else 1.0), rng)
    if ptm:
        durations = _by_theme_slowness(durations, subthemes[:closed], rng)
    days: list[int | None] = [*durations, *[None] * (n - closed)]
    types = stratified_types(n, spec.ptm_types if ptm else spec.non_ptm_types, rng)
    return list(zip([ptm] * n, types, subthemes, days, strict=True))


def synthetic_installation(seed: int = 0) -> list[dict]:
    """Issue lines (the study's JSONL fields) of the five ``REPOS``, numbered per repository."""
    rng = random.Random(seed)
    lines = []
    for spec in REPOS:
        issues = _group(spec, True, rng) + _group(spec, False, rng)
        rng.shuffle(issues)
        lines += [_issue(spec, number, *issue, rng) for number, issue in enumerate(issues, start=1)]
    return lines
