import json
from collections.abc import Sequence
from dataclasses import replace

import pytest

from app.taxonomy import SUBTHEME_CODES, THEME_CODES
from app.triage.classifier import IssueText, Prediction
from app.triage.data import LabeledIssue, load_jsonl, load_many
from app.triage.evaluate import evaluate, format_report
from app.triage.language import UNSUPPORTED_LANGUAGE, LanguageGate


class TitleOracle:
    """Predicts from the title: 'ptm HR SE1' -> PTM, themes HR, sub-themes SE1; score from 'score=0.x'."""

    version = "fake@1"

    def predict(self, texts: Sequence[IssueText]) -> list[Prediction]:
        out = []
        for text in texts:
            words = text.title.split()
            score = next((float(w[6:]) for w in words if w.startswith("score=")), 0.9 if "ptm" in words else 0.1)
            out.append(
                Prediction(
                    ptm_score=score,
                    theme_scores={c: 0.5 for c in THEME_CODES},
                    subtheme_scores={c: 0.5 for c in SUBTHEME_CODES},
                    ptm="ptm" in words,
                    themes=tuple(w for w in words if w in THEME_CODES),
                    subthemes=tuple(w for w in words if w in SUBTHEME_CODES),
                    model=self.version,
                )
            )
        return out


def issue(title: str, ptm: bool, themes=(), subthemes=()) -> LabeledIssue:
    return LabeledIssue(id=title, url="", repo="o/r", title=title, body="", ptm=ptm, themes=themes, subthemes=subthemes)


def test_figures_match_hand_counts():
    issues = [
        issue("ptm HR HR1 score=0.9", True, ("HR",), ("HR1",)),  # all right
        issue("ptm HR score=0.8", True, ("HR", "SE"), ("HR1", "SE1")),  # misses SE, HR1, SE1
        issue("ptm MU score=0.85", False),  # false PTM, false MU
        issue("score=0.7", True, ("PQ",), ("PQ1",)),  # missed PTM (scored above a true negative)
        issue("score=0.2", False),
    ]
    result = evaluate(TitleOracle(), issues, batch_size=2)
    json.dumps(result)
    assert result["n"] == 5 and result["model"] == "fake@1"
    assert result["ptm"] == {"precision": pytest.approx(2 / 3, abs=1e-4), "recall": pytest.approx(2 / 3, abs=1e-4),
                             "f1": pytest.approx(2 / 3, abs=1e-4), "support": 3, "roc_auc": pytest.approx(4 / 6, abs=1e-4)}
    themes = result["themes"]
    assert themes["per_label"]["HR"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert themes["per_label"]["MU"]["precision"] == 0.0 and themes["per_label"]["MU"]["support"] == 0
    # themes: tp=2 (HR twice), fp=1 (MU), fn=2 (SE, PQ) -> micro F1 = 4/7
    assert themes["micro_f1"] == pytest.approx(4 / 7, abs=1e-4)
    assert themes["macro_f1"] == pytest.approx((1 + 0 + 0) / 3, abs=1e-4)  # over HR, SE, PQ: labels with support
    subs = result["subthemes"]
    # sub-themes with support: HR1 (P 1, R 1/2 -> F1 2/3), SE1 0, PQ1 0 -> macro over 3 labels
    assert subs["macro_f1"] == pytest.approx((2 / 3) / 3, abs=1e-4)
    # over the 3 annotated-PTM issues only: tp=2 (HR twice), fp=0, fn=2 (SE, PQ) -> micro F1 = 4/6;
    # the false MU on the non-PTM issue no longer counts
    on_ptm = result["themes_on_ptm"]
    assert on_ptm["micro_f1"] == pytest.approx(4 / 6, abs=1e-4)
    assert on_ptm["per_label"]["MU"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    report = format_report(result)
    assert "PTM-related" in report and "HR1" in report and "ROC-AUC 0.667" in report
    assert "on the 3 PTM-related issues only: micro-F1 0.667" in report
    assert evaluate(TitleOracle(), [issue("score=0.2", False)])["themes_on_ptm"] is None


def test_false_positives_on_non_ptm_issues_by_confidence_and_abstentions_are_counted():
    issues = [
        replace(issue("ptm sure-wrong", False), confidence="high"),
        replace(issue("score=0.2 sure-right", False), confidence="high"),
        replace(issue("score=0.1 also-right", False), confidence="high"),
        replace(issue("ptm unsure-wrong", False), confidence="low"),
        replace(issue("ptm 显存不足 模型加载失败 怎么办", False), confidence="high"),  # the gate withdraws it
        issue("ptm HR", True, ("HR",)),
    ]
    result = evaluate(LanguageGate(TitleOracle()), issues)
    assert result["false_positive_rate"] == {"all": {"n": 5, "rate": 0.4}, "high_confidence": {"n": 4, "rate": 0.25},
                                             "other": {"n": 1, "rate": 1.0}}
    assert result["abstained"] == {UNSUPPORTED_LANGUAGE: {"n": 1, "annotated_ptm": 0}}
    report = format_report(result)
    assert "false-positive rate on non-PTM issues: all 0.400 (n=5)  high confidence 0.250 (n=4)" in report
    assert "abstained, language not supported: 1 (0 annotated PTM-related)" in report


def test_single_class_has_no_auc_and_empty_input_is_refused():
    result = evaluate(TitleOracle(), [issue("ptm HR", True, ("HR",), ("HR1",))])
    assert result["ptm"]["roc_auc"] is None and "ROC-AUC n/a" in format_report(result)
    with pytest.raises(ValueError):
        evaluate(TitleOracle(), [])


def test_load_jsonl_reads_the_shared_format_and_names_bad_lines(tmp_path):
    good = {"url": "https://github.com/o/r/issues/1", "repo": "o/r", "number": 1, "state": "open", "created": "",
            "title": "t", "body": "b", "ptm": True, "themes": ["HR"], "subthemes": ["HR1"], "type": "bug"}
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "url": "u2", "ptm": False, "themes": [], "subthemes": []}) + "\n")
    first, second = load_jsonl(path)
    assert first.id == good["url"] and first.themes == ("HR",) and first.created is None and first.type == "bug"
    assert not second.ptm and first.text() == IssueText("t", "b")
    assert len(load_many([path, path])) == 4
    for bad in ("{not json", json.dumps({**good, "themes": ["XX"]}), json.dumps({**good, "ptm": "yes"}),
                json.dumps({**good, "ptm": False}), json.dumps([1])):
        broken = tmp_path / "bad.jsonl"
        broken.write_text(json.dumps(good) + "\n" + bad + "\n")
        with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
            load_jsonl(broken)
