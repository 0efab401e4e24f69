import json
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest
from scipy import stats as scipy_stats

from app.stats.resolution import (
    MIN_GROUP,
    MIN_THEME_GROUP,
    Filters,
    IssueRecord,
    cliffs_delta,
    compute_stats,
    describe,
    resolution_days,
)
from app.stats.trends import monthly
from app.taxonomy import THEME_CODES

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def closed_after(days: int, repo: str = "o/r", ptm: bool | None = True, themes: tuple[str, ...] = (),
                 number: int = 1) -> IssueRecord:
    return IssueRecord(repo, number, T0, T0 + timedelta(days=days), ptm, themes)


def random_records(seed: int, n: int = 300) -> list[IssueRecord]:
    rng = random.Random(seed)
    records = []
    for number in range(n):
        created = T0 + timedelta(minutes=rng.randint(0, 60 * 24 * 400))
        closed = None if rng.random() < 0.15 else created + timedelta(minutes=rng.randint(0, 60 * 24 * 60))
        ptm = rng.choice([True, True, False, None])
        themes = tuple(rng.sample(THEME_CODES, rng.randint(0, 3))) if ptm else ()
        records.append(IssueRecord(rng.choice(["a/one", "b/two"]), number, created, closed, ptm, themes))
    return records


def brute_delta(xs, ys) -> float:
    return sum((x > y) - (x < y) for x in xs for y in ys) / (len(xs) * len(ys))


# resolution_days

def test_same_day_is_zero():
    assert resolution_days(datetime(2024, 1, 5, 0, 1, tzinfo=UTC), datetime(2024, 1, 5, 23, 59, tzinfo=UTC)) == 0


def test_across_midnight_is_one():
    assert resolution_days(datetime(2024, 1, 5, 23, 59, tzinfo=UTC), datetime(2024, 1, 6, 0, 1, tzinfo=UTC)) == 1


def test_calendar_days_not_24h_periods():
    assert resolution_days(datetime(2024, 1, 1, 12, tzinfo=UTC), datetime(2024, 1, 3, 11, tzinfo=UTC)) == 2


def test_aware_inputs_use_utc_dates():
    plus_ten = timezone(timedelta(hours=10))
    # 2024-01-06 08:00 +10:00 is 2024-01-05 22:00 UTC: same UTC day as the creation.
    assert resolution_days(datetime(2024, 1, 5, 1, tzinfo=UTC), datetime(2024, 1, 6, 8, tzinfo=plus_ten)) == 0


def test_naive_is_utc():
    assert resolution_days(datetime(2024, 1, 5, 23), datetime(2024, 1, 6, 1, tzinfo=UTC)) == 1


def test_negative_raises():
    with pytest.raises(ValueError):
        resolution_days(datetime(2024, 1, 6, tzinfo=UTC), datetime(2024, 1, 5, tzinfo=UTC))
    with pytest.raises(ValueError):
        IssueRecord("o/r", 1, T0, T0 - timedelta(seconds=1), True)


def test_record_normalises_to_utc_and_checks_themes():
    record = IssueRecord("o/r", 1, datetime(2024, 1, 1), None, None, ["MU"])
    assert record.created.tzinfo is UTC and record.themes == ("MU",)
    with pytest.raises(ValueError):
        IssueRecord("o/r", 1, T0, None, True, ("MU1",))


# Cliff's delta

def test_cliffs_delta_hand_checked():
    # Pairs: 3>1, 3>2, 3=3, 4>1, 4>2, 4>3 -> (5 - 0) / 6
    assert cliffs_delta([3, 4], [1, 2, 3]) == pytest.approx(5 / 6)
    assert cliffs_delta([1, 2], [3, 4]) == -1.0
    assert cliffs_delta([1, 2, 3], [1, 2, 3]) == 0.0


def test_cliffs_delta_matches_brute_force_with_ties():
    rng = random.Random(7)
    xs = [rng.randint(0, 20) for _ in range(150)]
    ys = [rng.randint(0, 25) for _ in range(120)]
    assert cliffs_delta(xs, ys) == pytest.approx(brute_delta(xs, ys))


def test_cliffs_delta_large_is_fast():
    rng = random.Random(3)
    xs = [rng.randint(0, 1000) for _ in range(100_000)]
    ys = [rng.randint(0, 1000) for _ in range(100_000)]
    u = scipy_stats.mannwhitneyu(xs, ys).statistic
    assert cliffs_delta(xs, ys) == pytest.approx(2 * u / (len(xs) * len(ys)) - 1)


