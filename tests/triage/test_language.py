"""Text the models cannot read: the rule, and the gate every served model stands behind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from app.taxonomy import SUBTHEME_CODES, THEME_CODES
from app.triage.classifier import IssueText, Prediction
from app.triage.labels import LabelPolicy
from app.triage.language import (
    UNSUPPORTED_LANGUAGE,
    LanguageGate,
    foreign_share,
    unsupported_language,
)


class AlwaysPTM:
    version = "always@1"

    def predict(self, texts: Sequence[IssueText]) -> list[Prediction]:
        return [Prediction(0.97, dict.fromkeys(THEME_CODES, 0.9), dict.fromkeys(SUBTHEME_CODES, 0.9), True,
                           ("HR",), ("HR1",), self.version) for _ in texts]


@pytest.mark.parametrize(("title", "body", "unreadable"), [
    ("加载模型后显存不足", "运行 SDXL 时出现 CUDA out of memory，怎么办？", True),
    ("Ошибка при загрузке модели", "Модель не загружается после обновления.", True),
    ("CUDA out of memory loading SDXL", "```\n加载失败 torch.cuda.OutOfMemoryError\n```", False),  # code is no prose
    ("Broken link", "See https://例え.jp/ページ", False),
    ("Não consigo instalar no Linux", "O instalador falha.", False),  # Latin script: read as it is
    ("", "", False),
    ("🚀🚀🚀", "", False),
])
def test_the_rule_reads_the_prose_script(title: str, body: str, unreadable: bool) -> None:
    assert unsupported_language(IssueText(title, body)) is unreadable


def test_a_little_foreign_text_beside_english_is_still_read() -> None:
    text = IssueText("Model outputs garbage after the update",
                     "The output is garbled (输出乱码) since v2 of the weights.")
    assert 0 < foreign_share(text) < 0.2 and not unsupported_language(text)


def test_the_gate_withdraws_the_decisions_keeps_the_scores_and_says_why() -> None:
    gate = LanguageGate(AlwaysPTM())
    english, chinese = gate.predict([IssueText("CUDA OOM"), IssueText("显存不足", "模型加载失败")])
    assert gate.version == "always@1"
    assert english.ptm and english.themes == ("HR",) and english.abstain_reason is None
    assert (chinese.ptm, chinese.themes, chinese.subthemes) == (False, (), ())
    assert chinese.abstain_reason == UNSUPPORTED_LANGUAGE and chinese.ptm_score == 0.97
    policy = LabelPolicy()
    assert policy.labels_for(chinese) == [policy.abstain], "abstain, whatever the score"
    typed = LabelPolicy(types=True)
    assert typed.labels_for(replace(chinese, extra={"type": "bug"})) == [typed.abstain], "no type guessed either"
    assert policy.ptm_label in policy.labels_for(english)
