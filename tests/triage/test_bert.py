from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from app.taxonomy import ISSUE_TYPES, SUBTHEME_CODES, THEME_CODES
from app.triage.bert import MODEL_FILE, QUANTIZE_ON_CPU, BertClassifier, length_groups
from app.triage.bert_artifact import NEVER, build_model, content_digest, read_spec
from app.triage.bert_calibration import best_threshold, fit_type_blend, fit_type_temperature, tune_thresholds
from app.triage.bert_config import BertTrainConfig
from app.triage.bert_network import TYPES
from app.triage.bert_report import reweighted_precision
from app.triage.bert_scores import calibrate_types
from app.triage.bert_targets import holdout_split, row_weights, targets, type_weights
from app.triage.bert_text import collate, encode, truncate_pair
from app.triage.bert_train import retune_subthemes, train_bert
from app.triage.classifier import LABELS, Classifier, IssueText
from app.triage.data import LabeledIssue, load_many
from app.triage.devices import resolve_device
from app.triage.encoder import (
    BASE_SHA256,
    BASE_WEIGHTS,
    BaseWeightsError,
    base_model_dir,
    load_base,
    verify_base,
)
from app.triage.onnx_runtime import resolve_runtime
from app.triage.prior_shift import correct_prior
from app.triage.registry import CARD_FILE, LEXICAL_DIR

COMMITTED = Path(__file__).resolve().parents[2] / "models" / "bert"

_PTM = [
    ("CUDA out of memory when loading SDXL", "RuntimeError: CUDA out of memory. Tried to allocate 2 GiB", ["HR"], ["HR1"], "bug"),
    ("torch not compiled with CUDA enabled", "AssertionError: Torch not compiled with CUDA enabled on my GPU", ["HR"], ["HR2"], "bug"),
    ("ImportError: cannot import transformers", "pip install transformers fails with torch 2.1", ["SE"], ["SE2"], "bug"),
    ("How do I make Whisper output text?", "the transcription is empty, what setting am I missing?", ["PQ"], ["PQ1"], "question"),
    ("Please support Llama 3 model", "It would be great to add support for the new model", ["FN"], ["FN1"], "enhancement"),
    ("checkpoint file missing from hub", "OSError: model.safetensors not found in the model repo", ["RC"], ["RC1"], "bug"),
]
_OTHER = [
    ("Navbar CSS broken on mobile", "the menu overlaps the logo on small screens", "bug"),
    ("How do I change the README language?", "is there a setting for it?", "question"),
    ("hello", "", "question"),
    ("Add dark mode to settings page", "the settings page should follow the system theme", "enhancement"),
]


