"""Scores of a classifier against annotated issues, as a JSON-ready dict and a text table.

Theme and sub-theme figures are over all issues: a non-PTM issue has no themes,
and a classifier's themes count only as it returns them (the baseline gives none
to issues it calls non-PTM), so PTM mistakes show up in the theme figures too.
Macro-F1 averages over the labels with support in ``issues`` (for themes and
sub-themes alike); micro-F1 counts every label. ``themes_on_ptm`` repeats the
theme figures over the issues annotated PTM-related only: how well the theme head
does where themes exist, apart from the PTM decision's mistakes.

``false_positive_rate`` is the share of the non-PTM issues called PTM-related, for all
of them and apart for those the annotator labelled with high confidence and the rest
(the ordinary issues of AI applications, where labels are least certain); it decides
precision where PTM issues are a minority. ``abstained`` counts the predictions
withdrawn for a reason of their own (a language the model cannot read) and how many of
those the annotators called PTM-related.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support, roc_auc_score

from app.taxonomy import ISSUE_TYPES, SUBTHEME_CODES, THEME_CODES
from app.triage.classifier import Classifier, Prediction
from app.triage.data import LabeledIssue


def evaluate(classifier: Classifier, issues: Sequence[LabeledIssue], batch_size: int = 64) -> dict[str, Any]:
    if not issues:
        raise ValueError("no issues to evaluate on")
    predictions = predict_all(classifier, issues, batch_size)
    truth_ptm = np.array([i.ptm for i in issues], dtype=int)
    pred_ptm = np.array([p.ptm for p in predictions], dtype=int)
    scores = np.array([p.ptm_score for p in predictions])
    ptm = _binary(truth_ptm, pred_ptm)
    ptm["roc_auc"] = _round(roc_auc_score(truth_ptm, scores)) if 0 < truth_ptm.sum() < len(issues) else None
    return {
        "model": classifier.version,
        "n": len(issues),
        "ptm": ptm,
        "themes": _multilabel(
            THEME_CODES, [i.themes for i in issues], [p.themes for p in predictions]
        ),
        "themes_on_ptm": _multilabel(
            THEME_CODES,
            [i.themes for i in issues if i.ptm],
            [p.themes for i, p in zip(issues, predictions, strict=True) if i.ptm],
        ) if truth_ptm.any() else None,
        "subthemes": _multilabel(
            SUBTHEME_CODES, [i.subthemes for i in issues], [p.subthemes for p in predictions]
        ),
        "types": _types(issues, predictions),
        "false_positive_rate": _false_positive_rates(issues, pred_ptm),
        "abstained": _abstained(issues, predictions),
    }


def _false_positive_rates(issues: Sequence[LabeledIssue], pred_ptm: np.ndarray) -> dict[str, dict[str, Any]]:
    groups: dict[str, Callable[[LabeledIssue], bool]] = {
        "all": lambda i: True, "high_confidence": lambda i: i.confidence == "high",
        "other": lambda i: i.confidence != "high"}
    rates = {}
    for name, member in groups.items():
        called = [int(pred_ptm[j]) for j, issue in enumerate(issues) if not issue.ptm and member(issue)]
        rates[name] = {"n": len(called), "rate": _round(np.mean(called)) if called else None}
    return rates


def _abstained(issues: Sequence[LabeledIssue], predictions: Sequence[Prediction]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for issue, prediction in zip(issues, predictions, strict=True):
        if prediction.abstain_reason is not None:
            entry = counts.setdefault(prediction.abstain_reason, {"n": 0, "annotated_ptm": 0})
            entry["n"] += 1
            entry["annotated_ptm"] += int(issue.ptm)
    return counts


def _types(issues: Sequence[LabeledIssue], predictions: Sequence[Prediction]) -> dict[str, Any] | None:
    """Issue-type figures over the issues with a known type; None when the model has no type head."""
    pairs = [(i.type, p.extra.get("type")) for i, p in zip(issues, predictions, strict=True) if i.type in ISSUE_TYPES]
    if not pairs or any(predicted is None for _, predicted in pairs):
        return None
    truth, predicted = zip(*pairs, strict=True)
    p, r, f, support = precision_recall_fscore_support(
        truth, predicted, labels=list(ISSUE_TYPES), average=None, zero_division=0
    )
    return {
        "n": len(pairs),
        "accuracy": _round(np.mean([t == q for t, q in pairs])),
        "macro_f1": _round(np.mean(f)),
        "per_label": {
            kind: {"precision": _round(p[j]), "recall": _round(r[j]), "f1": _round(f[j]), "support": int(support[j])}
            for j, kind in enumerate(ISSUE_TYPES)
        },
    }


def predict_all(classifier: Classifier, issues: Sequence[LabeledIssue], batch_size: int = 64) -> list[Prediction]:
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    predictions: list[Prediction] = []
    for start in range(0, len(issues), batch_size):
        batch = [issue.text() for issue in issues[start : start + batch_size]]
        predictions.extend(classifier.predict(batch))
    if len(predictions) != len(issues):
        raise ValueError(f"classifier returned {len(predictions)} predictions for {len(issues)} issues")
    return predictions


def format_report(result: dict[str, Any]) -> str:
    ptm = result["ptm"]
    auc = "n/a" if ptm["roc_auc"] is None else f"{ptm['roc_auc']:.3f}"
    lines = [
        f"model {result['model']}  n={result['n']}",
        "",
        f"PTM-related  P {ptm['precision']:.3f}  R {ptm['recall']:.3f}  "
        f"F1 {ptm['f1']:.3f}  support {ptm['support']}  ROC-AUC {auc}",
        "false-positive rate on non-PTM issues: " + "  ".join(
            f"{name.replace('_', ' ')} {_fraction(m['rate'])} (n={m['n']})"
            for name, m in result["false_positive_rate"].items()),
        *(f"abstained, {reason}: {m['n']} ({m['annotated_ptm']} annotated PTM-related)"
          for reason, m in result["abstained"].items()),
    ]
    for key, title in (("themes", "Themes"), ("subthemes", "Sub-themes")):
        block = result[key]
        lines += [
            "",
            f"{title}: micro-F1 {block['micro_f1']:.3f}  macro-F1 {block['macro_f1']:.3f}",
        ]
        lines += _per_label_lines(block["per_label"])
        if key == "themes" and result.get("themes_on_ptm"):
            on_ptm = result["themes_on_ptm"]
            lines.append(f"on the {ptm['support']} PTM-related issues only: micro-F1 {on_ptm['micro_f1']:.3f}  "
                         f"macro-F1 {on_ptm['macro_f1']:.3f}")
    types = result.get("types")
    if types:
        lines += ["", f"Issue types: macro-F1 {types['macro_f1']:.3f}  accuracy {types['accuracy']:.3f}  "
                      f"n={types['n']}", *_per_label_lines(types["per_label"], width=12)]
    return "\n".join(lines)


def _fraction(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _per_label_lines(per_label: dict[str, dict[str, Any]], width: int = 7) -> list[str]:
    head = f"{'label':<{width}}{'P':>7}{'R':>7}{'F1':>7}{'support':>9}"
    return [head] + [
        f"{code:<{width}}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}{m['support']:>9}"
        for code, m in per_label.items()
    ]


def _binary(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    p, r, f, _ = precision_recall_fscore_support(truth, predicted, average="binary", zero_division=0)
    return {"precision": _round(p), "recall": _round(r), "f1": _round(f), "support": int(truth.sum())}


def _multilabel(
    codes: Sequence[str], truth: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]
) -> dict[str, Any]:
    y_true, y_pred = _indicator(codes, truth), _indicator(codes, predicted)
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    present = [j for j, s in enumerate(support) if s > 0]
    macro = f1_score(y_true[:, present], y_pred[:, present], average="macro", zero_division=0) if present else 0.0
    return {
        "micro_f1": _round(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "macro_f1": _round(macro),
        "per_label": {
            code: {"precision": _round(p[j]), "recall": _round(r[j]), "f1": _round(f[j]), "support": int(support[j])}
            for j, code in enumerate(codes)
        },
    }


def _indicator(codes: Sequence[str], rows: Sequence[Sequence[str]]) -> np.ndarray:
    index = {code: j for j, code in enumerate(codes)}
    matrix = np.zeros((len(rows), len(codes)), dtype=int)
    for i, row in enumerate(rows):
        for code in row:
            if code not in index:
                raise ValueError(f"unknown label code {code!r}")
            matrix[i, index[code]] = 1
    return matrix


def _round(value: float | np.floating[Any]) -> float:
    return round(float(value), 4)


COMPARED = (
    ("PTM F1", ("ptm", "f1")), ("PTM ROC-AUC", ("ptm", "roc_auc")),
    ("theme micro-F1", ("themes", "micro_f1")), ("theme macro-F1", ("themes", "macro_f1")),
    ("  on PTM issues", ("themes_on_ptm", "micro_f1")),
    ("sub-theme micro-F1", ("subthemes", "micro_f1")), ("sub-theme macro-F1", ("subthemes", "macro_f1")),
    ("type macro-F1", ("types", "macro_f1")),
    ("non-PTM FP rate", ("false_positive_rate", "all", "rate")),
)


def format_comparison(results: Sequence[dict[str, Any]]) -> str:
    """Models side by side on the same issues."""
    width = max(len(r["model"]) for r in results) + 2
    lines = [f"{'':<20}" + "".join(f"{r['model']:>{width}}" for r in results)]
    for title, path in COMPARED:
        cells = []
        for result in results:
            value: Any = result
            for key in path:
                value = (value or {}).get(key)
            cells.append(f"{_fraction(value):>{width}}")
        lines.append(f"{title:<20}" + "".join(cells))
    return "\n".join(lines)
