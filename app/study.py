"""The paper's RQ2 study, offline: a JSONL file of issues in, a report directory out.

Each input line is a JSON object with ``repo``, ``number`` (or ``id``, an
integer), ``title``, ``body``, ``created`` and ``closed`` (ISO date or
datetime; ``closed`` null while open) and optional labels: ``ptm`` (bool),
``themes`` and ``subthemes`` (codes of ``app.taxonomy``), ``type`` (bug,
enhancement, question...). A label that is absent or null is missing.

With a classifier, every issue missing ``ptm``, ``themes`` or ``type`` is
classified and its missing labels are taken from the prediction (``type`` from
``prediction.extra["type"]`` when the model predicts one, else unknown;
sub-themes only together with themes). Without one, an issue missing ``ptm`` is
an error. Themes implied by the sub-themes are added; non-PTM issues keep no
themes.

The output directory gets ``report.md``, ``report.json`` (the raw statistics
of :func:`app.stats.resolution.compute_stats` and the balanced comparison of
:func:`app.stats.comparison.balanced_comparison`) and two PNG figures.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, overload

from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator
from tqdm import tqdm

from app.formatting import NON_PTM_COLOUR, PTM_COLOUR, axis_ticks, corrected_text, fmt_number, fmt_p
from app.stats.comparison import balanced_comparison
from app.stats.resolution import ALPHA, IssueRecord, compute_stats
from app.taxonomy import SUBTHEMES, THEME_CODES, THEMES, theme_of
from app.triage.classifier import Classifier, IssueText, Prediction
from app.triage.data import read_jsonl

BATCH_SIZE = 64
REPORT_MD = "report.md"
REPORT_JSON = "report.json"
FIGURE_GROUPS = "resolution-ptm-vs-non-ptm.png"
FIGURE_THEMES = "resolution-by-theme.png"
SKEW_RATIO = 10
"""A figure gets a log-scale axis when its largest time exceeds this many times (median + 1)."""


@dataclass(frozen=True)
class StudyIssue:
    """One input line: the record with the labels it has, and which labels it lacks."""

    line: int
    record: IssueRecord
    text: IssueText
    missing: frozenset[str]


def run_study(input_path: Path, output_dir: Path, classifier: Classifier | None, *,
              seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Read, classify what is unlabelled, compare, and write the report; returns what report.json holds."""
    input_path, output_dir = Path(input_path), Path(output_dir)
    issues = read_issues(input_path)
    pending = [k for k, i in enumerate(issues) if "ptm" in i.missing or (classifier is not None and i.missing)]
    predicted: dict[int, Prediction] = {}
    if pending:
        if classifier is None:
            raise ValueError(f"{input_path}:{issues[pending[0]].line}: no 'ptm' label and no classifier given "
                             f"({len(pending)} issue(s) without one)")
        predicted = dict(zip(pending, classify(classifier, [issues[k] for k in pending], progress), strict=True))
    records = [labelled(issue, predicted.get(k)) for k, issue in enumerate(issues)]
    result: dict[str, Any] = {
        "input": input_path.name,
        "issues": len(records),
        "classified": len(pending),
        "model": classifier.version if pending and classifier is not None else None,
        "seed": seed,
        "raw": compute_stats(records, now=latest_moment(records)),
        "balanced": balanced_comparison(records, seed=seed),
        "figures": [FIGURE_GROUPS, FIGURE_THEMES],
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / REPORT_JSON).write_text(json.dumps(result, allow_nan=False, ensure_ascii=False, indent=1) + "\n",
                                          encoding="utf-8")
    (output_dir / REPORT_MD).write_text(report_markdown(result), encoding="utf-8")
    write_figures(result["balanced"]["pooled"], output_dir)
    return result


def latest_moment(records: Sequence[IssueRecord]) -> datetime | None:
    """The last creation or closure in the data: open issues' ages are taken then, so a report
    on the same file is the same whatever day it is written."""
    moments = [m for r in records for m in (r.created, r.closed) if m is not None]
    return max(moments, default=None)


# Input

def read_issues(path: Path) -> list[StudyIssue]:
    issues: list[StudyIssue] = []
    seen: dict[tuple[str, int], int] = {}
    for lineno, fields in read_jsonl(path):
        try:
            issue = parse_issue(fields, lineno)
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: {exc}") from exc
        key = (issue.record.repo.casefold(), issue.record.number)
        if key in seen:
            raise ValueError(f"{path}:{lineno}: {issue.record.repo}#{issue.record.number} "
                             f"already on line {seen[key]}")
        seen[key] = lineno
        issues.append(issue)
    return issues


