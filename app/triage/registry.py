"""The model kinds, the files of their artifacts and where they live: names only, so that the
model modules and ``app.triage.loader`` share them without importing each other.

``DEFAULT_MODEL_DIR`` is the repository's ``models/`` directory; a kind's artifact
is ``DEFAULT_MODEL_DIR / kind``. Assign another path to ``DEFAULT_MODEL_DIR`` to load
from elsewhere; it is read at call time.
"""

from __future__ import annotations

from pathlib import Path

BASELINE = "baseline"
BERT = "bert"
KINDS: tuple[str, ...] = (BASELINE, BERT)
ARTIFACT_FILES = {BASELINE: "model.joblib", BERT: "model.safetensors"}
META_FILE = "meta.json"
CARD_FILE = "MODEL_CARD.md"
LEXICAL_DIR = "lexical"  # the BERT's stacked baseline, inside its artifact directory

DEFAULT_MODEL_DIR: Path = Path(__file__).resolve().parents[2] / "models"


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known: {', '.join(KINDS)}")
    return kind


def model_dir(kind: str) -> Path:
    return DEFAULT_MODEL_DIR / kind