# compute_stats against numpy / scipy

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numbers_match_scipy_and_numpy(seed):
    records = random_records(seed)
    group = compute_stats(records)["overall"]
    closed = [r for r in records if r.closed is not None]
    ptm = [resolution_days(r.created, r.closed) for r in closed if r.ptm is True]
    non = [resolution_days(r.created, r.closed) for r in closed if r.ptm is False]
    assert len(set(ptm)) < len(ptm)  # the data has ties

    for desc, days in ((group["ptm"], ptm), (group["non_ptm"], non)):
        assert desc["n"] == len(days)
        assert desc["mean"] == pytest.approx(np.mean(days))
        assert desc["median"] == pytest.approx(np.median(days))
        assert desc["max"] == max(days)
        assert desc["days"] == sorted(days)

    expected = scipy_stats.mannwhitneyu(ptm, non, alternative="greater")
    mw = group["mann_whitney"]
    assert mw["u"] == pytest.approx(expected.statistic)
    assert mw["p"] == pytest.approx(expected.pvalue)
    assert mw["cliffs_delta"] == pytest.approx(brute_delta(ptm, non))
    assert (mw["alternative"], mw["n_ptm"], mw["n_non_ptm"], mw["reason"]) == ("greater", len(ptm), len(non), None)

    per_theme = {code: [resolution_days(r.created, r.closed) for r in closed if r.ptm and code in r.themes]
                 for code in THEME_CODES}
    for code in THEME_CODES:
        assert group["themes"][code]["days"] == sorted(per_theme[code])
    kw_expected = scipy_stats.kruskal(*per_theme.values())
    kw = group["kruskal_wallis"]
    assert kw["h"] == pytest.approx(kw_expected.statistic)
    assert kw["p"] == pytest.approx(kw_expected.pvalue)
    assert (kw["groups"], kw["reason"]) == (7, None)

    assert group["unclassified_closed"] == sum(r.ptm is None for r in closed)
    open_ = [r for r in records if r.closed is None]
    assert group["open"] == {"ptm": sum(r.ptm is True for r in open_), "non_ptm": sum(r.ptm is False for r in open_),
                             "unsure": 0, "unclassified": sum(r.ptm is None for r in open_)}


def test_small_exact_example():
    records = [closed_after(d, ptm=True, number=i) for i, d in enumerate([5, 7, 9])]
    records += [closed_after(d, ptm=False, number=10 + i) for i, d in enumerate([1, 2, 6])]
    mw = compute_stats(records)["overall"]["mann_whitney"]
    # U counts pairs with PTM greater: 5>1,2; 7>1,2,6; 9>1,2,6 -> 8 of 9.
    assert mw["u"] == 8.0
    assert mw["cliffs_delta"] == pytest.approx(7 / 9)
    assert mw["p"] == pytest.approx(scipy_stats.mannwhitneyu([5, 7, 9], [1, 2, 6], alternative="greater").pvalue)


def test_groups_below_minimum_have_no_p_and_a_reason():
    records = [closed_after(3, ptm=True), closed_after(1, ptm=None), IssueRecord("o/r", 2, T0, None, False)]
    mw = compute_stats(records)["overall"]["mann_whitney"]
    assert mw["p"] is None and mw["u"] is None and mw["cliffs_delta"] is None
    assert mw["reason"] == f"too few closed issues: PTM n=1, non-PTM n=0 (need at least {MIN_GROUP} each)"


def test_kruskal_needs_two_themes_with_enough_issues():
    records = [closed_after(d, themes=("MU",), number=d) for d in range(MIN_THEME_GROUP)]
    records.append(closed_after(9, themes=("PQ",), number=99))
    kw = compute_stats(records)["overall"]["kruskal_wallis"]
    assert kw["p"] is None and kw["h"] is None and kw["groups"] == 1
    assert "too few themes" in kw["reason"]


def test_kruskal_identical_values():
    records = [closed_after(4, themes=("MU", "PQ"), number=i) for i in range(MIN_THEME_GROUP)]
    kw = compute_stats(records)["overall"]["kruskal_wallis"]
    assert kw["p"] is None and kw["groups"] == 2 and "identical" in kw["reason"]


def test_multi_theme_issue_counts_in_each_theme():
    stats = compute_stats([closed_after(4, themes=("MU", "HR")), closed_after(2, ptm=False, themes=("MU",))])
    themes = stats["overall"]["themes"]
    assert set(themes) == set(THEME_CODES)
    assert themes["MU"]["days"] == [4] and themes["HR"]["days"] == [4] and themes["PQ"]["n"] == 0
    assert stats["overall"]["ptm"]["n"] == 1  # but the issue itself is one PTM issue


