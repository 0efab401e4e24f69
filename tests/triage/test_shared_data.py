"""``../shared/data`` as training and evaluation read it: its shape and invariants.

The files grow between issues, so nothing here pins how many issues, repositories
or labels they hold; what must hold for every row and for the two splits is checked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from app.taxonomy import ISSUE_TYPES, SUBTHEME_CODES, THEME_CODES, theme_of
from app.triage.data import load_jsonl
from tests.conftest import SHARED

SPLITS = ("train", "dev")
FIELDS: dict[str, type | tuple[type, ...]] = {
    "url": str, "repo": str, "number": int, "state": str, "created": str, "labels": list, "title": str,
    "body": str, "description_shown": bool, "ptm": bool, "themes": list, "subthemes": list,
    "confidence": str, "type": str, "agreement": str,
}


def path_of(split: str) -> Path:
    return SHARED / "data" / f"{split}.jsonl"


@pytest.fixture(scope="module")
def rows() -> dict[str, list[dict[str, Any]]]:
    return {split: [json.loads(line) for line in path_of(split).read_text(encoding="utf-8").splitlines()
                    if line.strip()] for split in SPLITS}


@pytest.mark.parametrize("split", SPLITS)
def test_every_row_has_the_documented_fields(rows: dict[str, list[dict[str, Any]]], split: str) -> None:
    assert rows[split], f"{split}.jsonl is empty"
    for row in rows[split]:
        assert set(FIELDS) <= set(row), f"{row.get('url')}: missing {set(FIELDS) - set(row)}"
        wrong = {key: type(row[key]).__name__ for key, kind in FIELDS.items() if not isinstance(row[key], kind)}
        assert not wrong, f"{row['url']}: wrong types {wrong}"
        assert row["url"] == f"https://github.com/{row['repo']}/issues/{row['number']}"
        assert row["state"] in ("open", "closed")
        assert row["created"] == "" or re.fullmatch(r"\d{4}-\d\d-\d\d", row["created"])
        assert all(isinstance(label, str) for label in row["labels"])
        assert row["title"].strip(), f"{row['url']}: no title"


@pytest.mark.parametrize("split", SPLITS)
def test_labels_are_taxonomy_codes_that_agree_with_each_other(rows: dict[str, list[dict[str, Any]]],
                                                               split: str) -> None:
    for row in rows[split]:
        where = row["url"]
        assert set(row["themes"]) <= set(THEME_CODES), where
        assert set(row["subthemes"]) <= set(SUBTHEME_CODES), where
        themes_of_subthemes = {theme_of(code) for code in row["subthemes"]}
        assert themes_of_subthemes <= set(row["themes"]), f"{where}: a sub-theme without its theme"
        assert bool(row["themes"]) == row["ptm"], f"{where}: themes exactly when PTM-related"
        assert row["type"] in ISSUE_TYPES, where
        assert row["confidence"] in ("high", "low"), where
        assert row["agreement"] in ("single", "double", "adjudicated"), where


def test_the_splits_are_disjoint_and_hold_each_issue_once(rows: dict[str, list[dict[str, Any]]]) -> None:
    urls = {split: [row["url"] for row in rows[split]] for split in SPLITS}
    for split in SPLITS:
        assert len(set(urls[split])) == len(urls[split]), f"an issue twice in {split}.jsonl"
    assert not set(urls["train"]) & set(urls["dev"]), "an issue in both splits"


def test_train_holds_every_label_the_models_learn(rows: dict[str, list[dict[str, Any]]]) -> None:
    """Both classes, every theme, sub-theme and issue type: a head without examples cannot be trained."""
    train = rows["train"]
    assert {row["ptm"] for row in train} == {True, False}
    assert {code for row in train for code in row["themes"]} == set(THEME_CODES)
    assert {code for row in train for code in row["subthemes"]} == set(SUBTHEME_CODES)
    assert {row["type"] for row in train} == set(ISSUE_TYPES)


@pytest.mark.parametrize("split", SPLITS)
def test_the_product_reader_takes_every_row_as_written(rows: dict[str, list[dict[str, Any]]], split: str) -> None:
    issues = load_jsonl(path_of(split))
    assert [issue.url for issue in issues] == [row["url"] for row in rows[split]]
    for issue, row in zip(issues, rows[split], strict=True):
        assert (issue.ptm, list(issue.themes), list(issue.subthemes), issue.type) == (
            row["ptm"], row["themes"], row["subthemes"], row["type"])