def parse_issue(fields: dict[str, Any], lineno: int) -> StudyIssue:
    repo = fields.get("repo")
    if not isinstance(repo, str) or not repo.strip():
        raise ValueError("'repo' must be a non-empty string")
    ptm = _optional(fields, "ptm", bool)
    themes = _codes(fields, "themes")
    subthemes = _codes(fields, "subthemes")
    kind = _optional(fields, "type", str)
    record = IssueRecord(
        repo=repo.strip(), number=_number(fields), created=_moment(fields, "created", required=True),
        closed=_moment(fields, "closed", required=False), ptm=ptm, themes=themes or (),
        type=(kind.strip().lower() or None) if kind is not None else None, subthemes=subthemes or (),
    )
    missing = frozenset(name for name, value in (("ptm", ptm), ("themes", themes), ("type", kind)) if value is None)
    text = IssueText(title=_optional(fields, "title", str) or "", body=_optional(fields, "body", str) or "")
    return StudyIssue(lineno, record, text, missing)


def _optional(fields: dict[str, Any], key: str, kind: type) -> Any:
    value = fields.get(key)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"{key!r} must be a {kind.__name__} or null")
    return value


def _number(fields: dict[str, Any]) -> int:
    key = "number" if fields.get("number") is not None else "id"
    value = fields.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"'number' (or 'id') must be an integer, got {value!r}")
    return value


def _codes(fields: dict[str, Any], key: str) -> tuple[str, ...] | None:
    value = fields.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        raise ValueError(f"{key!r} must be a list of codes or null")
    return tuple(value)


@overload
def _moment(fields: dict[str, Any], key: str, *, required: Literal[True]) -> datetime: ...
@overload
def _moment(fields: dict[str, Any], key: str, *, required: Literal[False]) -> datetime | None: ...
def _moment(fields: dict[str, Any], key: str, *, required: bool) -> datetime | None:
    value = fields.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be an ISO date or datetime{'' if required else ' or null'}")
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{key!r} is not an ISO date or datetime: {value!r}") from exc


# Classification

def classify(classifier: Classifier, issues: Sequence[StudyIssue], progress: bool) -> Iterator[Prediction]:
    with tqdm(total=len(issues), desc="classifying", unit="issue", disable=not progress) as bar:
        for start in range(0, len(issues), BATCH_SIZE):
            texts = [i.text for i in issues[start:start + BATCH_SIZE]]
            predictions = classifier.predict(texts)
            if len(predictions) != len(texts):
                raise ValueError(f"classifier returned {len(predictions)} predictions for {len(texts)} texts")
            yield from predictions
            bar.update(len(texts))


def labelled(issue: StudyIssue, prediction: Prediction | None) -> IssueRecord:
    """The record with its missing labels taken from ``prediction``, themes completed from sub-themes."""
    record = issue.record
    if prediction is not None:
        predicted_type = prediction.extra.get("type")
        themes_missing = "themes" in issue.missing
        record = replace(
            record,
            ptm=prediction.ptm if "ptm" in issue.missing else record.ptm,
            ptm_probability=prediction.ptm_score if "ptm" in issue.missing else None,
            type=predicted_type if "type" in issue.missing and isinstance(predicted_type, str) else record.type,
            themes=prediction.themes if themes_missing else record.themes,
            subthemes=prediction.subthemes if themes_missing else record.subthemes,
        )
    if not record.ptm:
        return replace(record, themes=(), subthemes=())
    implied = {*record.themes, *map(theme_of, record.subthemes)}
    return replace(record, themes=tuple(code for code in THEME_CODES if code in implied))


# Figures

def write_figures(pooled: dict[str, Any], output_dir: Path) -> None:
    _box_figure(
        [("PTM", pooled["ptm"]["days"], PTM_COLOUR), ("non-PTM", pooled["non_ptm"]["days"], NON_PTM_COLOUR)],
        f"Resolution time, balanced sample ({pooled['n_per_group']} issues per group)",
        output_dir / FIGURE_GROUPS, width=5.5,
    )
    _box_figure(
        [(code, pooled["themes"][code]["days"], PTM_COLOUR) for code in THEME_CODES],
        "Resolution time of balanced PTM issues by theme",
        output_dir / FIGURE_THEMES, width=8,
    )


