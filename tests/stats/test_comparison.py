import json
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats as scipy_stats

from app.stats.comparison import (
    COMPARABLE,
    DIFFERS,
    balanced_comparison,
    chi_square,
    epsilon_squared,
)
from app.stats.resolution import MIN_GROUP, MIN_THEME_GROUP, IssueRecord
from app.taxonomy import SUBTHEME_CODES, THEME_CODES, theme_of

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
TYPES = ("bug", "enhancement", "question")


def issue(repo: str, number: int, days: int | None, ptm: bool | None, kind: str | None = "bug",
          subthemes: tuple[str, ...] = ()) -> IssueRecord:
    themes = tuple(dict.fromkeys(theme_of(code) for code in subthemes))
    return IssueRecord(repo, number, T0, None if days is None else T0 + timedelta(days=days), ptm, themes,
                       kind, subthemes)


def typed(kinds: list[str | None], ptm: bool) -> list[IssueRecord]:
    return [issue("o/r", i, 1, ptm, kind) for i, kind in enumerate(kinds)]


def random_installation(seed: int) -> list[IssueRecord]:
    """Three repositories of uneven group sizes with ties, unknown types, open and unclassified issues."""
    rng = random.Random(seed)
    sizes = {"a/big": (40, 25), "b/small": (12, 30), "c/even": (20, 20)}
    records = []
    for repo, (n_ptm, n_non) in sizes.items():
        for number, ptm in enumerate([True] * n_ptm + [False] * n_non + [None] * 3):
            subthemes = tuple(rng.sample(SUBTHEME_CODES, rng.randint(1, 2))) if ptm else ()
            kind = rng.choice([*TYPES, None]) if number % 7 else None
            days = None if number % 11 == 0 else rng.randint(0, 30) * (2 if ptm else 1)
            records.append(issue(repo, number, days, ptm, kind, subthemes))
    rng.shuffle(records)
    return records


def closed(records, repo: str, ptm: bool) -> list[IssueRecord]:
    return [r for r in records if r.repo == repo and r.ptm is ptm and r.closed is not None]


# epsilon-squared

def test_epsilon_squared_hand_checked():
    # H = 6, n = 11: 6 / ((121 - 1) / 12) = 6 / 10
    assert epsilon_squared(6.0, 11) == pytest.approx(0.6)
    assert epsilon_squared(3.0, 31) == pytest.approx(3.0 / 30)  # equals H / (n - 1)
    assert epsilon_squared(None, 11) is None and epsilon_squared(1.0, 1) is None


# chi-square

def test_chi_square_hand_checked_2x2_with_yates():
    ptm = typed(["bug"] * 10 + ["question"] * 20, True)
    non = typed(["bug"] * 20 + ["question"] * 10, False)
    result = chi_square(ptm, non)
    # Every expected count is 15; Yates: 4 * (|10 - 15| - 0.5)^2 / 15 = 5.4, dof 1.
    assert result["chi2"] == pytest.approx(5.4) and result["dof"] == 1
    assert result["p"] == pytest.approx(scipy_stats.chi2.sf(5.4, 1))
    assert (result["comparable"], result["verdict"]) == (False, DIFFERS)
    assert result["reason"] is None and result["warning"] is None


def test_chi_square_2x3_matches_scipy_and_excludes_unknown_types():
    ptm = typed(["bug"] * 12 + ["enhancement"] * 8 + ["question"] * 6 + [None] * 3, True)
    non = typed(["bug"] * 10 + ["enhancement"] * 9 + ["question"] * 9 + [None], False)
    result = chi_square(ptm, non)
    expected = scipy_stats.chi2_contingency([[12, 8, 6], [10, 9, 9]])
    assert result["chi2"] == pytest.approx(expected.statistic) and result["p"] == pytest.approx(expected.pvalue)
    assert result["dof"] == 2 and result["types"] == list(TYPES) and result["n"] == 54
    assert result["comparable"] is True and result["verdict"] == COMPARABLE == "groups comparable (p ≥ 0.05)"
    assert result["excluded_unknown_type"] == 4 and "4 issue(s) of unknown type" in result["warning"]


def test_chi_square_type_only_in_one_group():
    result = chi_square(typed(["bug"] * 6 + ["question"] * 6, True), typed(["bug"] * 12, False))
    assert result["p"] == pytest.approx(scipy_stats.chi2_contingency([[6, 6], [12, 0]]).pvalue)


