"""The dashboard: :func:`app.stats.resolution.compute_stats` as one HTML page.

With the output of :func:`app.stats.comparison.balanced_comparison` it also shows
the paper's balanced comparison (sample sizes, the chi-square check of the
issue-type mix, Mann-Whitney U, Kruskal-Wallis H with ε²).

Self-contained (inline CSS, box plots as inline SVG computed here), every piece
of text escaped. Box plots use numpy's default (linear) quartiles, whiskers at
the furthest values within 1.5 IQR of the box, dots for the values beyond, and
a log(1 + days) axis because resolution times are heavily skewed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from app.formatting import NON_PTM_COLOUR, PTM_COLOUR, axis_ticks, corrected_text, fmt_number, fmt_p
from app.stats.resolution import ALPHA, box_summary
from app.stats.results import (
    Balanced,
    ChiSquare,
    ComparisonGroup,
    GroupStats,
    KruskalWallis,
    MannWhitney,
    Stats,
    Summary,
)
from app.taxonomy import THEMES

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:60rem;padding:0 1rem;color:#222;line-height:1.4}
h1{margin-bottom:.2rem}section{border-top:1px solid #ccc;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}th,td{padding:.25rem .6rem;text-align:right}
th:first-child,td:first-child,td.name{text-align:left}thead th{border-bottom:1px solid #999}
.test{margin:.3rem 0}.reason{color:#777}.empty{font-size:1.2rem;color:#555}
svg{display:block;margin:.5rem 0;max-width:100%;height:auto}svg text{font-size:12px;fill:#333}
"""


def render_dashboard(stats: Stats, title: str = "PTM Triage", balanced: Balanced | None = None) -> str:
    """The whole page; a page saying so when no closed issue is tracked yet."""
    overall = stats.get("overall") if stats else None
    parts = [f"<h1>{escape(title)}</h1>"]
    if not overall or not _closed_count(overall):
        parts.append('<p class="empty">No closed issues tracked yet.</p>')
        if overall and any(overall["open"].values()):
            parts.append(_open_line(overall["open"]))
    else:
        repo = stats.get("repo")
        parts.append(_section("overall", repo or "All repositories", overall))
        if balanced is not None:
            parts.append(_balanced_section(balanced))
        if not repo:
            repositories = stats.get("repositories") or {}
            parts.extend(_section(f"repo-{i}", name, group)
                         for i, (name, group) in enumerate(repositories.items(), 1))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def _closed_count(group: GroupStats) -> int:
    """Closed issues, and those left out for their language (the page says how many)."""
    classified: int = group["ptm"]["n"] + group["non_ptm"]["n"]
    return (classified + group["unsure_closed"] + group["unclassified_closed"]
            + int(group["excluded"].get("language", 0)))


def _section(anchor: str, heading: str, group: GroupStats) -> str:
    parts = [f'<section id="{anchor}"><h2>{escape(heading)}</h2>']
    if not _closed_count(group):
        parts += ['<p class="empty">No closed issues tracked yet.</p>', _open_line(group["open"])]
    else:
        parts += [
            _summary_table(group),
            _mann_whitney_line(group["mann_whitney"]),
            '<p class="test"><strong>Corrected for the classifier\'s mistakes</strong>: '
            f'{escape(corrected_text(group["corrected"]))}</p>',
            _groups_plot(group, "Resolution days, PTM vs non-PTM"),
            "<h3>By theme (closed PTM issues)</h3>",
            _kruskal_line(group["kruskal_wallis"]),
            _theme_table(group["themes"]),
            _box_plot([(code, name, group["themes"][code]["days"], PTM_COLOUR)
                       for code, name in THEMES.items() if code in group["themes"]],
                      "Resolution days of PTM issues by theme"),
        ]
    parts.append("</section>")
    return "\n".join(parts)


def _groups_plot(group: GroupStats | ComparisonGroup, caption: str) -> str:
    return _box_plot([("PTM", "PTM issues", group["ptm"]["days"], PTM_COLOUR),
                      ("non-PTM", "non-PTM issues", group["non_ptm"]["days"], NON_PTM_COLOUR)], caption)


def _balanced_section(balanced: Balanced) -> str:
    pooled = balanced["pooled"]
    parts = [
        '<section id="balanced"><h2>Balanced comparison</h2>',
        "<p>As in the paper: per repository, as many closed PTM as closed non-PTM issues sampled at random "
        f"(seed {escape(str(balanced['seed']))}), pooled across repositories.</p>",
    ]
    if not pooled["n_per_group"]:
        parts.append('<p class="empty">No repository has both closed PTM and closed non-PTM issues.</p>')
    else:
        parts += [
            f"<p>{pooled['n_per_group']} PTM and {pooled['n_per_group']} non-PTM closed issues "
            f"(of {pooled['available']['ptm']} and {pooled['available']['non_ptm']}).</p>",
            _chi_square_line(pooled["chi_square"]),
            _mann_whitney_line(pooled["mann_whitney"]),
            _kruskal_line(pooled["kruskal_wallis"]),
            _groups_plot(pooled, "Resolution days, balanced sample, PTM vs non-PTM"),
            _balanced_table(balanced["repositories"]),
        ]
    parts += [_excluded_list(balanced["excluded_repositories"]), "</section>"]
    return "\n".join(part for part in parts if part)


