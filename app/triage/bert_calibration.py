"""Calibration and decisions of a fine-tuned BERT, fitted on the held-out slice: the pos_weight offsets
taken out, one temperature per head, the stack with the lexical model, per-label thresholds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import overload

import numpy as np
import torch
from scipy.optimize import minimize, minimize_scalar
from sklearn.metrics import f1_score

from app.taxonomy import (
    ISSUE_TYPES,
    SUBTHEME_CODES,
    THEME_CODES,
    theme_of,
)
from app.triage.baseline import BaselineClassifier
from app.triage.bert_artifact import NEVER
from app.triage.bert_config import BertTrainConfig
from app.triage.bert_network import HEADS, MultiTaskBert
from app.triage.bert_scores import lexical_parts, logit
from app.triage.classifier import LABELS, PTM
from app.triage.data import LabeledIssue
from app.triage.normalize import normalize

_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
_THEMES = HEADS["themes"]
_SUBTHEMES = HEADS["subthemes"]


def round_to_storage(model: MultiTaskBert) -> None:
    """Give the trained encoder layers the float16 precision the artifact stores them in."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.requires_grad and "_head." not in name:
                parameter.copy_(parameter.half().float())


def remove_pos_weight_offset(model: MultiTaskBert, pos_weight: np.ndarray, class_weight: np.ndarray | None = None) -> None:
    """A pos_weight ``w`` shifts the optimal logit by ``log w``; take it out of the head biases
    (and a type's class weight out of the type head's, which shifts its softmax logit alike)."""
    offsets = torch.tensor(np.log(pos_weight), dtype=torch.float32)
    with torch.no_grad():
        for head, columns in (
            (model.ptm_head, HEADS["ptm"]),
            (model.theme_head, _THEMES),
            (model.subtheme_head, _SUBTHEMES),
        ):
            head.bias.sub_(offsets[columns].to(head.bias.device))
        if class_weight is not None:
            type_offsets = torch.tensor(np.log(class_weight), dtype=torch.float32)
            model.type_head.bias.sub_(type_offsets.to(model.type_head.bias.device))


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``sigmoid(logits / T)``."""
    if truth.size == 0 or truth.min() == truth.max():
        return 1.0

    def nll(log_t: float) -> float:
        z = logits / math.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, z) - truth * z))

    return round(math.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x), 4)


def fit_temperatures(logits: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """One temperature per head: PTM over all rows, themes and sub-themes over PTM rows."""
    ptm_rows = y[:, 0] == 1
    return {
        "ptm": fit_temperature(logits[:, 0], y[:, 0]),
        "themes": fit_temperature(logits[ptm_rows][:, _THEMES].ravel(), y[ptm_rows][:, _THEMES].ravel()),
        "subthemes": fit_temperature(logits[ptm_rows][:, _SUBTHEMES].ravel(), y[ptm_rows][:, _SUBTHEMES].ravel()),
    }


def _type_nll(s: np.ndarray, t: np.ndarray, w: np.ndarray | None = None) -> float:
    """Class-weighted mean negative log-likelihood of ``softmax(s)`` at ``t``."""
    log_p = s - np.logaddexp.reduce(s, axis=1, keepdims=True)
    weights = np.ones(len(t)) if w is None else w[t]
    return float(-(weights * log_p[np.arange(len(t)), t]).sum() / weights.sum())


def fit_type_temperature(logits: np.ndarray, t: np.ndarray, class_weight: np.ndarray | None = None) -> float:
    """The temperature of ``softmax(logits / T)`` with the least held-out NLL (class-weighted if given)."""
    known = t >= 0
    if known.sum() == 0 or len(np.unique(t[known])) < 2:
        return 1.0
    z, truth = logits[known], t[known]
    fitted = minimize_scalar(lambda log_t: _type_nll(z / math.exp(log_t), truth, class_weight), bounds=(-3.0, 3.0), method="bounded")
    return round(math.exp(fitted.x), 4)


def fit_type_blend(
    bert: np.ndarray, lexical: np.ndarray, t: np.ndarray, class_weight: np.ndarray | None = None
) -> list[float]:
    """``[a, b, c_1, ..., c_k]`` of ``softmax(a * log(bert) + b * log(lexical) + c)`` by held-out NLL
    (class-weighted if given; ``c`` of the first type fixed at 0: softmax ignores a common offset)."""
    known = t >= 0
    default = [1.0, 0.0] + [0.0] * len(ISSUE_TYPES)
    if known.sum() == 0 or len(np.unique(t[known])) < 2:
        return default
    z = np.log(np.clip(bert[known], 1e-6, 1.0))
    b = np.log(np.clip(lexical[known], 1e-6, 1.0))
    truth = t[known]

    def nll(w: np.ndarray) -> float:
        return _type_nll(w[0] * z + w[1] * b + np.concatenate([[0.0], w[2:]]), truth, class_weight)

    start = np.array([1.0, 0.5] + [0.0] * (len(ISSUE_TYPES) - 1))
    fitted = minimize(nll, start, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-7, "maxiter": 4000})
    return [round(float(w), 4) for w in (fitted.x[0], fitted.x[1], 0.0, *fitted.x[2:])]


def best_threshold(scores: np.ndarray, truth: np.ndarray, min_precision: float = 0.0, min_hits: int = 1) -> float:
    """The grid threshold with the best F1 among those meeting the precision and hit floors
    (the middle of a tie); ``NEVER`` when none does."""
    positives = int(truth.sum())
    if positives == 0:
        return NEVER
    predicted = scores[None, :] >= _GRID[:, None]
    hits = (predicted & (truth[None, :] == 1)).sum(axis=1)
    fired = predicted.sum(axis=1)
    f1 = 2 * hits / (fired + positives)
    precision = np.divide(hits, fired, out=np.zeros_like(f1), where=fired > 0)
    ok = (hits >= min_hits) & (precision >= min_precision) & (f1 > 0)
    if not ok.any():
        return NEVER
    best = np.flatnonzero(ok & (f1 >= f1[ok].max() - 1e-12))
    return float(_GRID[best[len(best) // 2]])


def tune_thresholds(p: np.ndarray, y: np.ndarray, config: BertTrainConfig) -> dict[str, float]:
    """PTM for F1; each theme for F1 given the PTM decision; each sub-theme given its theme's
    decision, with at least ``min_subtheme_precision`` and ``min_subtheme_hits``, else it abstains."""
    thresholds = {PTM: best_threshold(p[:, 0], y[:, 0])}
    ptm = p[:, 0] >= thresholds[PTM]
    for j, code in enumerate(THEME_CODES, start=1):
        thresholds[code] = best_threshold(np.where(ptm, p[:, j], 0.0), y[:, j])
    fired = {code: ptm & (p[:, j] >= thresholds[code]) for j, code in enumerate(THEME_CODES, start=1)}
    for j, code in enumerate(SUBTHEME_CODES, start=_SUBTHEMES.start):
        gated = np.where(fired[theme_of(code)], p[:, j], 0.0)
        thresholds[code] = best_threshold(gated, y[:, j], config.min_subtheme_precision, config.min_subtheme_hits)
    return thresholds


def decide(p: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """0/1 decisions with the classifier's gating (themes need PTM, sub-themes their theme)."""
    cut = np.array([thresholds[label] for label in LABELS])
    out = (p >= cut).astype(int)
    out[:, _THEMES] *= out[:, :1]
    theme_col = {code: j for j, code in enumerate(THEME_CODES, start=1)}
    for j, code in enumerate(SUBTHEME_CODES, start=_SUBTHEMES.start):
        out[:, j] *= out[:, theme_col[theme_of(code)]]
    return out