def test_chi_square_small_table_warns_but_computes():
    ptm, non = typed(["bug", "bug", "question"], True), typed(["question", "question", "bug"], False)
    result = chi_square(ptm, non)
    assert result["p"] == pytest.approx(scipy_stats.chi2_contingency([[2, 1], [1, 2]]).pvalue)
    assert "too few issues for a reliable test: 4 of 4 cells expect fewer than 5" in result["warning"]


@pytest.mark.parametrize(("ptm_kinds", "non_kinds", "reason"), [
    (["bug"] * 5, ["bug"] * 5, "a single issue type (bug): nothing to compare"),
    ([None] * 5, ["bug", "question"], "no PTM issue of known type"),
    ([None], [None], "no PTM or non-PTM issue of known type"),
    ([], [], "no PTM or non-PTM issue of known type"),
])
def test_chi_square_degenerate_tables_have_no_p_and_a_reason(ptm_kinds, non_kinds, reason):
    result = chi_square(typed(ptm_kinds, True), typed(non_kinds, False))
    assert (result["chi2"], result["p"], result["dof"], result["comparable"], result["verdict"]) == (None,) * 5
    assert result["reason"] == reason


# sampling

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampling_balanced_per_repo_and_deterministic(seed):
    records = random_installation(seed)
    result = balanced_comparison(records, seed=seed)
    assert result == balanced_comparison(list(reversed(records)), seed=seed)  # input order does not matter
    assert (result["method"], result["seed"], result["repo"]) == ("balanced", seed, None)
    for repo, group in result["repositories"].items():
        n_ptm, n_non = len(closed(records, repo, True)), len(closed(records, repo, False))
        assert group["available"] == {"ptm": n_ptm, "non_ptm": n_non}
        assert group["n_per_group"] == group["ptm"]["n"] == group["non_ptm"]["n"] == min(n_ptm, n_non)
    pooled = result["pooled"]
    assert pooled["n_per_group"] == sum(g["n_per_group"] for g in result["repositories"].values())
    assert pooled["ptm"]["days"] == sorted(d for g in result["repositories"].values() for d in g["ptm"]["days"])


def test_seed_changes_the_sample_of_the_larger_group_only():
    records = random_installation(0)
    draws = [balanced_comparison(records, seed=s)["repositories"] for s in range(5)]
    assert len({json.dumps(d["a/big"]["ptm"]["days"]) for d in draws}) > 1  # 40 PTM reduced to 25
    assert len({json.dumps(d["a/big"]["non_ptm"]["days"]) for d in draws}) == 1  # all 25 non-PTM kept
    assert len({json.dumps(d["c/even"]) for d in draws}) == 1  # equal groups: everything kept


def test_sample_is_drawn_from_the_repo_and_independent_of_other_repos():
    records = random_installation(4)
    everything = balanced_comparison(records, seed=9)
    only = balanced_comparison(records, seed=9, repo="B/SMALL")
    assert only["repo"] == "B/SMALL" and list(only["repositories"]) == ["b/small"]
    assert only["repositories"]["b/small"] == everything["repositories"]["b/small"] == only["pooled"]
    group = everything["repositories"]["a/big"]
    available = sorted(r.days for r in closed(records, "a/big", True))
    assert all(group["ptm"]["days"].count(d) <= available.count(d) for d in set(group["ptm"]["days"]))


def test_repositories_with_an_empty_group_are_excluded_with_the_reason():
    records = [issue("z/only-ptm", 1, 3, True), issue("z/only-ptm", 2, 4, True), issue("z/only-ptm", 3, None, False),
               issue("y/only-non", 1, 3, False), issue("x/open", 1, None, True), issue("x/open", 2, 5, None),
               issue("w/ok", 1, 2, True), issue("w/ok", 2, 1, False)]
    result = balanced_comparison(records)
    assert list(result["repositories"]) == ["w/ok"]
    assert result["excluded_repositories"] == {
        "x/open": "no closed PTM and no closed non-PTM issues",
        "y/only-non": "no closed PTM issues",
        "z/only-ptm": "no closed non-PTM issues",
    }


