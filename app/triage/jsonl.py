"""The JSONL contract of ``ptm-triage classify``: ``{"id","title","body"}`` lines in,
one prediction record per line out (same order)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.triage.classifier import Classifier, IssueText, Prediction, type_scores
from app.triage.data import read_jsonl

SCORE_DIGITS = 6


def prediction_to_record(id: Any, pred: Prediction) -> dict[str, Any]:
    return {
        "id": id,
        "ptm": bool(pred.ptm),
        "ptm_score": round(float(pred.ptm_score), SCORE_DIGITS),
        "themes": list(pred.themes),
        "theme_scores": {c: round(float(s), SCORE_DIGITS) for c, s in pred.theme_scores.items()},
        "subthemes": list(pred.subthemes),
        "subtheme_scores": {c: round(float(s), SCORE_DIGITS) for c, s in pred.subtheme_scores.items()},
        "type": pred.extra.get("type"),
        "type_scores": {c: round(float(s), SCORE_DIGITS) for c, s in type_scores(pred).items()},
        "model": pred.model,
        "abstain_reason": pred.abstain_reason,
    }


def classify_file(classifier: Classifier, in_path: Path, out_path: Path, batch_size: int = 64) -> int:
    """Classify every line of ``in_path`` into ``out_path``; returns the number written.

    The output appears only when every line succeeded (written to a temporary
    file next to it, then renamed).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    in_path, out_path = Path(in_path), Path(out_path)
    partial = out_path.with_name(f".{out_path.name}.partial")
    written = 0
    try:
        with partial.open("w", encoding="utf-8") as sink:
            for ids, texts in _batches(in_path, batch_size):
                predictions = classifier.predict(texts)
                if len(predictions) != len(texts):
                    raise ValueError(f"classifier returned {len(predictions)} predictions for {len(texts)} texts")
                for issue_id, prediction in zip(ids, predictions, strict=True):
                    sink.write(json.dumps(prediction_to_record(issue_id, prediction), ensure_ascii=False) + "\n")
                written += len(texts)
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    return written


def _batches(path: Path, size: int) -> Iterator[tuple[list[Any], list[IssueText]]]:
    ids: list[Any] = []
    texts: list[IssueText] = []
    for lineno, record in read_jsonl(path):
        issue_id, text = _parse_line(record, path, lineno)
        ids.append(issue_id)
        texts.append(text)
        if len(texts) == size:
            yield ids, texts
            ids, texts = [], []
    if texts:
        yield ids, texts


def _parse_line(record: dict[str, Any], path: Path, lineno: int) -> tuple[Any, IssueText]:
    issue_id = record.get("id")
    if not isinstance(issue_id, (str, int)) or isinstance(issue_id, bool) or issue_id == "":
        raise ValueError(f"{path}:{lineno}: 'id' must be a non-empty string or an integer")
    title, body = record.get("title"), record.get("body")
    for key, value in (("title", title), ("body", body)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{path}:{lineno}: {key!r} must be a string or null")
    return issue_id, IssueText(title=title or "", body=body or "")