def test_repo_filter_and_per_repository_groups():
    records = random_records(5)
    everything = compute_stats(records)
    assert everything["repo"] is None and list(everything["repositories"]) == ["a/one", "b/two"]
    only = compute_stats(records, repo="B/Two")
    assert only["repo"] == "B/Two"
    assert list(only["repositories"]) == ["b/two"]
    assert only["overall"] == everything["repositories"]["b/two"] == only["repositories"]["b/two"]
    assert compute_stats(records, repo="nobody/here")["overall"]["ptm"]["n"] == 0


def test_empty_input():
    stats = compute_stats([])
    assert stats["repositories"] == {}
    assert stats["overall"]["ptm"] == {"n": 0, "mean": None, "median": None, "p90": None, "max": None, "days": []}
    assert stats["overall"]["mann_whitney"]["p"] is None
    assert stats["overall"]["kruskal_wallis"]["groups"] == 0


@pytest.mark.parametrize("records", [[], random_records(9), [closed_after(0, themes=("MU",))] * 4])
def test_json_serialisable_without_nan(records):
    stats = compute_stats(records)
    assert json.loads(json.dumps(stats, allow_nan=False)) == stats


def test_record_type_and_subthemes():
    record = IssueRecord("o/r", 1, T0, None, True, ["HR"], "bug", ["HR1"])
    assert (record.type, record.subthemes) == ("bug", ("HR1",))
    assert closed_after(1).type is None and closed_after(1).subthemes == ()
    with pytest.raises(ValueError, match="unknown subtheme codes"):
        IssueRecord("o/r", 1, T0, None, True, ("HR",), subthemes=("HR",))


def test_kruskal_counts_the_times_it_tests():
    records = [closed_after(d, themes=("MU", "PQ"), number=d) for d in range(MIN_THEME_GROUP)]
    records.append(closed_after(9, themes=("HR",), number=99))  # HR has too few issues to take part
    assert compute_stats(records)["overall"]["kruskal_wallis"]["n"] == 2 * MIN_THEME_GROUP


def test_p90_matches_numpy():
    rng = np.random.default_rng(7)
    for size in (1, 2, 5, 10, 101):
        days = rng.integers(0, 400, size).tolist()
        assert describe(days)["p90"] == pytest.approx(np.percentile(days, 90))


def _record(number, days, *, ptm=True, reason="completed", bot=False, closed=True):
    created = datetime(2024, 1, 1, tzinfo=UTC)
    return IssueRecord("o/r", number, created, created + timedelta(days=days) if closed else None, ptm,
                       closed_reason=reason if closed else None, author_is_bot=bot)


def test_by_default_every_closed_issue_counts_and_switches_leave_some_out():
    records = [_record(1, 5), _record(2, 50, reason="not_planned"), _record(3, 9, bot=True),
               _record(4, 1, ptm=False), _record(5, 0, ptm=False, bot=True, reason="not_planned")]
    everything = compute_stats(records)["overall"]
    assert everything["ptm"]["days"] == [5, 9, 50] and everything["non_ptm"]["days"] == [0, 1]
    assert everything["excluded"] == dict.fromkeys(("not_planned", "bots", "language", "period", "type", "theme"), 0)
    planned = compute_stats(records, filters=Filters(include_not_planned=False))["overall"]
    assert planned["ptm"]["days"] == [5, 9] and planned["non_ptm"]["days"] == [1]
    humans = compute_stats(records, filters=Filters(include_not_planned=False, include_bots=False))["overall"]
    assert humans["ptm"]["days"] == [5]
    assert humans["excluded"] == {"not_planned": 1, "bots": 2, "language": 0, "period": 0, "type": 0, "theme": 0}


