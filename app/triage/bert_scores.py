"""Calibrated scores from logits: one temperature per head, the stack with the lexical model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import expit

from app.taxonomy import ISSUE_TYPES, SUBTHEME_CODES, THEME_CODES
from app.triage.baseline import BaselineClassifier
from app.triage.bert_network import HEADS, TYPES
from app.triage.classifier import LABELS, IssueText, type_scores


def calibrate(
    logits: np.ndarray,
    temperatures: dict[str, float],
    blend: dict[str, list[float]] | None = None,
    lexical: np.ndarray | None = None,
) -> np.ndarray:
    """Probabilities from raw logits (columns in ``LABELS`` order; type columns, if any, are
    ignored): one temperature per head, then, with ``blend``, the stack with the lexical model's
    probabilities ``lexical``."""
    scaled = np.array(logits[:, : len(LABELS)], dtype=np.float64)
    for head, columns in HEADS.items():
        scaled[:, columns] /= temperatures[head]
        if blend is not None:
            if lexical is None:
                raise ValueError("a blend stacks the lexical model's probabilities: lexical is required")
            a, b, c = blend[head]
            scaled[:, columns] = a * scaled[:, columns] + b * logit(lexical[:, columns]) + c
    probabilities: np.ndarray = expit(scaled)
    return probabilities


def calibrate_types(
    logits: np.ndarray, temperature: float, blend: list[float] | None = None, lexical_types: np.ndarray | None = None
) -> np.ndarray:
    """Type probabilities (columns in ``ISSUE_TYPES`` order) from the model's full logits:
    ``softmax(logit / T)``, with ``blend`` ``softmax(a * logit / T + b * log(lexical_types) + c)``."""
    scaled = np.array(logits[:, TYPES], dtype=np.float64) / temperature
    if blend is not None:
        if lexical_types is None:
            raise ValueError("a type blend stacks the lexical model's type probabilities: lexical_types is required")
        a, b, *c = blend
        scaled = a * scaled + b * np.log(np.clip(lexical_types, 1e-6, 1.0)) + np.asarray(c)
    return softmax(scaled)


def softmax(z: np.ndarray) -> np.ndarray:
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    probabilities: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return probabilities


def lexical_parts(lexical: BaselineClassifier, texts: Sequence[IssueText]) -> tuple[np.ndarray, np.ndarray]:
    """The lexical model's label probabilities (``LABELS`` columns) and type probabilities
    (``ISSUE_TYPES`` columns), from one pass of its ``predict``."""
    predictions = lexical.predict(list(texts))
    labels = np.array(
        [[p.ptm_score, *(p.theme_scores[c] for c in THEME_CODES), *(p.subtheme_scores[c] for c in SUBTHEME_CODES)]
         for p in predictions],
        dtype=np.float64,
    ).reshape(len(predictions), len(LABELS))
    if any("type_scores" not in p.extra for p in predictions):
        raise ValueError(f"lexical model {lexical.version} has no issue-type head")
    types = np.array([[type_scores(p)[k] for k in ISSUE_TYPES] for p in predictions], dtype=np.float64)
    return labels, types.reshape(len(predictions), len(ISSUE_TYPES))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1.0 - p))