def _balanced_table(repositories: dict[str, ComparisonGroup]) -> str:
    rows = []
    for name, group in repositories.items():
        chi, mw = group["chi_square"], group["mann_whitney"]
        rows.append(_row([
            f'<td class="name">{escape(name)}</td>', f"<td>{group['n_per_group']}</td>",
            f'<td class="name">{escape(chi["verdict"] or "not run")}</td>', f"<td>{fmt_p(chi['p'])}</td>",
            f"<td>{fmt_p(mw['p'])}</td>", f"<td>{fmt_number(mw['cliffs_delta'], 3)}</td>",
        ]))
    return (
        '<table class="balanced"><thead><tr><th>Repository</th><th>Per group</th><th>Issue types</th>'
        "<th>χ² p</th><th>MWU p</th><th>Cliff's delta</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _excluded_list(excluded: dict[str, str]) -> str:
    if not excluded:
        return ""
    items = "".join(f"<li>{escape(name)}: {escape(reason)}</li>" for name, reason in excluded.items())
    return f"<p>Left out:</p><ul>{items}</ul>"


def _chi_square_line(test: ChiSquare) -> str:
    head = "<strong>Chi-square</strong> (issue-type mix, PTM vs non-PTM): "
    warning = f' <span class="reason">Warning: {escape(test["warning"])}.</span>' if test["warning"] else ""
    if test["p"] is None:
        return f'<p class="test">{head}<span class="reason">not run: {escape(str(test["reason"]))}</span>{warning}</p>'
    return (
        f'<p class="test">{head}<strong>{escape(str(test["verdict"]))}</strong>: χ² = {fmt_number(test["chi2"], 2)}, '
        f"dof = {test['dof']}, p = {fmt_p(test['p'])} ({len(test['types'])} types, n = {test['n']}){warning}</p>"
    )


def _row(cells: Sequence[str]) -> str:
    return "<tr>" + "".join(cells) + "</tr>"


def _desc_cells(desc: Summary) -> list[str]:
    return [f"<td>{fmt_number(desc[key])}</td>" for key in ("n", "mean", "median", "p90", "max")]


def _summary_table(group: GroupStats) -> str:
    opened = group["open"]
    rows = [
        _row(["<td>PTM</td>", *_desc_cells(group["ptm"]), f"<td>{opened['ptm']}</td>"]),
        _row(["<td>non-PTM</td>", *_desc_cells(group["non_ptm"]), f"<td>{opened['non_ptm']}</td>"]),
        _row(["<td>the model was unsure</td>", f"<td>{group['unsure_closed']}</td>",
              "<td>—</td>", "<td>—</td>", "<td>—</td>", "<td>—</td>", f"<td>{opened['unsure']}</td>"]),
        _row(["<td>not classified yet</td>", f"<td>{group['unclassified_closed']}</td>",
              "<td>—</td>", "<td>—</td>", "<td>—</td>", "<td>—</td>", f"<td>{opened['unclassified']}</td>"]),
    ]
    unreadable = group["excluded"].get("language", 0)
    left_out = (f"<p>Left out: {unreadable} issue{'s' * (unreadable != 1)} in a language the model "
                "cannot read (labelled for a person to triage).</p>") if unreadable else ""
    return (
        '<table class="summary"><thead><tr><th>Issues</th><th>Closed</th><th>Mean days</th>'
        "<th>Median days</th><th>90th pct days</th><th>Max days</th><th>Open</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>" + left_out
    )


def _theme_table(themes: dict[str, Summary]) -> str:
    rows = [
        _row([f"<td>{escape(code)}</td>", f'<td class="name">{escape(name)}</td>', *_desc_cells(themes[code])])
        for code, name in THEMES.items() if code in themes
    ]
    return (
        '<table class="themes"><thead><tr><th>Code</th><th>Theme</th><th>Closed</th><th>Mean days</th>'
        "<th>Median days</th><th>90th pct days</th><th>Max days</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>"
    )


def _verdict(p: float) -> str:
    return f"significant at α = {ALPHA}" if p < ALPHA else f"not significant at α = {ALPHA}"


def _mann_whitney_line(test: MannWhitney) -> str:
    head = "<strong>Mann-Whitney U</strong> (one-sided, PTM resolution times greater than non-PTM): "
    if test["p"] is None:
        return f'<p class="test">{head}<span class="reason">not run: {escape(str(test["reason"]))}</span></p>'
    return (
        f'<p class="test">{head}U = {fmt_number(test["u"])}, p = {fmt_p(test["p"])} ({_verdict(test["p"])}), '
        f"Cliff's delta = {fmt_number(test['cliffs_delta'], 3)} "
        f"(PTM n = {test['n_ptm']}, non-PTM n = {test['n_non_ptm']})</p>"
    )


def _kruskal_line(test: KruskalWallis) -> str:
    head = "<strong>Kruskal-Wallis H</strong> across themes: "
    if test["p"] is None:
        return f'<p class="test">{head}<span class="reason">not run: {escape(str(test["reason"]))}</span></p>'
    return (
        f'<p class="test">{head}H = {fmt_number(test["h"], 2)}, p = {fmt_p(test["p"])} ({_verdict(test["p"])}), '
        f"{test['groups']} themes{_epsilon(test)}</p>"
    )


def _epsilon(test: KruskalWallis) -> str:
    value = test.get("epsilon_squared")
    return "" if value is None else f", ε² = {fmt_number(value, 3)}"


def _open_line(opened: dict[str, int]) -> str:
    return (
        f"<p>Open issues: PTM {opened['ptm']}, non-PTM {opened['non_ptm']}, "
        f"the model was unsure {opened['unsure']}, not classified yet {opened['unclassified']}.</p>"
    )


_WIDTH, _LEFT, _RIGHT, _ROW, _AXIS, _HALF_BOX = 720, 150, 20, 34, 34, 10


def _box_plot(rows: Sequence[tuple[str, str, Sequence[int], str]], caption: str) -> str:
    """A horizontal box plot, one row per (label, full name, days, colour)."""
    ticks = axis_ticks(max((max(days) for _, _, days, _ in rows if days), default=1))
    span = math.log1p(ticks[-1])
    plot_width = _WIDTH - _LEFT - _RIGHT

    def x(value: float) -> float:
        return round(_LEFT + plot_width * math.log1p(value) / span, 1)

    height = _ROW * len(rows) + _AXIS
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" '
             f'height="{height}" role="img" aria-label="{escape(caption)}"><title>{escape(caption)}</title>']
    for i, (label, name, days, colour) in enumerate(rows):
        parts.append(_box_row(i * _ROW + _ROW // 2, label, name, days, colour, x))
    axis_y = _ROW * len(rows) + 4
    parts.append(f'<line x1="{_LEFT}" y1="{axis_y}" x2="{_WIDTH - _RIGHT}" y2="{axis_y}" stroke="#333"/>')
    for tick in ticks:
        parts.append(f'<line x1="{x(tick)}" y1="{axis_y}" x2="{x(tick)}" y2="{axis_y + 4}" stroke="#333"/>'
                     f'<text x="{x(tick)}" y="{axis_y + 16}" text-anchor="middle">{tick}</text>')
    parts.append(f'<text x="{_LEFT - 10}" y="{axis_y + 16}" text-anchor="end">days (log scale)</text></svg>')
    return "".join(parts)


def _box_row(cy: int, label: str, name: str, days: Sequence[int], colour: str, x: Callable[[float], float]) -> str:
    parts = [f'<g><title>{escape(name)}</title>'
             f'<text x="{_LEFT - 10}" y="{cy + 4}" text-anchor="end">{escape(label)} (n={len(days)})</text>']
    box = box_summary(days)
    if box is None:
        parts.append(f'<text x="{_LEFT + 6}" y="{cy + 4}" fill="#777">no closed issues</text></g>')
        return "".join(parts)
    half = _HALF_BOX
    left, right = x(box.q1), x(box.q3)
    parts += [
        f'<line x1="{x(box.low)}" y1="{cy}" x2="{x(box.high)}" y2="{cy}" stroke="#333"/>',
        *(f'<line x1="{x(end)}" y1="{cy - half // 2}" x2="{x(end)}" y2="{cy + half // 2}" stroke="#333"/>'
          for end in (box.low, box.high)),
        f'<rect x="{left}" y="{cy - half}" width="{max(right - left, 1):.1f}" height="{2 * half}" '
        f'fill="{colour}" fill-opacity="0.45" stroke="{colour}"><title>{escape(name)}: '
        f"Q1 {box.q1:g}, median {box.median:g}, Q3 {box.q3:g} days</title></rect>",
        f'<line x1="{x(box.median)}" y1="{cy - half}" x2="{x(box.median)}" y2="{cy + half}" '
        f'stroke="#222" stroke-width="2"/>',
        *(f'<circle cx="{x(d)}" cy="{cy}" r="3" fill="none" stroke="{colour}"><title>{d} days</title></circle>'
          for d in box.outliers),
        "</g>",
    ]
    return "".join(parts)
