"""Where trained models live and how to load one (once per process).

``DEFAULT_MODEL_DIR`` is the repository's ``models/`` directory; a kind's artifact
is ``DEFAULT_MODEL_DIR / kind``. Assign another path to ``DEFAULT_MODEL_DIR`` (or
pass ``path``) to load from elsewhere; it is read at call time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from app.triage.baseline import MODEL_FILE as BASELINE_FILE
from app.triage.baseline import BaselineClassifier
from app.triage.classifier import Classifier
from app.triage.language import LanguageGate

DEFAULT_MODEL_DIR: Path = Path(__file__).resolve().parents[2] / "models"

def _load_baseline(path: Path, ptm_prior: float | None) -> Classifier:
    if ptm_prior is not None:
        raise ValueError("an expected PTM share (prior correction) needs the calibrated bert model")
    return BaselineClassifier.load(path)


def _load_bert(path: Path, ptm_prior: float | None) -> Classifier:
    from app.triage.bert import (
        BertClassifier,  # torch loads only when the BERT is asked for
    )

    return BertClassifier.load(path, ptm_prior=ptm_prior)


_LOADERS: dict[str, tuple[str, Callable[[Path, float | None], Classifier]]] = {
    "baseline": (BASELINE_FILE, _load_baseline),
    "bert": ("model.safetensors", _load_bert),
}
_cache: dict[tuple[str, Path, float | None], Classifier] = {}
_lock = threading.Lock()


class ModelNotFoundError(FileNotFoundError):
    """No trained artifact where one was expected."""


def model_dir(kind: str) -> Path:
    return DEFAULT_MODEL_DIR / kind


def load_classifier(kind: str = "bert", path: Path | None = None, *, ptm_prior: float | None = None) -> Classifier:
    """The classifier of ``kind`` from ``path`` (default ``DEFAULT_MODEL_DIR / kind``), cached.

    ``ptm_prior`` is the share of PTM-related issues a deployment expects (the bert model
    corrects its calibrated probabilities to it). Every model serves behind the
    ``LanguageGate``: it abstains on text it cannot read."""
    if kind not in _LOADERS:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(_LOADERS)}")
    artifact_file, loader = _LOADERS[kind]
    directory = Path(path if path is not None else model_dir(kind)).resolve()
    key = (kind, directory, ptm_prior)
    with _lock:
        if key not in _cache:
            if not (directory / artifact_file).is_file():
                raise ModelNotFoundError(
                    f"no trained {kind} model at {directory / artifact_file}; "
                    f"run `ptm-triage train --kind {kind}` first"
                )
            _cache[key] = LanguageGate(loader(directory, ptm_prior))
        return _cache[key]


def clear_cache() -> None:
    """Forget loaded models (tests, or after retraining in the same process)."""
    with _lock:
        _cache.clear()
