"""The one place that turns predictions into GitHub label names.

Names with the default prefix ``ptm``:

- ``ptm: related``: the issue is PTM-related.
- ``ptm: needs-triage``: the app abstains (PTM score inside the uncertainty band, or
  a reason of the prediction's own such as a language it cannot read), or the issue
  is PTM-related but no theme is confident: a person should add it.
- one per theme, ``ptm: <theme name in lower case>``: ``ptm: model usage``,
  ``ptm: model performance and output quality``, ``ptm: software environment``,
  ``ptm: developer information and documentation``,
  ``ptm: hardware and computation resource``,
  ``ptm: model resource and configuration``,
  ``ptm: model functionality enhancement needs``.
- with ``types=True``, the issue type: ``ptm: bug``, ``ptm: enhancement``, ``ptm: question``,
  only where the repository's own labels give no type (``bug``, ``kind/feature`` …), which win.
- with ``subthemes=True``, one per sub-theme, ``ptm: <CODE> <name in lower case>``
  cut at a word to 50 characters: ``ptm: HR1 memory usage``,
  ``ptm: HR2 hardware initialization and execution``. A sub-theme label needs its
  theme's label.

A non-PTM issue gets no labels at all. GitHub compares label names without case,
and so does ``is_app_label``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from app.taxonomy import (
    ISSUE_TYPES,
    SUBTHEME_CODES,
    SUBTHEMES,
    THEME_CODES,
    THEMES,
    theme_of,
)
from app.triage.classifier import Prediction

MAX_NAME = 50
MAX_DESCRIPTION = 100
PTM_CODE = "PTM"
ABSTAIN_CODE = "ABSTAIN"
PTM_COLOR = "5319e7"
ABSTAIN_COLOR = "fbca04"
TYPE_COLOR = "c5def5"
THEME_COLORS: dict[str, str] = {
    "MU": "1d76db",
    "PQ": "d93f0b",
    "SE": "0e8a16",
    "DI": "006b75",
    "HR": "b60205",
    "RC": "795548",
    "FN": "e4a000",
}
_COLOR = re.compile(r"[0-9a-f]{6}")


@dataclass(frozen=True)
class LabelSpec:
    name: str
    color: str
    description: str

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > MAX_NAME:
            raise ValueError(f"label name must be 1-{MAX_NAME} characters: {self.name!r}")
        if not _COLOR.fullmatch(self.color):
            raise ValueError(f"label colour must be 6 lower-case hex digits without '#': {self.color!r}")
        if len(self.description) > MAX_DESCRIPTION:
            raise ValueError(f"label description over {MAX_DESCRIPTION} characters: {self.description!r}")


@dataclass(frozen=True)
class LabelPolicy:
    """How scores become labels.

    ``ptm_threshold`` replaces the model's own PTM decision when set; PTM scores
    within ``uncertain_band`` (inclusive; ``None`` for no band) abstain.
    ``theme_thresholds`` maps theme or sub-theme codes to thresholds that replace
    the model's decisions for those codes.
    """

    prefix: str = "ptm"
    abstain_label: str | None = None  # default: "<prefix>: needs-triage"
    ptm_threshold: float | None = None
    theme_thresholds: Mapping[str, float] = field(default_factory=dict)
    uncertain_band: tuple[float, float] | None = (0.35, 0.65)
    subthemes: bool = False
    colors: Mapping[str, str] = field(default_factory=dict)  # code ("PTM", "ABSTAIN", theme) -> hex
    types: bool = False

    def __post_init__(self) -> None:
        if not self.prefix.strip():
            raise ValueError("label prefix must not be empty")
        unknown = set(self.theme_thresholds) - set(THEMES) - set(SUBTHEMES)
        if unknown:
            raise ValueError(f"unknown theme codes in theme_thresholds: {sorted(unknown)}")
        unknown = set(self.colors) - {PTM_CODE, ABSTAIN_CODE, *THEMES}
        if unknown:
            raise ValueError(f"unknown codes in colors: {sorted(unknown)} (PTM, ABSTAIN or a theme code)")
        for value in (self.ptm_threshold, *self.theme_thresholds.values(), *(self.uncertain_band or ())):
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"thresholds must lie in [0, 1], got {value}")
        if self.uncertain_band and self.uncertain_band[0] > self.uncertain_band[1]:
            raise ValueError(f"uncertain_band must be (low, high), got {self.uncertain_band}")
        names = [spec.name.casefold() for spec in self._specs()]  # LabelSpec checks GitHub's limits
        if len(set(names)) != len(names):
            raise ValueError("label names must be distinct (ignoring case)")

    @property
    def ptm_label(self) -> str:
        return f"{self.prefix}: related"

    @property
    def abstain(self) -> str:
        return self.abstain_label or f"{self.prefix}: needs-triage"

    def label_name(self, code: str) -> str:
        """The label of ``"PTM"``, ``"ABSTAIN"``, a theme code or a sub-theme code."""
        if code == PTM_CODE:
            return self.ptm_label
        if code == ABSTAIN_CODE:
            return self.abstain
        if code in THEMES:
            return f"{self.prefix}: {THEMES[code].lower()}"
        if code in SUBTHEMES:
            return _cut_at_word(f"{self.prefix}: {code} {SUBTHEMES[code].lower()}", MAX_NAME)
        if code in ISSUE_TYPES:
            return f"{self.prefix}: {code}"
        raise ValueError(f"unknown label code {code!r}")

    def code_of(self, name: str) -> str | None:
        """The code behind an app label name (any case), ``None`` for other labels."""
        return self._codes_by_name.get(name.strip().casefold())

    def is_app_label(self, name: str) -> bool:
        """Whether the app may own ``name``; sub-theme labels count even with ``subthemes=False``."""
        return self.code_of(name) is not None

    def labels_for(self, prediction: Prediction, existing: Iterable[str] = ()) -> list[str]:
        """The labels for ``prediction`` on an issue that has the labels ``existing``."""
        return self._challenge_labels(prediction) + self._type_labels(prediction, existing)

    def _type_labels(self, prediction: Prediction, existing: Iterable[str]) -> list[str]:
        kind = prediction.extra.get("type")
        withdrawn = prediction.abstain_reason is not None
        if not self.types or withdrawn or kind not in ISSUE_TYPES or self.issue_type(existing) is not None:
            return []
        return [self.label_name(str(kind))]

    def ptm_decision(self, score: float, model_decision: bool) -> bool | None:
        """PTM-related, not, or None to abstain, for a PTM score and the model's own decision."""
        band = self.uncertain_band
        if band is not None and band[0] <= score <= band[1]:
            return None
        return model_decision if self.ptm_threshold is None else score >= self.ptm_threshold

    def _challenge_labels(self, prediction: Prediction) -> list[str]:
        if prediction.abstain_reason is not None:
            return [self.abstain]
        decision = self.ptm_decision(prediction.ptm_score, prediction.ptm)
        if decision is None:
            return [self.abstain]
        if not decision:
            return []
        themes = [
            c for c in THEME_CODES if self._fires(c, prediction.theme_scores.get(c, 0.0), c in prediction.themes)
        ]
        labels = [self.ptm_label, *(self.label_name(c) for c in themes)]
        if self.subthemes:
            labels += [
                self.label_name(c)
                for c in SUBTHEME_CODES
                if theme_of(c) in themes
                and self._fires(c, prediction.subtheme_scores.get(c, 0.0), c in prediction.subthemes)
            ]
        if not themes:
            labels.append(self.abstain)
        return labels

    def decode(self, labels: Iterable[str]) -> tuple[bool | None, tuple[str, ...]]:
        """What a set of label names says: (PTM-related, theme codes); PTM is None when only abstaining.

        The inverse of ``labels_for``, and the reading of labels a person set.
        """
        codes = {self.code_of(name) for name in labels} - {None}
        themes = tuple(c for c in THEME_CODES if c in codes)
        if PTM_CODE in codes or themes:
            return True, themes
        return (None, ()) if ABSTAIN_CODE in codes else (False, ())

    def issue_type(self, labels: Iterable[str]) -> str | None:
        """The issue type (bug / enhancement / question) the repository's own labels give, if any.

        Matches whole words of a label (``bug``, ``type: bug``, ``kind/feature``); the app's
        labels do not count; the first label that names a type wins.
        """
        for name in labels:
            if self.is_app_label(name):
                continue
            words = set(re.split(r"[\s:/_-]+", name.casefold()))
            for kind, names in ISSUE_TYPE_WORDS.items():
                if words & set(names):
                    return kind
        return None

    def all_labels(self) -> list[LabelSpec]:
        """Every label the app may create under this policy."""
        specs = self._specs()
        chosen = specs[: 2 + len(THEME_CODES)]
        if self.subthemes:
            chosen += specs[2 + len(THEME_CODES): 2 + len(THEME_CODES) + len(SUBTHEME_CODES)]
        if self.types:
            chosen += specs[-len(ISSUE_TYPES):]
        return chosen

    def _fires(self, code: str, score: float, model_decision: bool) -> bool:
        threshold = self.theme_thresholds.get(code)
        return model_decision if threshold is None else score >= threshold

    def _specs(self) -> list[LabelSpec]:
        color = {PTM_CODE: PTM_COLOR, ABSTAIN_CODE: ABSTAIN_COLOR, **THEME_COLORS, **self.colors}
        specs = [
            LabelSpec(self.ptm_label, color[PTM_CODE], "About reusing a pre-trained AI model (set by PTM Triage)"),
            LabelSpec(self.abstain, color[ABSTAIN_CODE], "PTM Triage was unsure: a person should decide or add the theme"),
        ]
        specs += [
            LabelSpec(self.label_name(c), color[c], f"PTM challenge theme {c}: {THEMES[c]}")
            for c in THEME_CODES
        ]
        specs += [
            LabelSpec(self.label_name(c), _tint(color[theme_of(c)]), f"PTM challenge {c}: {SUBTHEMES[c]}")
            for c in SUBTHEME_CODES
        ]
        specs += [LabelSpec(self.label_name(c), TYPE_COLOR, f"Issue type {c} (set by PTM Triage)") for c in ISSUE_TYPES]
        return specs

    @cached_property
    def _codes_by_name(self) -> dict[str, str]:
        """Built once per policy: every statistics page reads thousands of labels through it."""
        codes = (PTM_CODE, ABSTAIN_CODE, *THEME_CODES, *SUBTHEME_CODES, *ISSUE_TYPES)
        return {self.label_name(c).casefold(): c for c in codes}


ISSUE_TYPE_WORDS: dict[str, tuple[str, ...]] = {
    "bug": ("bug", "defect", "regression", "crash"),
    "enhancement": ("enhancement", "feature", "improvement"),
    "question": ("question", "support", "how-to"),
}


def _cut_at_word(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit + 1].rsplit(" ", 1)[0].rstrip(" ,-")


def _tint(color: str) -> str:
    """Half-way towards white: sub-themes in a lighter shade of their theme."""
    channels = (int(color[i : i + 2], 16) for i in (0, 2, 4))
    return "".join(f"{(c + 255) // 2:02x}" for c in channels)
