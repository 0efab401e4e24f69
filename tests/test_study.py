import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.study import (
    BATCH_SIZE,
    FIGURE_GROUPS,
    FIGURE_THEMES,
    REPORT_JSON,
    REPORT_MD,
    run_study,
)
from app.taxonomy import SUBTHEME_CODES, THEME_CODES
from app.triage.classifier import IssueText, Prediction
from tests.synthetic_installation import (
    REPOS,
    SYNTHETIC_EFFECTS,
    synthetic_installation,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "study-example"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_jsonl(path: Path, lines: Sequence[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def line(number: int, **fields) -> dict:
    base = {"repo": "o/r", "number": number, "title": f"issue {number}", "body": "",
            "created": "2024-01-01", "closed": "2024-01-05T10:00:00Z"}
    return base | fields


class FakeClassifier:
    """PTM when the title mentions CUDA; predicts an issue type through ``extra``."""

    version = "fake@1"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, texts: Sequence[IssueText]) -> list[Prediction]:
        self.batches.append(len(texts))
        return [self._one(text) for text in texts]

    @staticmethod
    def _one(text: IssueText) -> Prediction:
        ptm = "cuda" in text.title.lower()
        return Prediction(
            ptm_score=0.9 if ptm else 0.1, theme_scores=dict.fromkeys(THEME_CODES, 0.0),
            subtheme_scores=dict.fromkeys(SUBTHEME_CODES, 0.0), ptm=ptm,
            themes=("HR",) if ptm else (), subthemes=("HR1",) if ptm else (), model="fake@1",
            extra={"type": "bug"},
        )


@pytest.fixture(scope="module")
def synthetic_runs(tmp_path_factory) -> dict[int, tuple[dict, Path]]:
    """Per seed: the study's result and its output directory."""
    runs = {}
    for seed in (0, 1, 2):
        directory = tmp_path_factory.mktemp(f"study{seed}")
        source = write_jsonl(directory / "issues.jsonl", synthetic_installation(seed))
        runs[seed] = run_study(source, directory / "out", None, seed=seed, progress=False), directory / "out"
    return runs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_study_recovers_the_known_effects(synthetic_runs, seed):
    balanced = synthetic_runs[seed][0]["balanced"]
    assert set(balanced["repositories"]) == set(SYNTHETIC_EFFECTS) and not balanced["excluded_repositories"]
    for repo, effects in SYNTHETIC_EFFECTS.items():
        group = balanced["repositories"][repo]
        p = group["mann_whitney"]["p"]
        assert (p < 0.05) if effects["ptm_slower"] else (p > 0.05), (repo, p)
        assert group["chi_square"]["comparable"] is not effects["type_mix_differs"], repo
    assert balanced["pooled"]["mann_whitney"]["p"] < 0.05
    assert balanced["pooled"]["kruskal_wallis"]["p"] < 0.05  # slower themes are built in


def test_synthetic_installation_shape():
    lines = synthetic_installation(3)
    assert lines == synthetic_installation(3) and lines != synthetic_installation(4)
    assert {line["repo"] for line in lines} == {spec.name for spec in REPOS}
    for spec in REPOS:
        closed = [x for x in lines if x["repo"] == spec.name and x["closed"] is not None]
        assert sum(x["ptm"] for x in closed) == spec.ptm_closed
        assert sum(not x["ptm"] for x in closed) == spec.non_ptm_closed
    assert any(x["closed"] is None for x in lines)
    assert all(x["themes"] and x["subthemes"] for x in lines if x["ptm"])


def test_report_files(synthetic_runs):
    result, out = synthetic_runs[0]
    assert sorted(p.name for p in out.iterdir()) == sorted([REPORT_MD, REPORT_JSON, FIGURE_GROUPS, FIGURE_THEMES])
    saved = json.loads((out / REPORT_JSON).read_text(encoding="utf-8"))
    assert saved == result
    json.dumps(saved, allow_nan=False)
    assert saved["raw"]["overall"]["ptm"]["n"] == sum(spec.ptm_closed for spec in REPOS)
    for figure in (FIGURE_GROUPS, FIGURE_THEMES):
        data = (out / figure).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    report = (out / REPORT_MD).read_text(encoding="utf-8")
    for text in ("## Method", "groups comparable (p ≥ 0.05)", "type mix differs (p < 0.05)", "ε² =",
                 "Mann-Whitney U, raw", "acme/ocr-tool", "PQ Model Performance and Output Quality"):
        assert text in report
    assert f"]({FIGURE_GROUPS})" in report and f"]({FIGURE_THEMES})" in report


def test_classifier_fills_missing_labels_in_batches(tmp_path, capsys):
    n = BATCH_SIZE + 6
    lines = [line(i, title=f"CUDA out of memory {i}" if i % 2 else f"CSS glitch {i}") for i in range(n)]
    lines.append(line(n, ptm=True, themes=["MU"], type="Question"))  # fully labelled: not classified
    lines.append(line(n + 1, ptm=False, type="bug", closed=None))
    classifier = FakeClassifier()
    result = run_study(write_jsonl(tmp_path / "in.jsonl", lines), tmp_path / "out", classifier)
    assert classifier.batches == [BATCH_SIZE, 7]  # n unlabelled + the open one lacking themes
    assert "classifying: 100%" in capsys.readouterr().err
    assert (result["classified"], result["model"]) == (n + 1, "fake@1")
    balanced = result["balanced"]["pooled"]
    assert balanced["available"] == {"ptm": n // 2 + 1, "non_ptm": n // 2}
    assert result["raw"]["overall"]["themes"]["HR"]["n"] == n // 2
    assert result["raw"]["overall"]["themes"]["MU"]["n"] == 1
    assert balanced["chi_square"]["excluded_unknown_type"] == 0
    assert set(balanced["type_mix"]["ptm"]) <= {"bug", "question"}


def test_unlabelled_issue_without_classifier_is_an_error(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [line(1, ptm=True), line(2), line(3)])
    with pytest.raises(ValueError, match=rf"^{re.escape(str(source))}:2: no 'ptm' label and no classifier given "
                                         r"\(2 issue\(s\) without one\)$"):
        run_study(source, tmp_path / "out", None, progress=False)
    assert not (tmp_path / "out").exists()


def test_labels_are_normalised(tmp_path):
    by_id = {key: value for key, value in line(2, ptm=False, themes=["MU"]).items() if key != "number"} | {"id": 2}
    lines = [line(1, ptm=True, subthemes=["HR1", "PQ2"], type=" BUG "), by_id,
             line(3, ptm=True, themes=["FN"], type="")]
    result = run_study(write_jsonl(tmp_path / "in.jsonl", lines), tmp_path / "out", None, progress=False)
    raw = result["raw"]["overall"]
    assert raw["themes"]["HR"]["n"] == raw["themes"]["PQ"]["n"] == raw["themes"]["FN"]["n"] == 1
    assert raw["themes"]["MU"]["n"] == 0  # a non-PTM issue keeps no themes
    pooled = result["balanced"]["pooled"]
    assert pooled["n_per_group"] == 1 and pooled["ptm"]["days"] == [4]  # 2024-01-01 to 2024-01-05
    assert sum(pooled["type_mix"]["ptm"].values()) + pooled["chi_square"]["excluded_unknown_type"] == 2


@pytest.mark.parametrize(("bad", "message"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (json.dumps(line(2, repo="")), "'repo' must be a non-empty string"),
    (json.dumps(line(2) | {"number": "7"}), "'number' (or 'id') must be an integer"),
    (json.dumps(line(2, created="yesterday")), "'created' is not an ISO date or datetime"),
    (json.dumps(line(2, created=None)), "'created' must be an ISO date or datetime"),
    (json.dumps(line(2, closed="2023-12-01")), "closed (2023-12-01T00:00:00+00:00) before it was created"),
    (json.dumps(line(2, ptm="yes")), "'ptm' must be a bool or null"),
    (json.dumps(line(2, themes=["XX"])), "unknown theme codes"),
    (json.dumps(line(2, subthemes="HR1")), "'subthemes' must be a list of codes or null"),
    (json.dumps(line(2, ptm=True, subthemes=["HR9"])), "unknown subtheme codes"),
    (json.dumps(line(1, ptm=True)), "o/r#1 already on line 1"),
])
def test_bad_lines_name_file_and_line(tmp_path, bad, message):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(line(1, ptm=True)) + "\n\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as error:
        run_study(source, tmp_path / "out", None, progress=False)
    assert str(error.value).startswith(f"{source}:3: ") and message in str(error.value)


def test_committed_example_is_current(tmp_path):
    lines = [json.loads(x) for x in (EXAMPLE / "issues.jsonl").read_text(encoding="utf-8").splitlines()]
    assert lines == synthetic_installation(0)
    result = run_study(EXAMPLE / "issues.jsonl", tmp_path, None, seed=0, progress=False)
    # The last bits of a float depend on the order numpy sums in, which differs between builds.
    assert _rounded(json.loads((EXAMPLE / REPORT_JSON).read_text(encoding="utf-8"))) == _rounded(result)
    assert (EXAMPLE / REPORT_MD).read_text(encoding="utf-8") == (tmp_path / REPORT_MD).read_text(encoding="utf-8")
    for figure in (FIGURE_GROUPS, FIGURE_THEMES):
        assert (EXAMPLE / figure).read_bytes().startswith(PNG_SIGNATURE)


def _rounded(value: object) -> object:
    """``value`` with every float rounded to 9 significant digits."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
