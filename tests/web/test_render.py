import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from app.formatting import axis_ticks
from app.stats.comparison import balanced_comparison
from app.stats.resolution import IssueRecord, box_summary, compute_stats
from app.taxonomy import THEMES
from app.web.render import render_dashboard

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
EVIL = '<script>alert("x")</script>/repo'


def record(repo: str, number: int, days: int | None, ptm: bool | None, themes: tuple[str, ...] = ()) -> IssueRecord:
    return IssueRecord(repo, number, T0, None if days is None else T0 + timedelta(days=days), ptm, themes)


def sample_records() -> list[IssueRecord]:
    records = [record("octo/app", i, d, True, ("PQ",) if i % 2 else ("MU", "FN")) for i, d in
               enumerate([40, 3, 12, 0, 90, 1260, 7])]
    records += [record("octo/app", 100 + i, d, False) for i, d in enumerate([1, 2, 0, 5, 26, 507])]
    records += [record(EVIL, 200, 4, True, ("HR",)), record(EVIL, 201, None, None), record(EVIL, 202, 2, None)]
    return records


@pytest.fixture
def stats() -> dict:
    return compute_stats(sample_records())


def test_contains_the_numbers(stats):
    html = render_dashboard(stats)
    overall = stats["overall"]
    mw, kw = overall["mann_whitney"], overall["kruskal_wallis"]
    for value in (overall["ptm"]["mean"], overall["ptm"]["median"], overall["non_ptm"]["mean"]):
        assert f"<td>{value:.1f}</td>" in html
    assert f"<td>{overall['ptm']['max']}</td>" in html and "<td>507</td>" in html
    assert f"p = {mw['p']:.3f}" in html and f"Cliff's delta = {mw['cliffs_delta']:.3f}" in html
    assert f"H = {kw['h']:.2f}" in html and f"p = {kw['p']:.3f}" in html
    for name in THEMES.values():
        assert name in html
    assert "not classified yet" in html


def test_reason_shown_when_test_not_run(stats):
    html = render_dashboard(stats)
    reason = stats["repositories"][EVIL]["mann_whitney"]["reason"]
    assert reason and f"not run: {reason}" in html


def test_escapes_repo_names_and_title(stats):
    html = render_dashboard(stats, title="<b>mine</b>")
    assert "<script>" not in html and "<b>mine</b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;/repo" in html
    assert "&lt;b&gt;mine&lt;/b&gt;" in html


def test_sections_and_well_formed_svg(stats):
    html = render_dashboard(stats)
    assert html.count("<section") == 1 + len(stats["repositories"])
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(svgs) == 2 * html.count("<section")  # every section has closed issues: 2 plots each
    for svg in svgs:
        ET.fromstring(svg)
    assert "<circle" in html  # 1260 days is an outlier
    assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched


def test_repo_filtered_page_has_one_section():
    html = render_dashboard(compute_stats(sample_records(), repo="octo/app"))
    assert html.count("<section") == 1 and "<h2>octo/app</h2>" in html


@pytest.mark.parametrize("empty", [compute_stats([]), {}, compute_stats([record("o/r", 1, None, True)])])
def test_empty_stats_friendly_page(empty):
    html = render_dashboard(empty)
    assert "no closed issues tracked yet" in html.lower() and "<svg" not in html


def test_single_value_and_empty_groups_render():
    html = render_dashboard(compute_stats([record("o/r", 1, 3, True, ("MU",))]))
    assert "no closed issues" in html  # the non-PTM row and empty themes
    for svg in re.findall(r"<svg.*?</svg>", html, re.S):
        ET.fromstring(svg)


def test_box_summary_matches_numpy_quartiles():
    days = [0, 1, 1, 2, 3, 5, 8, 13, 21, 400]
    box = box_summary(days)
    q1, median, q3 = np.percentile(days, [25, 50, 75])
    assert (box.q1, box.median, box.q3) == pytest.approx((q1, median, q3))
    reach = 1.5 * (q3 - q1)
    assert box.outliers == (400,) and box.low == 0 and box.high == max(d for d in days if d <= q3 + reach)
    assert box_summary([]) is None
    single = box_summary([5])
    assert (single.q1, single.median, single.q3, single.low, single.high, single.outliers) == (5, 5, 5, 5, 5, ())


def test_axis_ticks():
    assert axis_ticks(0) == [0, 1]
    assert axis_ticks(3) == [0, 1, 2, 5]
    assert axis_ticks(1260)[-1] == 2000 and 1000 in axis_ticks(1260)


def balanced_records() -> list[IssueRecord]:
    records = sample_records()
    records += [IssueRecord("octo/app", 300 + i, T0, T0 + timedelta(days=i), True, ("HR",), kind)
                for i, kind in enumerate(["bug", "question", "bug"])]
    records += [record("octo/app", 400 + i, i, False) for i in range(4)]  # every PTM issue is sampled
    return records + [record("only/ptm", 1, 3, True, ("MU",))]


def test_balanced_analysis_shown_when_given():
    records = balanced_records()
    balanced = balanced_comparison(records)
    html = render_dashboard(compute_stats(records), balanced=balanced)
    pooled = balanced["pooled"]
    assert html.count('<section id="balanced">') == 1
    assert f"{pooled['n_per_group']} PTM and {pooled['n_per_group']} non-PTM closed issues" in html
    chi, mw, kw = pooled["chi_square"], pooled["mann_whitney"], pooled["kruskal_wallis"]
    assert f"not run: {chi['reason']}" in html  # no non-PTM issue of known type
    assert f"p = {mw['p']:.3f}" in html
    assert f"ε² = {kw['epsilon_squared']:.3f}" in html
    assert "only/ptm: no closed non-PTM issues" in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;/repo: no closed non-PTM issues" in html
    assert "&lt;script&gt;" in html and "<script>" not in html
    for svg in re.findall(r"<svg.*?</svg>", html, re.S):
        ET.fromstring(svg)
    assert "balanced" not in render_dashboard(compute_stats(records))


@pytest.mark.parametrize(("kinds", "verdict"), [(["bug", "question"] * 6, "groups comparable (p ≥ 0.05)"),
                                                (["bug"] * 12, "type mix differs (p &lt; 0.05)")])
def test_balanced_chi_square_verdict(kinds, verdict):
    records = [IssueRecord("o/r", i, T0, T0 + timedelta(days=i), True, ("MU",), kind) for i, kind in enumerate(kinds)]
    records += [IssueRecord("o/r", 100 + i, T0, T0 + timedelta(days=i), False, (), kind)
                for i, kind in enumerate(["bug", "question"] * 6)]
    balanced = balanced_comparison(records)
    html = render_dashboard(compute_stats(records), balanced=balanced)
    assert f"<strong>{verdict}</strong>" in html
    assert html.count(verdict) == 2  # pooled line and the repository's row
    assert f"χ² = {balanced['pooled']['chi_square']['chi2']:.2f}" in html


def test_balanced_without_any_comparable_repository():
    records = [record("o/r", 1, 3, True, ("MU",))]
    html = render_dashboard(compute_stats(records), balanced=balanced_comparison(records))
    assert "No repository has both closed PTM and closed non-PTM issues." in html
    assert "o/r: no closed non-PTM issues" in html
