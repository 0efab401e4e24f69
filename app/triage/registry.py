"""The model kinds, the files of their artifacts, where they live and how to load one (once per process).

``DEFAULT_MODEL_DIR`` is the repository's ``models/`` directory; a kind's artifact
is ``DEFAULT_MODEL_DIR / kind``. Assign another path to ``DEFAULT_MODEL_DIR`` (or
pass ``path``) to load from elsewhere; it is read at call time. The model modules
import their file names from here and are imported only when their kind is loaded
(torch only for the BERT).
"""

from __future__ import annotations

import threading
from pathlib import Path

from app.triage.classifier import Classifier
from app.triage.language import LanguageGate

BASELINE = "baseline"
BERT = "bert"
KINDS: tuple[str, ...] = (BASELINE, BERT)
ARTIFACT_FILES = {BASELINE: "model.joblib", BERT: "model.safetensors"}
META_FILE = "meta.json"
CARD_FILE = "MODEL_CARD.md"
LEXICAL_DIR = "lexical"  # the BERT's stacked baseline, inside its artifact directory

DEFAULT_MODEL_DIR: Path = Path(__file__).resolve().parents[2] / "models"

_cache: dict[tuple[str, Path, float | None, str | None, str | None], Classifier] = {}
_lock = threading.Lock()


class ModelNotFoundError(FileNotFoundError):
    """No trained artifact where one was expected."""


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
    return kind


def model_dir(kind: str) -> Path:
    return DEFAULT_MODEL_DIR / kind


def load_classifier(kind: str = BERT, path: Path | None = None, *, ptm_prior: float | None = None,
                    device: str | None = None, runtime: str | None = None) -> Classifier:
    """The classifier of ``kind`` from ``path`` (default ``DEFAULT_MODEL_DIR / kind``), cached.

    ``ptm_prior`` is the share of PTM-related issues a deployment expects (the bert model
    corrects its calibrated probabilities to it); ``device`` and ``runtime`` (the settings
    ``PTM_TRIAGE_DEVICE`` and ``PTM_TRIAGE_RUNTIME``) choose where the bert model runs.
    Every model serves behind the ``LanguageGate``: it abstains on text it cannot read."""
    artifact_file = ARTIFACT_FILES[check_kind(kind)]
    directory = Path(path if path is not None else model_dir(kind)).resolve()
    key = (kind, directory, ptm_prior, device, runtime)
    with _lock:
        if key not in _cache:
            if not (directory / artifact_file).is_file():
                raise ModelNotFoundError(
                    f"no trained {kind} model at {directory / artifact_file}; "
                    f"run `ptm-triage train --kind {kind}` first"
                )
            _cache[key] = LanguageGate(_load(kind, directory, ptm_prior, device, runtime))
        return _cache[key]


def _load(kind: str, directory: Path, ptm_prior: float | None, device: str | None, runtime: str | None) -> Classifier:
    if kind == BASELINE:
        if ptm_prior is not None:
            raise ValueError("an expected PTM share (prior correction) needs the calibrated bert model")
        from app.triage.baseline import BaselineClassifier

        return BaselineClassifier.load(directory)
    from app.triage.bert import BertClassifier

    return BertClassifier.load(directory, ptm_prior=ptm_prior, device=device, runtime=runtime)


def clear_cache() -> None:
    """Forget loaded models (tests, or after retraining in the same process)."""
    with _lock:
        _cache.clear()