def test_period_type_and_theme_filters():
    records = [replace(_record(1, 5), themes=("HR",), type="bug"), replace(_record(2, 9), themes=("SE",), type="bug"),
               replace(_record(3, 2, ptm=False), type="question"), replace(_record(4, 1, ptm=False), type="bug"),
               replace(_record(5, 3, ptm=None), unsure=True, type="bug"),
               replace(_record(6, 4, ptm=False), created=datetime(2023, 6, 1, tzinfo=UTC),
                       closed=datetime(2023, 6, 5, tzinfo=UTC))]
    hr = compute_stats(records, filters=Filters(theme="HR"))["overall"]
    assert hr["ptm"]["days"] == [5] and hr["non_ptm"]["days"] == [1, 2, 4]  # the non-PTM group stays whole
    assert hr["excluded"]["theme"] == 2 and hr["corrected"]["reason"].startswith("not estimated for one theme")
    bugs = compute_stats(records, filters=Filters(type="bug"))["overall"]
    assert bugs["ptm"]["days"] == [5, 9] and bugs["non_ptm"]["days"] == [1] and bugs["excluded"]["type"] == 2
    period = Filters(since=date(2024, 1, 1), until=date(2024, 12, 31))
    recent = compute_stats(records, filters=period)
    assert recent["overall"]["non_ptm"]["days"] == [1, 2] and recent["overall"]["excluded"]["period"] == 1
    assert recent["filters"] == {"include_not_planned": True, "include_bots": True, "since": "2024-01-01",
                                 "until": "2024-12-31", "theme": None, "type": None}
    with pytest.raises(ValueError, match="unknown theme 'XX'"):
        Filters(theme="XX")
    with pytest.raises(ValueError, match="is after until"):
        Filters(since=date(2024, 2, 1), until=date(2024, 1, 1))


def test_issues_in_a_language_the_model_cannot_read_are_left_out_and_counted():
    unreadable = replace(_record(6, 400, ptm=None), abstain_reason="language not supported")
    records = [_record(1, 5), _record(4, 1, ptm=False), unreadable,
               replace(_record(7, 0, ptm=None, closed=False), abstain_reason="language not supported")]
    group = compute_stats(records)["overall"]
    assert group["ptm"]["days"] == [5] and group["non_ptm"]["days"] == [1]
    assert group["excluded"]["language"] == 2 and group["unclassified_closed"] == 0
    assert group["open"] == {"ptm": 0, "non_ptm": 0, "unsure": 0, "unclassified": 0}


def test_an_issue_the_model_was_unsure_of_is_not_unclassified():
    unsure = replace(_record(5, 9, ptm=None), unsure=True, ptm_probability=0.55)
    records = [_record(1, 5), _record(4, 1, ptm=False), unsure, _record(6, 2, ptm=None),
               replace(_record(7, 0, ptm=None, closed=False), unsure=True, ptm_probability=0.5)]
    group = compute_stats(records)["overall"]
    assert (group["unsure_closed"], group["unclassified_closed"]) == (1, 1)
    assert group["open"] == {"ptm": 0, "non_ptm": 0, "unsure": 1, "unclassified": 0}
    assert group["corrected"]["n"] == 3  # the unsure issue counts there with its probability; unclassified not


def test_open_issues_count_apart_with_their_age_so_far():
    now = datetime(2024, 1, 11, 12, tzinfo=UTC)
    records = [_record(1, 3), _record(2, 0, closed=False), _record(3, 0, ptm=False, closed=False),
               _record(4, 0, ptm=None, closed=False)]
    group = compute_stats(records, now=now)["overall"]
    assert group["open"] == {"ptm": 1, "non_ptm": 1, "unsure": 0, "unclassified": 1}
    assert group["open_age"]["ptm"]["days"] == [10] and group["open_age"]["non_ptm"]["days"] == [10]
    assert group["ptm"]["days"] == [3], "open issues never mix with resolution times"


def test_monthly_counts_and_shares():
    jan, mar = datetime(2024, 1, 10, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC)
    records = [
        IssueRecord("o/r", 1, jan, mar, True, ptm_probability=0.9),
        IssueRecord("o/r", 2, jan, None, False, ptm_probability=0.2),
        IssueRecord("o/r", 3, jan, None, None, unsure=True, ptm_probability=0.55),
        IssueRecord("o/r", 4, mar, mar, False, ptm_probability=0.1),
    ]
    rows = monthly(records)
    assert [r["month"] for r in rows] == ["2024-01", "2024-02", "2024-03"]
    assert rows[0]["opened"] == {"ptm": 1, "non_ptm": 1, "unsure": 1, "unclassified": 0}
    assert rows[0]["ptm_share"] == 0.5 and rows[0]["ptm_share_estimated"] == pytest.approx((0.9 + 0.2 + 0.55) / 3)
    assert rows[1]["opened"] == dict.fromkeys(("ptm", "non_ptm", "unsure", "unclassified"), 0)
    assert rows[1]["ptm_share"] is None and rows[1]["ptm_share_estimated"] is None
    assert rows[2]["closed"] == {"ptm": 1, "non_ptm": 1, "unsure": 0, "unclassified": 0}
    assert monthly(records, Filters(since=date(2024, 3, 1)))[0]["month"] == "2024-03"
    assert monthly([]) == []