def _records() -> list[dict[str, object]]:
    records: list[dict[str, object]] = []
    for n in range(30):
        if n % 5 < 3:
            title, body, themes, subthemes, kind = _PTM[n % len(_PTM)]
            records.append(
                {"ptm": True, "title": f"{title} #{n}", "body": body, "themes": themes, "subthemes": subthemes, "type": kind}
            )
        else:
            title, body, kind = _OTHER[n % len(_OTHER)]
            records.append({"ptm": False, "title": f"{title} #{n}", "body": body, "type": kind})
    return [{"url": f"https://github.com/o/r/issues/{n}", "repo": "o/r", **r} for n, r in enumerate(records)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained for one epoch on 30 synthetic issues, from the real base encoder."""
    root = tmp_path_factory.mktemp("bert")
    data = root / "train.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in _records()) + "\n", encoding="utf-8")
    config = BertTrainConfig(batch_size=8, frozen_layers=4, holdout=0.3, dropout_samples=2)
    return train_bert([data], None, root / "model", epochs=1, seed=1, device="cpu", max_tokens=48, config=config)


@pytest.fixture(scope="module")
def tiny_fp32(tiny: Path) -> BertClassifier:
    return BertClassifier.load(tiny, device="cpu", quantize=False)


TEXTS = [
    IssueText("CUDA out of memory", "RuntimeError: CUDA out of memory " * 30),
    IssueText("short"),
    IssueText("Whisper output is blank", "empty transcription"),
    IssueText("a much longer title about a model that fails to load its checkpoint", "OSError " * 5),
]


def test_training_writes_artifact_meta_and_card(tiny: Path) -> None:
    assert sorted(p.name for p in tiny.iterdir()) == [CARD_FILE, LEXICAL_DIR, "meta.json", MODEL_FILE]
    meta = json.loads((tiny / "meta.json").read_text())
    classifier = BertClassifier.load(tiny, device="cpu", quantize=False)
    assert meta["version"] == classifier.version
    assert classifier.version.startswith("bert-minilm@") and len(classifier.version) == len("bert-minilm@") + 12
    assert set(meta["thresholds"]) == set(LABELS)
    card = (tiny / "MODEL_CARD.md").read_text()
    assert card.startswith(f"# Model card: {classifier.version}\n")
    sections = [line[3:] for line in card.splitlines() if line.startswith("## ")]
    assert sections[:3] == ["Artifact", "Data", "Settings"] and sections[-1] == "Limits"  # the baseline's close
    assert "| PTM | PTM-related |" in card
    assert isinstance(classifier, Classifier)


def test_retuning_sub_themes_changes_their_thresholds_only(tiny: Path, tmp_path: Path) -> None:
    data = tiny.parent / "train.jsonl"
    lenient = BertTrainConfig(min_subtheme_precision=0.0, min_subtheme_hits=1)
    out = retune_subthemes(tiny, [data], None, tmp_path / "retuned", lenient)
    before = BertClassifier.load(tiny, device="cpu", quantize=False)
    after = BertClassifier.load(out, device="cpu", quantize=False)
    others = [label for label in LABELS if label not in SUBTHEME_CODES]
    assert [after.spec.thresholds[c] for c in others] == [before.spec.thresholds[c] for c in others]
    issues = load_many([data])
    _, rows = holdout_split(issues, replace(lenient, holdout=0.3, split_seed=13))
    hold = [issues[i] for i in rows]
    tuned = tune_thresholds(before.scores([i.text() for i in hold], prior=False), targets(hold), lenient)
    assert {c: after.spec.thresholds[c] for c in SUBTHEME_CODES} == {c: tuned[c] for c in SUBTHEME_CODES}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["training"]["retuned_from"] == before.version and meta["version"] == after.version
    assert meta["training"]["config"]["min_subtheme_precision"] == 0.0 and (out / "MODEL_CARD.md").is_file()


def test_save_load_round_trip_gives_identical_predictions(tiny: Path, tiny_fp32: BertClassifier, tmp_path: Path) -> None:
    tiny_fp32.save(tmp_path)
    again = BertClassifier.load(tmp_path, device="cpu", quantize=False)
    assert again.version == tiny_fp32.version
    assert again.predict(TEXTS) == tiny_fp32.predict(TEXTS)


def test_version_names_the_content_not_the_file_bytes(tiny: Path) -> None:
    raw = (tiny / MODEL_FILE).read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    metadata = header["__metadata__"]
    reordered = {"__metadata__": dict(reversed(list(metadata.items()))), **{k: v for k, v in header.items() if k != "__metadata__"}}
    encoded = json.dumps(reordered).encode()
    encoded += b" " * (-len(encoded) % 8)
    rewritten = len(encoded).to_bytes(8, "little") + encoded + raw[8 + size :]
    assert rewritten != raw
    assert content_digest(rewritten) == content_digest(raw)
    changed = bytearray(raw)
    changed[-1] ^= 1
    assert content_digest(bytes(changed)) != content_digest(raw)
    assert BertClassifier.load(tiny, device="cpu", runtime="torch").version == f"bert-minilm@{content_digest(raw)[:12]}"


def test_type_head_round_trips_and_its_scores_sum_to_one(tiny: Path, tiny_fp32: BertClassifier, tmp_path: Path) -> None:
    spec = tiny_fp32.spec
    assert "types" in spec.temperatures and spec.blend is not None and len(spec.blend["types"]) == 2 + len(ISSUE_TYPES)
    predictions = tiny_fp32.predict(TEXTS)
    for prediction in predictions:
        scores = prediction.extra["type_scores"]
        assert tuple(scores) == ISSUE_TYPES
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-9)
        assert all(0.0 <= p <= 1.0 for p in scores.values())
        assert prediction.extra["type"] == max(scores, key=scores.__getitem__)
    np.testing.assert_allclose(tiny_fp32.type_scores(TEXTS).sum(axis=1), 1.0, atol=1e-9)
    assert tiny_fp32.logits(TEXTS).shape == (len(TEXTS), TYPES.stop)
    tiny_fp32.save(tmp_path)
    again = BertClassifier.load(tmp_path, device="cpu", quantize=False)
    assert [p.extra for p in again.predict(TEXTS)] == [p.extra for p in predictions]
    np.testing.assert_array_equal(again.type_scores(TEXTS), tiny_fp32.type_scores(TEXTS))


def test_type_calibration_and_stack() -> None:
    logits = np.zeros((4, TYPES.stop))
    logits[:, TYPES] = [[3.0, 0.0, -1.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]
    p = calibrate_types(logits, 2.0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[3], [1 / 3] * 3)
    lexical = np.full((4, 3), 1 / 3)
    stacked = calibrate_types(logits, 2.0, [1.0, 0.7, 0.0, 0.0, 0.0], lexical)
    np.testing.assert_allclose(stacked, p)  # a uniform lexical model adds nothing
    weights = type_weights(np.array([0, 0, 0, 0, 1, 2, -1]), 8.0)
    np.testing.assert_allclose(weights, [6 / 12, 6 / 3, 6 / 3])
    # separable logits: the fitted temperature sharpens, the stack leans on the informative part
    rng = np.random.default_rng(0)
    t = rng.integers(0, 3, 300)
    z = np.eye(3)[t] * 2.0 + rng.normal(0, 0.5, (300, 3))
    assert fit_type_temperature(z, t, np.ones(3)) < 1.0
    blend = fit_type_blend(calibrate_types(np.hstack([np.zeros((300, TYPES.start)), z]), 1.0), np.full((300, 3), 1 / 3), t, np.ones(3))
    assert blend[0] > 0.5 and blend[2] == 0.0 and len(blend) == 5


def test_predictions_follow_input_order_under_length_sorting(tiny_fp32: BertClassifier) -> None:
    together = tiny_fp32.scores(TEXTS, batch_size=2)
    alone = np.vstack([tiny_fp32.scores([t]) for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    predictions = tiny_fp32.predict(TEXTS)
    assert len(predictions) == len(TEXTS)
    for prediction in predictions:
        assert set(prediction.theme_scores) == set(THEME_CODES)
        assert set(prediction.subtheme_scores) == set(SUBTHEME_CODES)
        assert 0.0 <= prediction.ptm_score <= 1.0


def test_predict_iter_streams_in_order(tiny_fp32: BertClassifier) -> None:
    pulled = 0

    def texts():
        nonlocal pulled
        for n in range(50):
            pulled += 1
            yield TEXTS[n % len(TEXTS)]

    stream = tiny_fp32.predict_iter(texts(), batch_size=2)
    first = next(stream)
    assert pulled <= 16  # one window of batch_size * SORT_WINDOW, not all 50
    rest = list(stream)
    expected = tiny_fp32.predict([TEXTS[n % len(TEXTS)] for n in range(50)])
    assert [p.ptm_score for p in [first, *rest]] == pytest.approx([p.ptm_score for p in expected], abs=1e-5)


def test_onnx_runtime_gives_the_torch_logits(tiny: Path) -> None:
    on_torch = BertClassifier.load(tiny, device="cpu", runtime="torch", quantize=False)
    on_onnx = BertClassifier.load(tiny, device="cpu", runtime="onnx", quantize=False)
    assert (on_torch.runtime, on_onnx.runtime) == ("torch", "onnx")
    assert on_onnx.version == on_torch.version
    np.testing.assert_allclose(on_onnx.logits(TEXTS, batch_size=3), on_torch.logits(TEXTS), atol=1e-4)
    assert on_onnx.predict(TEXTS)[0].themes == on_torch.predict(TEXTS)[0].themes


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_int8_paths_stay_close_to_float32(tiny: Path, tiny_fp32: BertClassifier, runtime: str) -> None:
    int8 = BertClassifier.load(tiny, device="cpu", runtime=runtime, quantize=True)
    assert int8.quantized and not tiny_fp32.quantized and int8.runtime == runtime
    difference = np.abs(int8.logits(TEXTS) - tiny_fp32.logits(TEXTS))
    assert 0.0 < difference.max() < 0.25  # quantised (not the float graph), yet close


def test_cpu_runtime_and_int8_defaults(tiny: Path) -> None:
    served = BertClassifier.load(tiny, device="cpu")
    assert served.runtime == "onnx" and served.quantized is QUANTIZE_ON_CPU
    on_torch = BertClassifier.load(tiny, device="cpu", runtime="torch")
    assert on_torch.runtime == "torch" and on_torch.quantized is QUANTIZE_ON_CPU
    with pytest.raises(ValueError, match="the runtime must be one of auto, torch, onnx"):
        BertClassifier.load(tiny, device="cpu", runtime="tensorrt")
    assert resolve_runtime("auto", torch.device("cuda")) == "torch"
    with pytest.raises(ValueError, match="CPU only"):
        resolve_runtime("onnx", torch.device("cuda"))


def test_cached_split_forward_matches_the_full_model(tiny: Path) -> None:
    model, tokenizer, spec = build_model((tiny / MODEL_FILE).read_bytes())
    batch = collate(encode(tokenizer, TEXTS, spec.max_tokens), torch.device("cpu"))
    with torch.inference_mode():
        full = model(**batch)
        split = model.heads(model.top(model.bottom(**batch), batch["attention_mask"]))
    torch.testing.assert_close(full, split, atol=1e-5, rtol=1e-4)


def test_prior_correction_moves_the_ptm_score(tiny: Path, tiny_fp32: BertClassifier) -> None:
    low = BertClassifier.load(tiny, device="cpu", quantize=False, ptm_prior=0.2)
    base = tiny_fp32.predict(TEXTS)
    corrected = low.predict(TEXTS)
    share = tiny_fp32.spec.train_ptm_share
    for b, c in zip(base, corrected, strict=True):
        assert c.ptm_score == pytest.approx(correct_prior(b.ptm_score, 0.2, share), abs=1e-9)
        assert c.extra["ptm_score_at_training_share"] == pytest.approx(b.ptm_score)
        assert c.theme_scores == b.theme_scores
    with pytest.raises(ValueError):
        BertClassifier.load(tiny, device="cpu", ptm_prior=1.0)


def test_truncation_keeps_the_title_and_the_head_and_tail_of_the_body() -> None:
    title, body = list(range(10)), list(range(100, 400))
    kept_title, kept_body = truncate_pair(title, body, 64)
    assert kept_title == title
    assert len(kept_title) + len(kept_body) + 3 == 64
    assert kept_body[:30] == body[:30] and kept_body[-10:] == body[-10:]
    assert truncate_pair(list(range(100)), [], 64) == (list(range(62)), [])
    long_title, kept = truncate_pair(list(range(100)), body, 64)
    assert long_title == list(range(16)) and len(kept) == 64 - 3 - 16
    assert truncate_pair(title, [1, 2], 64) == (title, [1, 2])


def test_encode_puts_title_first_and_marks_the_body_segment() -> None:
    _, tokenizer = load_base()
    [(ids, first)] = encode(tokenizer, [IssueText("CUDA OOM", "word " * 500)], 32)
    assert len(ids) == 32
    assert tokenizer.decode(ids[1 : first - 1]) == "cuda oom"
    assert ids[0] == tokenizer.cls_token_id and ids[first - 1] == ids[-1] == tokenizer.sep_token_id
    batch = collate([(ids, first)], torch.device("cpu"))
    assert batch["token_type_ids"][0, first:].eq(1).all() and batch["token_type_ids"][0, :first].eq(0).all()


def test_tampered_base_weights_are_refused(tmp_path: Path) -> None:
    copy = tmp_path / "base"
    shutil.copytree(base_model_dir(), copy)
    assert verify_base(copy) == BASE_SHA256
    weights = copy / BASE_WEIGHTS
    with weights.open("r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(BaseWeightsError) as error:
        load_base(copy)
    message = str(error.value)
    assert str(weights) in message and BASE_SHA256 in message and "actual" in message
    weights.unlink()
    with pytest.raises(BaseWeightsError, match="not found"):
        verify_base(copy)


def test_artifact_header_is_checked() -> None:
    with pytest.raises(ValueError, match="not a bert artifact"):
        read_spec(len(b"{}").to_bytes(8, "little") + b"{}")


def test_device_selection() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device().type == expected
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")


def test_a_learning_curve_point_fits_on_a_share_and_keeps_the_held_out_slice(tiny: Path) -> None:
    issues = load_many([tiny.parent / "train.jsonl"]) * 4  # enough rows for a stratified half
    full_fit, hold = holdout_split(issues, BertTrainConfig())
    half_fit, same_hold = holdout_split(issues, BertTrainConfig(fit_fraction=0.5))
    assert same_hold == hold and set(half_fit) < set(full_fit)
    assert abs(len(half_fit) - len(full_fit) / 2) <= 1
    share = sum(issues[i].ptm for i in half_fit) / len(half_fit)
    assert abs(share - sum(issues[i].ptm for i in full_fit) / len(full_fit)) < 0.1
    with pytest.raises(ValueError, match="fit_fraction must be in"):
        holdout_split(issues, BertTrainConfig(fit_fraction=0.0))


def test_row_weights_follow_the_annotation_certainty() -> None:
    issues = [
        LabeledIssue(id="u1", url="u1", repo="o/r", title="a", body="", ptm=True, themes=(), subthemes=(), confidence="low"),
        LabeledIssue(id="u2", url="u2", repo="o/r", title="b", body="", ptm=False, themes=(), subthemes=(), confidence="high"),
        LabeledIssue(id="u3", url="u3", repo="o/r", title="c", body="", ptm=True, themes=(), subthemes=(), confidence="high"),
        LabeledIssue(id="u4", url="u4", repo="o/r", title="d", body="", ptm=False, themes=(), subthemes=()),
    ]
    alike = BertTrainConfig(low_confidence_weight=1.0, certain_negative_weight=1.0)
    assert row_weights(issues, alike).tolist() == [1.0, 1.0, 1.0, 1.0]
    shipped = row_weights(issues, BertTrainConfig())  # low-confidence 0.5, certain non-PTM 2.0, the rest 1.0
    assert shipped.tolist() == pytest.approx([0.5 / 1.125, 2.0 / 1.125, 1.0 / 1.125, 1.0 / 1.125])
    weighted = row_weights(issues, BertTrainConfig(low_confidence_weight=0.5, certain_negative_weight=2.5))
    assert weighted.mean() == pytest.approx(1.0)
    assert weighted.tolist() == pytest.approx([0.4, 2.0, 0.8, 0.8])
    with pytest.raises(ValueError, match="row weights must be positive"):
        row_weights(issues, BertTrainConfig(low_confidence_weight=0.0))


def test_threshold_tuning_and_reweighted_precision() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    truth = np.array([1, 1, 0, 0, 0])
    assert 0.7 < best_threshold(scores, truth) <= 0.8
    assert best_threshold(scores, np.zeros(5)) == NEVER
    assert best_threshold(np.array([0.9, 0.1]), np.array([0, 1]), min_precision=0.7) == NEVER
    # 2 hits, 1 false alarm among 3 negatives; at a 20% share negatives weigh 4 * 2/3 each
    assert reweighted_precision(truth, np.array([1, 1, 1, 0, 0], dtype=bool), 0.2) == pytest.approx(2 / (2 + 8 / 3), abs=1e-4)


def test_committed_artifact_predicts_sensibly() -> None:
    assert (COMMITTED / MODEL_FILE).stat().st_size <= 25 * 1024 * 1024
    classifier = BertClassifier.load(COMMITTED, device="cpu")
    oom, css = classifier.predict(
        [
            IssueText(
                "CUDA out of memory when generating with SDXL",
                "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.50 GiB "
                "(GPU 0; 8.00 GiB total capacity). It worked before the update.",
            ),
            IssueText("Footer links are misaligned on the about page", "The CSS grid breaks below 600px width."),
        ]
    )
    assert oom.ptm and "HR" in oom.themes
    assert oom.model == classifier.version
    for prediction in (oom, css):
        assert prediction.extra["type"] in ISSUE_TYPES
        assert sum(prediction.extra["type_scores"].values()) == pytest.approx(1.0, abs=1e-9)
    assert oom.extra["type"] == "bug"
    [feature] = classifier.predict(
        [IssueText("Feature request: add an option to export the results as CSV", "It would be nice to have this.")]
    )
    assert feature.extra["type"] == "enhancement"
    assert not css.ptm and css.ptm_score < oom.ptm_score
    meta = json.loads((COMMITTED / "meta.json").read_text())
    assert meta["version"] == classifier.version


def test_length_groups_cap_the_batch_and_the_padding() -> None:
    lengths = [10, 10, 11, 11, 12, 40, 41, 200]
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    groups = list(length_groups(order, lengths, batch_size=4))
    assert [g for group in groups for g in group] == order  # every row once, in order
    assert groups == [[0, 1, 2, 3], [4], [5, 6], [7]]
    for group in groups:
        longest, used = max(lengths[i] for i in group), sum(lengths[i] for i in group)
        assert longest * len(group) <= 1.1 * used
    assert list(length_groups([2, 0, 1], [5, 5, 5], batch_size=8)) == [[2, 0, 1]]
    assert list(length_groups([], [], batch_size=8)) == []