def test_empty_input():
    result = balanced_comparison([])
    assert result["repositories"] == {} and result["excluded_repositories"] == {}
    pooled = result["pooled"]
    assert pooled["n_per_group"] == 0 and pooled["mann_whitney"]["p"] is None
    assert pooled["chi_square"]["reason"] and pooled["kruskal_wallis"]["reason"]


# the tests on the balanced sample

@pytest.mark.parametrize("seed", [0, 3])
def test_statistics_match_scipy_and_numpy(seed):
    records = random_installation(seed)
    result = balanced_comparison(records, seed=seed)
    group = result["repositories"]["a/big"]
    ptm = group["ptm"]["days"]
    non = group["non_ptm"]["days"]
    assert len(set(ptm)) < len(ptm)  # ties
    expected = scipy_stats.mannwhitneyu(ptm, non, alternative="greater")
    mw = group["mann_whitney"]
    assert mw["u"] == pytest.approx(expected.statistic) and mw["p"] == pytest.approx(expected.pvalue)
    assert mw["cliffs_delta"] == pytest.approx(sum((x > y) - (x < y) for x in ptm for y in non) / len(ptm) ** 2)

    pooled = result["pooled"]
    pooled_mw = scipy_stats.mannwhitneyu(pooled["ptm"]["days"], pooled["non_ptm"]["days"], alternative="greater")
    assert pooled["mann_whitney"]["p"] == pytest.approx(pooled_mw.pvalue)
    theme_days = [pooled["themes"][code]["days"] for code in THEME_CODES]
    kw = pooled["kruskal_wallis"]
    kw_expected = scipy_stats.kruskal(*theme_days)
    n = sum(map(len, theme_days))
    assert kw["h"] == pytest.approx(kw_expected.statistic) and kw["p"] == pytest.approx(kw_expected.pvalue)
    assert kw["n"] == n and kw["epsilon_squared"] == pytest.approx(kw_expected.statistic * (n + 1) / (n**2 - 1))
    for desc in [*pooled["themes"].values(), *pooled["subthemes"].values()]:
        if desc["n"]:
            assert desc["mean"] == pytest.approx(np.mean(desc["days"]))
            assert desc["median"] == pytest.approx(np.median(desc["days"]))
    assert set(pooled["subthemes"]) == set(SUBTHEME_CODES)
    assert sum(d["n"] for d in pooled["subthemes"].values()) >= pooled["n_per_group"]


def test_themes_and_type_mix_come_from_the_sampled_issues():
    records = [issue("o/r", i, i, True, "bug", ("HR1", "MU2")) for i in range(4)]
    records += [issue("o/r", 10 + i, i, False, "question") for i in range(4)]
    group = balanced_comparison(records)["pooled"]
    assert group["themes"]["HR"]["days"] == group["themes"]["MU"]["days"] == [0, 1, 2, 3]
    assert group["subthemes"]["HR1"]["n"] == 4 and group["subthemes"]["PQ1"]["n"] == 0
    assert group["type_mix"] == {"ptm": {"bug": 4}, "non_ptm": {"question": 4}}
    assert group["chi_square"]["p"] == pytest.approx(scipy_stats.chi2_contingency([[4, 0], [0, 4]]).pvalue)


def test_groups_below_the_minimum_have_no_p_and_a_reason():
    records = [issue("o/r", 1, 5, True, "bug", ("MU1",)), issue("o/r", 2, 9, True, "question", ("PQ1",)),
               issue("o/r", 3, 1, False, "bug"), issue("o/r", 4, 2, False, "question"), issue("o/r", 5, 3, False)]
    group = balanced_comparison(records)["repositories"]["o/r"]
    assert group["n_per_group"] == 2 < MIN_GROUP
    mw = group["mann_whitney"]
    assert mw["p"] is None and mw["u"] is None and mw["cliffs_delta"] is None
    assert mw["reason"] == f"too few closed issues: PTM n=2, non-PTM n=2 (need at least {MIN_GROUP} each)"
    kw = group["kruskal_wallis"]
    assert kw["p"] is None and kw["epsilon_squared"] is None
    assert kw["reason"].startswith(f"too few themes: 0 with at least {MIN_THEME_GROUP}")


def test_json_ready_without_nan():
    for records in (random_installation(1), [], [issue("o/r", i, 4, i % 2 == 0, "bug", ("MU1",)) for i in range(8)]):
        result = balanced_comparison(records)
        assert json.loads(json.dumps(result, allow_nan=False)) == result
