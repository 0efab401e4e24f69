"""TF-IDF + logistic regression: one binary head for PTM, one per theme, one per sub-theme.

All 40 heads are linear over the same features, so the artifact stores them as one
float16 weight matrix plus biases (small, fast, and no pickled estimators to drift).
Theme and sub-theme heads are trained on PTM issues only (they answer "which
challenge, given it is PTM"); their decisions apply only when the PTM head fires.
Decision thresholds are tuned on out-of-fold scores of a k-fold cross-validation
on the training data, so a separate dev set stays an honest test. A fourth,
multinomial head gives the issue type (bug / enhancement / question) over the
same features, trained on every issue whose type is known.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import scipy.sparse as sp
from scipy.special import expit as _sigmoid
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from app.taxonomy import ISSUE_TYPES, SUBTHEME_CODES, THEME_CODES
from app.triage.classifier import LABELS, IssueText, Prediction, thresholded
from app.triage.data import LabeledIssue
from app.triage.normalize import normalize
from app.triage.registry import ARTIFACT_FILES, BASELINE, META_FILE

KIND = BASELINE
MODEL_FILE = ARTIFACT_FILES[BASELINE]
NEVER = 1.0  # threshold of a head that must not fire; scores are clipped below it
_SCORE_EPS = 1e-6
_FORMAT = 1


@dataclass(frozen=True)
class BaselineConfig:
    word_max_features: int = 15_000
    char_max_features: int = 25_000
    char_ngram_range: tuple[int, int] = (3, 5)
    min_df: int = 2
    C: float = 4.0
    folds: int = 5
    min_positives: int = 3  # fewer positive examples in a training split: constant score
    seed: int = 0


class BaselineClassifier:
    """A fitted baseline; build with ``fit_baseline`` or ``BaselineClassifier.load``."""

    def __init__(self, payload: dict[str, Any], raw: bytes | None = None) -> None:
        """``raw`` is the serialised ``payload`` when it was read from disk."""
        if payload.get("format") != _FORMAT or tuple(payload.get("labels", ())) != LABELS:
            raise ValueError("not a baseline artifact of this version of the app")
        self._payload = payload
        self._word: TfidfVectorizer = payload["word"]
        self._char: TfidfVectorizer = payload["char"]
        self._weights: np.ndarray = payload["weights"].astype(np.float32)
        self._bias: np.ndarray = payload["bias"]
        self._thresholds: dict[str, float] = dict(payload["thresholds"])
        self.info: dict[str, Any] = dict(payload["info"])
        self._bytes = raw if raw is not None else _dump(payload)
        self._version = f"{KIND}-tfidf-lr@{hashlib.sha256(self._bytes).hexdigest()[:12]}"

    @property
    def train_ptm_share(self) -> None:
        """Not calibrated: its thresholds are tuned, its probabilities are not moved."""
        return None

    @property
    def version(self) -> str:
        return self._version

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self._thresholds)

    def with_thresholds(self, overrides: dict[str, float]) -> BaselineClassifier:
        """The same heads with some thresholds replaced (a new artifact, so a new version)."""
        unknown = set(overrides) - set(LABELS)
        if unknown:
            raise ValueError(f"unknown labels: {sorted(unknown)}")
        return BaselineClassifier({**self._payload, "thresholds": {**self._thresholds, **overrides}})

    def predict(self, texts: Sequence[IssueText]) -> list[Prediction]:
        if not texts:
            return []
        features = _features(self._word, self._char, [normalize(t.title, t.body) for t in texts])
        types = self._type_probabilities(features)
        return [
            self._prediction(row, None if types is None else types[i])
            for i, row in enumerate(self._label_probabilities(features))
        ]

    def scores(self, normalized: Sequence[str]) -> np.ndarray:
        """Probabilities, one column per entry of ``LABELS``, for normalised texts."""
        return self._label_probabilities(_features(self._word, self._char, normalized))

    def _label_probabilities(self, features: sp.csr_matrix) -> np.ndarray:
        logits = np.asarray(features @ self._weights.T, dtype=np.float64) + self._bias
        probabilities: np.ndarray = np.clip(_sigmoid(logits), _SCORE_EPS, 1 - _SCORE_EPS)
        return probabilities

    def _type_probabilities(self, features: sp.csr_matrix) -> np.ndarray | None:
        """Softmax over ``ISSUE_TYPES``; None for an artifact without a type head."""
        if self._payload.get("type_weights") is None:
            return None
        weights = self._payload["type_weights"].astype(np.float32)
        return _softmax(np.asarray(features @ weights.T, dtype=np.float64) + self._payload["type_bias"])

    def save(self, out_dir: Path, meta: dict[str, Any] | None = None) -> Path:
        """Write ``model.joblib`` and ``meta.json`` (``info`` + thresholds + ``meta``)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / MODEL_FILE).write_bytes(self._bytes)
        document = {"version": self.version, **self.info, "thresholds": self._thresholds, **(meta or {})}
        (out_dir / META_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        return out_dir

    @classmethod
    def load(cls, model_dir: Path) -> BaselineClassifier:
        raw = (model_dir / MODEL_FILE).read_bytes()
        return cls(joblib.load(io.BytesIO(raw)), raw)

    def _prediction(self, row: np.ndarray, type_row: np.ndarray | None) -> Prediction:
        score = dict(zip(LABELS, (float(s) for s in row), strict=True))
        return thresholded(score, self._thresholds, self.version, _type_extra(type_row))


def _type_extra(row: np.ndarray | None) -> dict[str, Any]:
    if row is None:
        return {}
    scores = {kind: float(p) for kind, p in zip(ISSUE_TYPES, row, strict=True)}
    return {"type": max(scores, key=scores.__getitem__), "type_scores": scores}


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return probabilities


def fit_baseline(issues: Sequence[LabeledIssue], config: BaselineConfig = BaselineConfig()) -> BaselineClassifier:
    """Fit features and heads on ``issues``; thresholds from out-of-fold scores."""
    if len(issues) < config.folds:
        raise ValueError(f"need at least {config.folds} issues to train, got {len(issues)}")
    texts = [normalize(i.title, i.body) for i in issues]
    word, char = _vectorizers(config)
    features = sp.hstack([word.fit_transform(texts), char.fit_transform(texts)]).tocsr()
    targets = label_matrix(issues)
    oof = _out_of_fold_scores(features, targets, config)
    thresholds = {}
    for j, label in enumerate(LABELS):
        rows = _rows_for(j, targets)
        thresholds[label] = tune_threshold(oof[rows, j], targets[rows, j])
    weights, bias, fixed = _fit_heads(features, targets, config)
    thresholds.update(fixed)
    type_head = _fit_type_head(features, [i.type for i in issues], config)
    for vectorizer in (word, char):
        _strip_for_storage(vectorizer)
    info = {
        "kind": KIND,
        "config": asdict(config),
        "labels": {"themes": list(THEME_CODES), "subthemes": list(SUBTHEME_CODES)},
        "training": {
            "issues": len(issues),
            "features": int(features.shape[1]),
            "positives": {label: int(targets[:, j].sum()) for j, label in enumerate(LABELS)},
            "constant_heads": sorted(fixed),
            "types": {kind: sum(i.type == kind for i in issues) for kind in ISSUE_TYPES},
        },
        "threshold_tuning": f"{config.folds}-fold cross-validation on the training data (max F1)",
    }
    return BaselineClassifier(
        {
            "format": _FORMAT,
            "labels": list(LABELS),
            "word": word,
            "char": char,
            "weights": weights.astype(np.float16),  # halves the artifact; scores move < 1e-3
            "bias": bias,
            "thresholds": {k: round(v, 4) for k, v in thresholds.items()},
            "info": info,
            "type_weights": None if type_head is None else type_head[0].astype(np.float16),
            "type_bias": None if type_head is None else type_head[1],
        }
    )


def _fit_type_head(
    features: sp.csr_matrix, types: Sequence[str | None], config: BaselineConfig
) -> tuple[np.ndarray, np.ndarray] | None:
    """Multinomial weights and biases, rows in the order of ``ISSUE_TYPES``; None unless every
    type has ``min_positives`` examples."""
    rows = [i for i, kind in enumerate(types) if kind in ISSUE_TYPES]
    labels = [types[i] for i in rows]
    if any(labels.count(kind) < config.min_positives for kind in ISSUE_TYPES):
        return None
    model = LogisticRegression(C=config.C, class_weight="balanced", max_iter=2000, random_state=config.seed)
    model.fit(features[rows], labels)
    order = [list(model.classes_).index(kind) for kind in ISSUE_TYPES]
    return model.coef_[order], model.intercept_[order]


def label_matrix(issues: Sequence[LabeledIssue]) -> np.ndarray:
    """0/1 targets, one column per entry of ``LABELS``."""
    index = {label: j for j, label in enumerate(LABELS)}
    matrix = np.zeros((len(issues), len(LABELS)), dtype=np.int8)
    for i, issue in enumerate(issues):
        matrix[i, 0] = issue.ptm
        for code in (*issue.themes, *issue.subthemes):
            matrix[i, index[code]] = 1
    return matrix


def tune_threshold(scores: np.ndarray, truth: np.ndarray) -> float:
    """The grid threshold in [0.05, 0.95] with the best F1 (the middle of a tie);
    ``NEVER`` when nothing reaches F1 > 0."""
    positives = int(truth.sum())
    if positives == 0:
        return NEVER
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    f1 = np.array([2 * int((scores >= t)[truth == 1].sum()) / (int((scores >= t).sum()) + positives) for t in grid])
    if f1.max() <= 0:
        return NEVER
    best = grid[np.flatnonzero(f1 >= f1.max() - 1e-12)]
    return float(best[len(best) // 2])


def _vectorizers(config: BaselineConfig) -> tuple[TfidfVectorizer, TfidfVectorizer]:
    common = {"lowercase": True, "sublinear_tf": True, "min_df": config.min_df, "dtype": np.float32}
    word = TfidfVectorizer(
        analyzer="word",
        ngram_range=(1, 2),
        token_pattern=r"(?u)\b\w[\w.+-]*\w\b|\b\w\b",
        max_features=config.word_max_features,
        **common,
    )
    char = TfidfVectorizer(
        analyzer="char_wb", ngram_range=config.char_ngram_range, max_features=config.char_max_features, **common
    )
    return word, char


def _strip_for_storage(vectorizer: TfidfVectorizer) -> None:
    """Drop what prediction does not need: the (large) pruned-term set and an
    ``id()``-based cache that would make the artifact bytes differ between runs."""
    vectorizer.stop_words_ = None
    vars(vectorizer).pop("_stop_words_id", None)


def _features(word: TfidfVectorizer, char: TfidfVectorizer, texts: Sequence[str]) -> sp.csr_matrix:
    return sp.hstack([word.transform(texts), char.transform(texts)]).tocsr()


def _rows_for(label_index: int, targets: np.ndarray) -> np.ndarray:
    """Rows a head is trained and tuned on: all for PTM, PTM issues for the rest."""
    if label_index == 0:
        return np.arange(targets.shape[0])
    return np.flatnonzero(targets[:, 0] == 1)


def _out_of_fold_scores(features: sp.csr_matrix, targets: np.ndarray, config: BaselineConfig) -> np.ndarray:
    oof = np.zeros(targets.shape, dtype=np.float64)
    splitter = KFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
    for train_rows, test_rows in splitter.split(features):
        weights, bias, _ = _fit_heads(features[train_rows], targets[train_rows], config)
        oof[test_rows] = _sigmoid(np.asarray(features[test_rows] @ weights.T, dtype=np.float64) + bias)
    return oof


def _fit_heads(
    features: sp.csr_matrix, targets: np.ndarray, config: BaselineConfig
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Weights, biases, and the fixed thresholds of heads too sparse to fit (constant score)."""
    weights = np.zeros((len(LABELS), features.shape[1]), dtype=np.float32)
    bias = np.zeros(len(LABELS), dtype=np.float64)
    fixed: dict[str, float] = {}
    for j, label in enumerate(LABELS):
        rows = _rows_for(j, targets)
        y = targets[rows, j]
        positives = int(y.sum())
        if positives < config.min_positives or positives == len(y):
            prior = (positives + 0.5) / (len(y) + 1.0)
            bias[j] = np.log(prior / (1 - prior))
            fixed[label] = 0.0 if positives and positives == len(y) else NEVER
            continue
        model = LogisticRegression(
            C=config.C, class_weight="balanced", solver="liblinear", random_state=config.seed
        )
        model.fit(features[rows], y)
        weights[j] = model.coef_[0]
        bias[j] = model.intercept_[0]
    return weights, bias, fixed


def _dump(payload: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(payload, buffer, compress=("zlib", 3))
    return buffer.getvalue()
