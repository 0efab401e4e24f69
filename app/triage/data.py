"""Annotated issues (the JSONL format of ``../shared/data``) as ``LabeledIssue``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.taxonomy import SUBTHEMES, THEMES
from app.triage.classifier import IssueText


@dataclass(frozen=True)
class LabeledIssue:
    id: str
    url: str
    repo: str
    title: str
    body: str
    ptm: bool
    themes: tuple[str, ...]
    subthemes: tuple[str, ...]
    type: str | None = None
    created: str | None = None
    state: str | None = None
    confidence: str | None = None  # the annotator's: high / low
    agreement: str | None = None  # single / double / adjudicated

    def text(self) -> IssueText:
        return IssueText(title=self.title, body=self.body)


def read_jsonl(path: Path | str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every JSONL file the app reads, read one way: (line number, object) for each line that
    is not blank; a line that is not a JSON object raises ``ValueError`` naming file and line."""
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON: {exc.msg}") from exc
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object")
            yield lineno, record


def load_jsonl(path: Path | str) -> list[LabeledIssue]:
    """Read one annotated JSONL file."""
    issues: list[LabeledIssue] = []
    for lineno, record in read_jsonl(path):
        try:
            issues.append(parse_record(record))
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{path}:{lineno}: bad annotated issue: {exc}") from exc
    return issues


def load_many(paths: Iterable[Path | str]) -> list[LabeledIssue]:
    return [issue for path in paths for issue in load_jsonl(path)]


def parse_record(record: Any) -> LabeledIssue:
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object")
    url = _optional_str(record, "url") or ""
    repo = _optional_str(record, "repo") or ""
    number = record.get("number")
    issue_id = url or (f"{repo}#{number}" if repo and number is not None else "")
    if not issue_id:
        raise ValueError("needs a 'url' or 'repo' and 'number'")
    ptm = record.get("ptm")
    if not isinstance(ptm, bool):
        raise ValueError(f"'ptm' must be true or false, got {ptm!r}")
    themes = _codes(record, "themes", THEMES)
    subthemes = _codes(record, "subthemes", SUBTHEMES)
    if not ptm and (themes or subthemes):
        raise ValueError("a non-PTM issue cannot have themes or sub-themes")
    return LabeledIssue(
        id=issue_id,
        url=url,
        repo=repo,
        title=_optional_str(record, "title") or "",
        body=_optional_str(record, "body") or "",
        ptm=ptm,
        themes=themes,
        subthemes=subthemes,
        type=_optional_str(record, "type"),
        created=_optional_str(record, "created") or None,
        state=_optional_str(record, "state"),
        confidence=_optional_str(record, "confidence"),
        agreement=_optional_str(record, "agreement"),
    )


def _optional_str(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string, got {type(value).__name__}")
    return value


def _codes(record: dict[str, Any], key: str, known: dict[str, str]) -> tuple[str, ...]:
    value = record.get(key) or []
    if not isinstance(value, list):
        raise ValueError(f"{key!r} must be a list")
    unknown = [code for code in value if code not in known]
    if unknown:
        raise ValueError(f"unknown {key} code(s): {unknown}")
    return tuple(dict.fromkeys(value))
