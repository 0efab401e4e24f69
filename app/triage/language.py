"""Text the models cannot read: abstain instead of guessing.

The models read English (MiniLM's tokenizer and the TF-IDF vocabulary were built on it),
and the codebook labels issues written in other languages not PTM-related. A guess on
such an issue is noise on the maintainer's issue and in the statistics, so the app
abstains with a reason of its own.

The rule is measured, not assumed (``benchmarks/language_rule.py``): of the prose
(code blocks, inline code and URLs removed, since an English traceback or link says
nothing of the language the issue is written in), at least ``MIN_FOREIGN_SHARE`` of the
letters are outside the Latin script (CJK, Cyrillic, Arabic, Devanagari, ...). Issues in
another language written in the Latin script (Portuguese, French) are not caught: the
tokenizer reads their words, and in ``../shared/data`` they are a handful.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import replace

from app.triage.classifier import Classifier, IssueText, Prediction

UNSUPPORTED_LANGUAGE = "language not supported"
MIN_FOREIGN_SHARE = 0.2
MIN_LETTERS = 3
_NOT_PROSE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`|https?://\S+", re.DOTALL)


def foreign_share(text: IssueText) -> float:
    """The share of the prose's letters that are outside the Latin script (0 without letters)."""
    prose = _NOT_PROSE.sub(" ", f"{text.title}\n{text.body}")
    letters = [c for c in prose if c.isalpha()]
    if len(letters) < MIN_LETTERS:
        return 0.0
    return sum(not unicodedata.name(c, "").startswith("LATIN") for c in letters) / len(letters)


def unsupported_language(text: IssueText) -> bool:
    return foreign_share(text) >= MIN_FOREIGN_SHARE


class LanguageGate:
    """A classifier that abstains on text its model cannot read.

    The model still scores every text (its scores are kept for the record); for an
    unreadable one the decisions are withdrawn: not PTM-related, no themes, and
    ``abstain_reason`` says why.
    """

    def __init__(self, model: Classifier) -> None:
        self.model = model

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def train_ptm_share(self) -> float | None:
        return self.model.train_ptm_share

    def predict(self, texts: Sequence[IssueText]) -> list[Prediction]:
        predictions = self.model.predict(texts)
        return [
            replace(p, ptm=False, themes=(), subthemes=(), abstain_reason=UNSUPPORTED_LANGUAGE)
            if unsupported_language(text) else p
            for text, p in zip(texts, predictions, strict=True)
        ]