def quick_metrics(p: np.ndarray, y: np.ndarray, thresholds: dict[str, float]) -> dict[str, float]:
    decided = decide(p, thresholds)
    truth = y.astype(int)

    def macro(columns: slice) -> float:
        present = [j for j in range(columns.start, columns.stop) if truth[:, j].any()]
        return float(f1_score(truth[:, present], decided[:, present], average="macro", zero_division=0)) if present else 0.0

    return {
        "ptm_f1": round(float(f1_score(truth[:, 0], decided[:, 0], zero_division=0)), 4),
        "theme_micro_f1": round(float(f1_score(truth[:, _THEMES], decided[:, _THEMES], average="micro", zero_division=0)), 4),
        "theme_macro_f1": round(macro(_THEMES), 4),
        "subtheme_micro_f1": round(
            float(f1_score(truth[:, _SUBTHEMES], decided[:, _SUBTHEMES], average="micro", zero_division=0)), 4
        ),
    }


@overload
def lexical_scores(lexical: BaselineClassifier, issues: Sequence[LabeledIssue]) -> np.ndarray: ...
@overload
def lexical_scores(lexical: None, issues: Sequence[LabeledIssue]) -> None: ...
def lexical_scores(lexical: BaselineClassifier | None, issues: Sequence[LabeledIssue]) -> np.ndarray | None:
    return lexical.scores([normalize(i.title, i.body) for i in issues]) if lexical else None


@overload
def lexical_type_scores(lexical: BaselineClassifier, issues: Sequence[LabeledIssue]) -> np.ndarray: ...
@overload
def lexical_type_scores(lexical: None, issues: Sequence[LabeledIssue]) -> None: ...
def lexical_type_scores(lexical: BaselineClassifier | None, issues: Sequence[LabeledIssue]) -> np.ndarray | None:
    return lexical_parts(lexical, [i.text() for i in issues])[1] if lexical else None


def fit_blend(bert: np.ndarray, lexical: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """Per head, ``[a, b, c]`` of ``sigmoid(a * logit(bert) + b * logit(lexical) + c)`` by held-out NLL
    (PTM over all rows, themes and sub-themes over PTM rows, as the temperatures)."""
    ptm_rows = y[:, 0] == 1
    blend: dict[str, list[float]] = {}
    for head, columns in HEADS.items():
        rows = slice(None) if head == "ptm" else ptm_rows
        z = logit(bert[rows][:, columns]).ravel()
        b = logit(lexical[rows][:, columns]).ravel()
        t = y[rows][:, columns].ravel()
        if t.size == 0 or t.min() == t.max():
            blend[head] = [1.0, 0.0, 0.0]
            continue

        fitted = minimize(
            _stack_nll, np.array([1.0, 0.5, 0.0]), args=(z, b, t), method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-7}
        )
        blend[head] = [round(float(w), 4) for w in fitted.x]
    return blend


def _stack_nll(w: np.ndarray, z: np.ndarray, b: np.ndarray, t: np.ndarray) -> float:
    s = w[0] * z + w[1] * b + w[2]
    return float(np.mean(np.logaddexp(0.0, s) - t * s))
