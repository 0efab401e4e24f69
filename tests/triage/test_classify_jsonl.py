import json
from collections.abc import Sequence

import pytest

from app.taxonomy import SUBTHEME_CODES, THEME_CODES
from app.triage.classifier import IssueText, Prediction
from app.triage.jsonl import classify_file, prediction_to_record

KEYS = {"id", "ptm", "ptm_score", "themes", "theme_scores", "subthemes", "subtheme_scores", "type", "type_scores",
        "model", "abstain_reason"}


class Recorder:
    """PTM when the title mentions CUDA; remembers batch sizes and texts."""

    version = "fake@2"

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.texts: list[IssueText] = []

    def predict(self, texts: Sequence[IssueText]) -> list[Prediction]:
        self.batches.append(len(texts))
        self.texts.extend(texts)
        return [
            Prediction(
                ptm_score=0.123456789 if "CUDA" not in t.title else 0.987654321,
                theme_scores={c: 1 / 3 for c in THEME_CODES},
                subtheme_scores={c: 0.25 for c in SUBTHEME_CODES},
                ptm="CUDA" in t.title,
                themes=("HR",) if "CUDA" in t.title else (),
                subthemes=("HR1",) if "CUDA" in t.title else (),
                model=self.version,
            )
            for t in texts
        ]


def test_record_has_exactly_the_contract_keys():
    (pred,) = Recorder().predict([IssueText("CUDA OOM")])
    record = prediction_to_record("https://x/1", pred)
    assert set(record) == KEYS
    assert record["ptm"] is True and record["themes"] == ["HR"] and record["subthemes"] == ["HR1"]
    assert record["ptm_score"] == 0.987654 and record["theme_scores"]["MU"] == 0.333333
    assert set(record["theme_scores"]) == set(THEME_CODES) and len(record["subtheme_scores"]) == 32
    assert record["model"] == "fake@2" and record["id"] == "https://x/1" and record["abstain_reason"] is None


def test_classify_file_streams_in_batches_and_keeps_order(tmp_path):
    rows = [{"id": f"i{n}", "title": "CUDA error" if n % 2 else "css", "body": None} for n in range(7)]
    rows[3].pop("body")
    rows[4]["id"] = 42
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows[:5]) + "\n" + "".join(json.dumps(r) + "\n" for r in rows[5:]))
    clf = Recorder()
    assert classify_file(clf, src, dst, batch_size=3) == 7
    assert clf.batches == [3, 3, 1]
    assert all(t.body == "" for t in clf.texts)
    out = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [o["id"] for o in out] == [r["id"] for r in rows]
    assert [o["ptm"] for o in out] == [bool(n % 2) for n in range(7)]
    assert all(set(o) == KEYS for o in out)


@pytest.mark.parametrize(
    "bad",
    ["{oops", "[1, 2]", json.dumps({"title": "no id"}), json.dumps({"id": "x", "title": 5}),
     json.dumps({"id": "x", "body": ["list"]}), json.dumps({"id": True, "title": "t"})],
)
def test_bad_line_names_its_number_and_leaves_no_output(tmp_path, bad):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"id": "a", "title": "t"}) + "\n" + bad + "\n")
    with pytest.raises(ValueError, match=r"in\.jsonl:2"):
        classify_file(Recorder(), src, dst)
    assert not dst.exists() and list(tmp_path.iterdir()) == [src]
