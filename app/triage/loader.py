"""Loading a trained model of a kind (``app.triage.registry``), once per process.

The model modules are imported only when their kind is loaded (torch only for the BERT).
"""

from __future__ import annotations

import threading
from pathlib import Path

from app.triage import registry
from app.triage.classifier import Classifier
from app.triage.language import LanguageGate
from app.triage.registry import ARTIFACT_FILES, BASELINE, BERT, check_kind


class ModelNotFoundError(FileNotFoundError):
    """No trained artifact where one was expected."""


_cache: dict[tuple[str, Path, float | None, str | None, str | None], Classifier] = {}
_lock = threading.Lock()


def load_classifier(kind: str = BERT, path: Path | None = None, *, ptm_prior: float | None = None,
                    device: str | None = None, runtime: str | None = None) -> Classifier:
    """The classifier of ``kind`` from ``path`` (default ``registry.model_dir(kind)``), cached.

    ``ptm_prior`` is the share of PTM-related issues a deployment expects (the bert model
    corrects its calibrated probabilities to it); ``device`` and ``runtime`` (the settings
    ``PTM_TRIAGE_DEVICE`` and ``PTM_TRIAGE_RUNTIME``) choose where the bert model runs.
    Every model serves behind the ``LanguageGate``: it abstains on text it cannot read."""
    artifact_file = ARTIFACT_FILES[check_kind(kind)]
    directory = Path(path if path is not None else registry.model_dir(kind)).resolve()
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
