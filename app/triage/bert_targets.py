"""What the BERT learns from an annotated issue (label and type targets, their weights) and the
seeded held-out slice everything after training is fitted on."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import train_test_split

from app.taxonomy import (
    ISSUE_TYPES,
)
from app.triage.baseline import label_matrix
from app.triage.bert_config import BertTrainConfig
from app.triage.classifier import LABELS
from app.triage.data import LabeledIssue


def holdout_split(issues: Sequence[LabeledIssue], config: BertTrainConfig) -> tuple[list[int], list[int]]:
    """Row indices to fit on and to hold out: a split stratified by PTM, seeded by ``config.split_seed``.

    With ``config.fit_fraction`` below 1 the fitting rows are a stratified subset of that share
    (the same held-out rows, so the points of a learning curve are tuned and compared alike)."""
    if not 0.0 < config.fit_fraction <= 1.0:
        raise ValueError(f"fit_fraction must be in (0, 1], got {config.fit_fraction}")
    rows = np.arange(len(issues))
    ptm = np.array([i.ptm for i in issues])
    fit, hold = train_test_split(rows, test_size=config.holdout, stratify=ptm, random_state=config.split_seed)
    if config.fit_fraction < 1.0:
        fit, _ = train_test_split(fit, train_size=config.fit_fraction, stratify=ptm[fit], random_state=config.split_seed)
    return sorted(fit.tolist()), sorted(hold.tolist())


def targets(issues: Sequence[LabeledIssue]) -> np.ndarray:
    """0/1 targets as floats, one column per entry of ``LABELS``."""
    return label_matrix(issues).astype(np.float32)


def type_targets(issues: Sequence[LabeledIssue]) -> np.ndarray:
    """Index into ``ISSUE_TYPES`` per issue; -1 where the type is unknown."""
    index = {kind: k for k, kind in enumerate(ISSUE_TYPES)}
    return np.array([index.get(i.type, -1) if i.type else -1 for i in issues], dtype=np.int64)


def type_weights(t: np.ndarray, max_weight: float) -> np.ndarray:
    """Class weights ``n / (k * n_type)`` over the issues with a known type, in [1/max, max]."""
    known = t[t >= 0]
    counts = np.bincount(known, minlength=len(ISSUE_TYPES)).astype(np.float64)
    weights = np.where(counts > 0, len(known) / (len(ISSUE_TYPES) * np.maximum(counts, 1.0)), 1.0)
    return np.clip(weights, 1.0 / max_weight, max_weight)


def row_weights(issues: Sequence[LabeledIssue], config: BertTrainConfig) -> np.ndarray:
    """Each issue's weight in the label losses, scaled to a mean of 1 so the loss keeps its size.

    Low-confidence labels count ``config.low_confidence_weight``; non-PTM issues labelled with
    high confidence (the ordinary issues the model must not call PTM-related) count
    ``config.certain_negative_weight``; the rest 1."""
    weights = np.ones(len(issues), dtype=np.float32)
    for k, issue in enumerate(issues):
        if issue.confidence == "low":
            weights[k] = config.low_confidence_weight
        elif not issue.ptm and issue.confidence == "high":
            weights[k] = config.certain_negative_weight
    if weights.min() <= 0:
        raise ValueError("row weights must be positive")
    weights /= weights.mean()
    return weights


def type_counts(t: np.ndarray) -> dict[str, int]:
    return {kind: int((t == k).sum()) for k, kind in enumerate(ISSUE_TYPES)}


def positive_weights(y: np.ndarray, max_weight: float) -> np.ndarray:
    """PTM: negatives/positives over all issues; other labels: sqrt of it over PTM issues, in [1, max]."""
    weights = np.ones(y.shape[1], dtype=np.float64)
    positives = max(float(y[:, 0].sum()), 1.0)
    weights[0] = max(len(y) - positives, 1.0) / positives
    ptm_rows = y[y[:, 0] == 1]
    for j in range(1, y.shape[1]):
        pos = float(ptm_rows[:, j].sum())
        ratio = (len(ptm_rows) - pos) / pos if pos else max_weight**2
        weights[j] = min(max(math.sqrt(ratio), 1.0), max_weight)
    return weights


def label_counts(y: np.ndarray) -> dict[str, int]:
    return {label: int(y[:, j].sum()) for j, label in enumerate(LABELS)}
