"""The one interface every model serves behind (webhook path, CLI, backfill, benchmarks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from app.taxonomy import SUBTHEME_CODES, THEME_CODES, theme_of

PTM = "PTM"
LABELS: tuple[str, ...] = (PTM, *THEME_CODES, *SUBTHEME_CODES)
"""The score columns every model computes, in this order."""


@dataclass(frozen=True)
class IssueText:
    """What a classifier reads of an issue. ``body`` may be empty; never ``None``."""

    title: str
    body: str = ""


@dataclass(frozen=True)
class Prediction:
    """Scores for one issue. Probabilities in [0, 1].

    ``theme_scores`` has exactly the 7 codes of ``app.taxonomy.THEME_CODES``,
    ``subtheme_scores`` exactly the 32 of ``SUBTHEME_CODES``. The decisions
    (``ptm``, ``themes``, ``subthemes``) are the model's own, made with its tuned
    thresholds; the label policy may still abstain. ``abstain_reason`` is set when the
    decisions were withdrawn for a reason of their own (``app.triage.language``): the
    app abstains whatever the scores, and the statistics leave the issue out.
    """

    ptm_score: float
    theme_scores: dict[str, float]
    subtheme_scores: dict[str, float]
    ptm: bool
    themes: tuple[str, ...]
    subthemes: tuple[str, ...]
    model: str
    extra: dict[str, object] = field(default_factory=dict)
    abstain_reason: str | None = None


def type_scores(prediction: Prediction) -> Mapping[str, float]:
    """``extra["type_scores"]``: the type head's probability per issue type; empty for a model without one."""
    scores = prediction.extra.get("type_scores") or {}
    if not isinstance(scores, Mapping):
        raise TypeError(f"extra['type_scores'] of {prediction.model} is not a mapping: {scores!r}")
    return scores


@runtime_checkable
class Classifier(Protocol):
    """Texts in, one prediction per text out, in the same order."""

    @property
    def version(self) -> str:
        """A stable identifier of the trained weights, e.g. ``baseline-tfidf-lr@3f2a9c1e``."""
        ...

    @property
    def train_ptm_share(self) -> float | None:
        """The PTM share its probabilities are calibrated at; None for a model that is not
        calibrated (its scores are not moved to a repository's share)."""
        ...

    def predict(self, texts: Sequence[IssueText]) -> list[Prediction]: ...


def thresholded(score: Mapping[str, float], thresholds: Mapping[str, float], model: str,
                extra: dict[str, object] | None = None) -> Prediction:
    """A prediction from one score per entry of ``LABELS``: themes only for a PTM issue,
    a sub-theme only with its theme.

    ``extra`` keeps what another PTM decision needs (``app.workflow.repo_share`` moves the score to a
    repository's share): the PTM threshold and the themes and sub-themes an issue would
    get if it were PTM-related.
    """
    themes = tuple(c for c in THEME_CODES if score[c] >= thresholds[c])
    subthemes = tuple(c for c in SUBTHEME_CODES if theme_of(c) in themes and score[c] >= thresholds[c])
    ptm = score[PTM] >= thresholds[PTM]
    return Prediction(
        ptm_score=score[PTM],
        theme_scores={c: score[c] for c in THEME_CODES},
        subtheme_scores={c: score[c] for c in SUBTHEME_CODES},
        ptm=ptm,
        themes=themes if ptm else (),
        subthemes=subthemes if ptm else (),
        model=model,
        extra={"ptm_threshold": thresholds[PTM], "themes_if_ptm": themes, "subthemes_if_ptm": subthemes,
               **(extra or {})},
    )