def _box_figure(groups: Sequence[tuple[str, Sequence[int], str]], title: str, path: Path, width: float) -> None:
    figure = Figure(figsize=(width, 4.5), layout="constrained")
    axes = figure.add_subplot()
    present = [(label, days, colour) for label, days, colour in groups if days]
    if present:
        boxes = axes.boxplot([days for _, days, _ in present], showmeans=True, patch_artist=True,
                             medianprops={"color": "#222"},
                             meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "#222"})
        for patch, (_, _, colour) in zip(boxes["boxes"], present, strict=True):
            patch.set(facecolor=colour, alpha=0.6)
        axes.set_xticks(range(1, len(present) + 1), [f"{label}\n(n={len(days)})" for label, days, _ in present])
        _day_axis(axes, sorted(day for _, days, _ in present for day in days))
    else:
        axes.text(0.5, 0.5, "no closed issues in the balanced sample", ha="center", va="center",
                  transform=axes.transAxes)
        axes.set_axis_off()
    axes.set_title(title)
    figure.savefig(path, dpi=110)


def _day_axis(axes: Any, ordered: Sequence[int]) -> None:
    """A log-like axis (linear below 1 day, so 0 shows) with 0-1-2-5 ticks when the times are skewed."""
    if ordered[-1] <= SKEW_RATIO * (ordered[len(ordered) // 2] + 1):
        axes.set_ylabel("days to close (◇ = mean)")
        return
    ticks = axis_ticks(ordered[-1])
    axes.set_yscale("symlog", linthresh=1, linscale=0.5)
    axes.set_ylim(0, ticks[-1])
    axes.set_yticks(ticks, [str(tick) for tick in ticks])
    axes.yaxis.set_minor_locator(NullLocator())
    axes.set_ylabel("days to close (log scale; ◇ = mean)")


# Report

def report_markdown(result: dict[str, Any]) -> str:
    balanced, raw = result["balanced"], result["raw"]
    lines = [
        "# PTM Triage study: resolution time of PTM and non-PTM issues",
        "",
        _dataset_line(result),
        "",
        *_METHOD,
        "",
        "## Pooled over all repositories",
        "",
        *_group_report(balanced["pooled"], raw["overall"]),
        "",
        f"![Resolution time, PTM vs non-PTM]({FIGURE_GROUPS})",
        "",
        f"![Resolution time by theme]({FIGURE_THEMES})",
        "",
        "## Per repository",
        "",
        *_repository_table(balanced, raw),
    ]
    for name, group in balanced["repositories"].items():
        lines += ["", f"### {name}", "", *_group_report(group, raw["repositories"][name])]
    return "\n".join(lines) + "\n"


_METHOD = [
    "## Method",
    "",
    "As in the paper's RQ2: resolution time is the number of whole (UTC) days from an issue's creation "
    "to its closure. Per repository, an equal number of closed PTM and closed non-PTM issues is sampled "
    "at random (seeded): as many as the smaller group has, the larger one reduced to match; repositories "
    "where a group has no closed issue are left out. On the balanced sample, pooled and per repository:",
    "",
    "- a chi-square test of independence of issue types (bug / enhancement / question) between the two "
    f"groups; the groups count as comparable when p ≥ {ALPHA} (issues of unknown type are left out);",
    f"- a one-sided Mann-Whitney U test (PTM resolution times greater), α = {ALPHA}, with Cliff's delta;",
    "- a Kruskal-Wallis H test across the themes of the PTM issues (an issue counts in each of its themes), "
    "with ε² = H·(n+1)/(n²−1);",
    "- mean / median / max days per theme and sub-theme.",
    "",
    "The raw comparison (every closed issue, no sampling) is shown beside the balanced one.",
]


def _dataset_line(result: dict[str, Any]) -> str:
    overall = result["raw"]["overall"]
    source = (f"{result['classified']} classified by `{result['model']}`, the rest labelled in the input"
              if result["classified"] else "all labelled in the input")
    return (
        f"Input `{result['input']}`: {result['issues']} issues in {len(result['raw']['repositories'])} "
        f"repositories ({source}); closed: {overall['ptm']['n']} PTM, {overall['non_ptm']['n']} non-PTM; "
        f"open: {sum(overall['open'].values())}. Sampling seed {result['seed']}."
    )


def _group_report(group: dict[str, Any], raw: dict[str, Any]) -> list[str]:
    return [
        f"Balanced sample: {group['n_per_group']} PTM and {group['n_per_group']} non-PTM closed issues "
        f"(of {group['available']['ptm']} and {group['available']['non_ptm']}).",
        "",
        "| Days to close | n | mean | median | max |",
        "|---|--:|--:|--:|--:|",
        _desc_row("PTM, balanced", group["ptm"]),
        _desc_row("non-PTM, balanced", group["non_ptm"]),
        _desc_row("PTM, raw", raw["ptm"]),
        _desc_row("non-PTM, raw", raw["non_ptm"]),
        "",
        f"- Issue types: {_chi_square_text(group['chi_square'], group['type_mix'])}",
        f"- Mann-Whitney U, balanced: {_mann_whitney_text(group['mann_whitney'])}",
        f"- Mann-Whitney U, raw: {_mann_whitney_text(raw['mann_whitney'])}",
        f"- Corrected for the classifier's mistakes, raw: {corrected_text(raw['corrected'])}",
        f"- Kruskal-Wallis H across themes, balanced: {_kruskal_text(group['kruskal_wallis'])}",
        "",
        *_code_table("Theme", THEMES, group["themes"]),
        "",
        *_code_table("Sub-theme", SUBTHEMES, group["subthemes"]),
    ]


def _desc_row(name: str, desc: dict[str, Any]) -> str:
    return f"| {name} | {desc['n']} | {fmt_number(desc['mean'])} | {fmt_number(desc['median'])} | " \
           f"{fmt_number(desc['max'])} |"


def _code_table(heading: str, names: dict[str, str], descs: dict[str, dict[str, Any]]) -> list[str]:
    rows = [_desc_row(f"{code} {names[code]}", desc) for code, desc in descs.items() if desc["n"]]
    if not rows:
        return [f"No closed PTM issue with a {heading.lower()} in the balanced sample."]
    return [f"| {heading} (balanced PTM issues) | n | mean | median | max |", "|---|--:|--:|--:|--:|", *rows]


def _mix_text(mix: dict[str, dict[str, int]]) -> str:
    return "; ".join(f"{group} " + (", ".join(f"{t} {n}" for t, n in counts.items()) or "none")
                     for group, counts in (("PTM", mix["ptm"]), ("non-PTM", mix["non_ptm"])))


def _chi_square_text(test: dict[str, Any], mix: dict[str, dict[str, int]]) -> str:
    if test["p"] is None:
        text = f"chi-square not run: {test['reason']}"
    else:
        text = (f"**{test['verdict']}**: χ² = {fmt_number(test['chi2'], 2)}, dof = {test['dof']}, "
                f"p = {fmt_p(test['p'])}")
    if test["comparable"] is False:
        text += "; the difference in resolution time may partly reflect the issue types"
    warning = f" Warning: {test['warning']}." if test["warning"] else ""
    return f"{text} ({_mix_text(mix)}).{warning}"


def _mann_whitney_text(test: dict[str, Any]) -> str:
    if test["p"] is None:
        return f"not run: {test['reason']}"
    verdict = "PTM significantly slower" if test["p"] < ALPHA else "no significant difference"
    return (f"{verdict} (one-sided p = {fmt_p(test['p'])}, U = {fmt_number(test['u'])}, "
            f"Cliff's delta = {fmt_number(test['cliffs_delta'], 3)}, n = {test['n_ptm']} / {test['n_non_ptm']})")


def _kruskal_text(test: dict[str, Any]) -> str:
    if test["p"] is None:
        return f"not run: {test['reason']}"
    verdict = "themes differ" if test["p"] < ALPHA else "no significant difference between themes"
    return (f"{verdict} (H = {fmt_number(test['h'], 2)}, p = {fmt_p(test['p'])}, "
            f"ε² = {fmt_number(test['epsilon_squared'], 3)}, {test['groups']} themes, n = {test['n']})")


def _repository_table(balanced: dict[str, Any], raw: dict[str, Any]) -> list[str]:
    rows = []
    for name, group in balanced["repositories"].items():
        chi, mw = group["chi_square"], group["mann_whitney"]
        rows.append(
            f"| {name} | {group['n_per_group']} | {chi['verdict'] or 'not run'} "
            f"| {fmt_p(chi['p'])} | {fmt_p(mw['p'])} | {fmt_number(mw['cliffs_delta'], 3)} "
            f"| {fmt_p(raw['repositories'][name]['mann_whitney']['p'])} |"
        )
    table = ["| Repository | n per group | issue types | χ² p | MWU p (balanced) | Cliff's delta | MWU p (raw) |",
             "|---|--:|---|--:|--:|--:|--:|", *rows] if rows else ["No repository has closed PTM and non-PTM issues."]
    excluded = [f"- {name}: left out, {reason}" for name, reason in balanced["excluded_repositories"].items()]
    return table + ([""] + excluded if excluded else [])
