"""Where trained models live and how to load one (once per process).

``DEFAULT_MODEL_DIR`` is the repository's ``models/`` directory; a kind's artifact
is ``DEFAULT_MODEL_DIR / kind``. Assign another path to ``DEFAULT_MODEL_DIR`` (or
pass ``path``) to load from elsewhere; it is read at call time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from app.triage.baseline import MODEL_FILE as BASELINE_FILE, BaselineClassifier
from app.triage.classifier import Classifier

DEFAULT_MODEL_DIR: Path = Path(__file__).resolve().parents[2] / "models"

_LOADERS: dict[str, tuple[str, Callable[[Path], Classifier]]] = {
    "baseline": (BASELINE_FILE, BaselineClassifier.load),
}
_cache: dict[tuple[str, Path], Classifier] = {}
_lock = threading.Lock()


class ModelNotFoundError(FileNotFoundError):
    """No trained artifact where one was expected."""


def model_dir(kind: str) -> Path:
    return DEFAULT_MODEL_DIR / kind


def load_classifier(kind: str = "baseline", path: Path | None = None) -> Classifier:
    """The classifier of ``kind`` from ``path`` (default ``DEFAULT_MODEL_DIR / kind``), cached."""
    if kind not in _LOADERS:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(_LOADERS)}")
    artifact_file, loader = _LOADERS[kind]
    directory = Path(path if path is not None else model_dir(kind)).resolve()
    key = (kind, directory)
    with _lock:
        if key not in _cache:
            if not (directory / artifact_file).is_file():
                raise ModelNotFoundError(
                    f"no trained {kind} model at {directory / artifact_file}; "
                    f"run `ptm-triage train --kind {kind}` first"
                )
            _cache[key] = loader(directory)
        return _cache[key]


def clear_cache() -> None:
    """Forget loaded models (tests, or after retraining in the same process)."""
    with _lock:
        _cache.clear()
