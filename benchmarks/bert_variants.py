"""Variants of the BERT recipe tried against issue 3's accuracy targets, on the same split.

Every variant fits on train.jsonl's fitting rows, tunes on its held-out slice (the
split of ``app.triage.bert_train``, seed 13) and reports dev.jsonl's figures
(``app.triage.bert_calibration.quick_metrics``: PTM F1, theme and sub-theme micro/macro F1).

    # a training recipe: BertTrainConfig fields as JSON (about 9-18 minutes on 2 cores)
    .venv/bin/python benchmarks/bert_variants.py recipe full-10 '{"frozen_layers": 0, "epochs": 10, "patience": 3}'
    # an average of trained models' stacked logits, thresholds re-tuned on the held-out slice
    .venv/bin/python benchmarks/bert_variants.py ensemble models/bert OTHER_MODEL_DIR
    # the frozen base encoder's sentence embeddings + logistic regression, alone and stacked
    .venv/bin/python benchmarks/bert_variants.py embeddings models/bert
    # sub-theme decoding of a trained model: precision floors, one shared cut (no retraining)
    .venv/bin/python benchmarks/bert_variants.py subthemes models/bert
    # a trained model with its sub-theme thresholds chosen by today's BertTrainConfig
    .venv/bin/python benchmarks/bert_variants.py retune MODEL_DIR OUT_DIR
    # a learning-curve point: the shipped recipe fitted on 25% of the fitting rows (same held-out slice)
    .venv/bin/python benchmarks/bert_variants.py recipe curve-25 '{"fit_fraction": 0.25}'
    # one recipe's seeds on dev: every figure with its mean and standard deviation
    .venv/bin/python benchmarks/bert_variants.py seeds NAME MODEL_DIR MODEL_DIR MODEL_DIR

Each writes ``benchmarks/results/variant-<name>.json`` and prints its figures.

Runs on the 5,011-issue split (issue 11; 2 cores, two runs side by side, one core each):
- seed 13, shipped before the row weights (``ptm-triage train --kind bert``; 73 min): bert-minilm@9a47d557df22;
- seed 7 (``recipe split5011-seed-7 '{"seed": 7}'``; about 70 min): bert-minilm@c470990f2916;
- seed 21 (``recipe split5011-seed-21 '{"seed": 21}'``; 60 min): bert-minilm@7749e122a0bf;
- the three on dev with mean and spread: ``seeds split5011 models/bert A-s7 A-s21`` (``variant-seeds-split5011.json``);
  the model shipped before, bert-minilm@6df5fb79afbe (old split), is in ``variant-seeds-check.json``;
- learning curve, seed 13, one core each: ``recipe curve-25 '{"fit_fraction": 0.25}'`` (21 min,
  bert-minilm@78471e762a58) and ``curve-50`` (35 min, bert-minilm@0adc19e66f7c); 100% is the shipped recipe;
- row weights from the annotation's certainty (now the recipe's defaults): ``recipe weights-certain2-low05
  '{"certain_negative_weight": 2.0, "low_confidence_weight": 0.5}' --keep W-s13`` (59 min,
  bert-minilm@717dd4a58981, shipped as ``models/bert``: seed 13 is the recipe's own seed), and the same with
  ``"seed": 7`` (bert-minilm@0b0fc3b1e8ac) and ``"seed": 21`` (bert-minilm@34fe8171b97f), about 100 min each
  beside other work; the three on dev: ``seeds weights-split5011 W-s13 W-s7 W-s21``
  (``variant-seeds-weights-split5011.json``).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from locations import DATA, RESULTS
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from app.taxonomy import SUBTHEME_CODES, THEME_CODES
from app.triage.bert import BertClassifier
from app.triage.bert_calibration import decide, quick_metrics, tune_thresholds
from app.triage.bert_config import BertTrainConfig
from app.triage.bert_network import mean_pool
from app.triage.bert_report import dev_figures, headline
from app.triage.bert_scores import lexical_parts, logit
from app.triage.bert_targets import holdout_split, targets
from app.triage.bert_text import collate, encode
from app.triage.bert_train import fit_bert, retune_subthemes
from app.triage.data import LabeledIssue, load_jsonl
from app.triage.encoder import load_base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    recipe = commands.add_parser("recipe")
    recipe.add_argument("name")
    recipe.add_argument("overrides", help="BertTrainConfig fields as a JSON object")
    recipe.add_argument("--keep", type=Path, help="save the trained model here")
    ensemble = commands.add_parser("ensemble")
    ensemble.add_argument("models", type=Path, nargs="+")
    embeddings = commands.add_parser("embeddings")
    embeddings.add_argument("model", type=Path)
    subthemes = commands.add_parser("subthemes")
    subthemes.add_argument("model", type=Path)
    seeds = commands.add_parser("seeds")
    seeds.add_argument("name")
    seeds.add_argument("models", type=Path, nargs="+")
    retune = commands.add_parser("retune")
    retune.add_argument("model", type=Path)
    retune.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.command == "retune":
        retune_subthemes(args.model, [DATA / "train.jsonl"], DATA / "dev.jsonl", args.out)
        print(json.dumps(headline(json.loads((args.out / "meta.json").read_text())["training"]["dev"])))
        return
    train, dev = load_jsonl(DATA / "train.jsonl"), load_jsonl(DATA / "dev.jsonl")
    started = time.perf_counter()
    if args.command == "recipe":
        name, result = f"recipe-{args.name}", run_recipe(train, dev, json.loads(args.overrides), args.keep)
    elif args.command == "ensemble":
        name, result = "ensemble-" + "+".join(p.name for p in args.models), run_ensemble(train, dev, args.models)
    elif args.command == "seeds":
        name, result = f"seeds-{args.name}", run_seeds(dev, args.models)
    elif args.command == "subthemes":
        name, result = f"subthemes-{args.model.name}", run_subthemes(train, dev, args.model)
    else:
        name, result = "embeddings", run_embeddings(train, dev, args.model)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"variant-{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    print(f"wrote {path}")


def run_recipe(train: list[LabeledIssue], dev: list[LabeledIssue], overrides: dict[str, Any], keep: Path | None) -> dict[str, Any]:
    fitted = fit_bert(train, dev, replace(BertTrainConfig(), **overrides))
    if keep:
        fitted.classifier.save(keep, {"training": fitted.report})
    report = fitted.report
    return {
        "overrides": overrides,
        "model": fitted.classifier.version,
        "dev": headline(report["dev"]),
        "epochs": [{"epoch": h["epoch"], "holdout": h["holdout"], "dev": h.get("dev")} for h in report["history"]],
    }


def _held_out(train: list[LabeledIssue]) -> list[LabeledIssue]:
    _, rows = holdout_split(train, BertTrainConfig())
    return [train[i] for i in rows]


def _figures(hold_p: np.ndarray, hold_y: np.ndarray, dev_p: np.ndarray, dev_y: np.ndarray) -> dict[str, float]:
    thresholds = tune_thresholds(hold_p, hold_y, BertTrainConfig())
    return {k: round(v, 4) for k, v in quick_metrics(dev_p, dev_y, thresholds).items()}


def run_ensemble(train: list[LabeledIssue], dev: list[LabeledIssue], models: list[Path]) -> dict[str, Any]:
    hold = _held_out(train)
    hold_y, dev_y = targets(hold), targets(dev)
    hold_z, dev_z, alone = [], [], {}
    for directory in models:
        classifier = BertClassifier.load(directory)
        hold_z.append(logit(classifier.scores([i.text() for i in hold], prior=False)))
        dev_z.append(logit(classifier.scores([i.text() for i in dev], prior=False)))
        alone[classifier.version] = _figures(expit(hold_z[-1]), hold_y, expit(dev_z[-1]), dev_y)
    mean_hold, mean_dev = expit(np.mean(hold_z, axis=0)), expit(np.mean(dev_z, axis=0))
    return {"models": [str(p) for p in models], "alone": alone, "ensemble": _figures(mean_hold, hold_y, mean_dev, dev_y)}


def run_seeds(dev: list[LabeledIssue], models: list[Path]) -> dict[str, Any]:
    """Dev figures of each model (one per seed) and their mean and standard deviation."""
    per_model = {}
    for directory in models:
        classifier = BertClassifier.load(directory)
        result = dev_figures(classifier, dev, BertTrainConfig().reweighted_share)
        sub = result["subthemes"]["per_label"]
        hits = sum(m["recall"] * m["support"] for m in sub.values())
        fired = sum(m["recall"] * m["support"] / m["precision"] for m in sub.values() if m["precision"] > 0)
        per_model[classifier.version] = {
            **headline(result),
            "ptm_precision": result["ptm"]["precision"], "ptm_recall": result["ptm"]["recall"],
            "ptm_roc_auc": result["ptm"]["roc_auc"], "ptm_ece": result["ptm"]["ece"],
            "precision_at_20pct_corrected": result["ptm"]["precision_at_share"]["with_prior_correction"],
            "recall_at_20pct_corrected": result["ptm"]["precision_at_share"]["recall_with_prior_correction"],
            "subtheme_micro_precision": round(hits / fired, 4) if fired else 0.0,
            **{f"fpr_{group}": m["rate"] for group, m in result["false_positive_rate"].items()},
        }
    keys = list(next(iter(per_model.values())))
    spread = {key: {"mean": round(float(np.mean([m[key] for m in per_model.values()])), 4),
                    "sd": round(float(np.std([m[key] for m in per_model.values()], ddof=1)), 4)
                    if len(per_model) > 1 else 0.0} for key in keys}
    return {"models": per_model, "mean_sd": spread}


def run_subthemes(train: list[LabeledIssue], dev: list[LabeledIssue], model: Path) -> dict[str, Any]:
    """Sub-theme decoders on one model's calibrated scores, thresholds chosen on the held-out slice.

    ``floor_X``: each sub-theme's F1-best threshold among those with held-out precision >= X
    (else it abstains; 0.7 is the training recipe's, before its dev veto). ``shared_cut``: one
    threshold for every sub-theme (given its theme fired): the held-out micro-F1-best with
    micro precision >= 0.6, statistical strength shared across the rare sub-themes.
    """
    hold = _held_out(train)
    classifier = BertClassifier.load(model)
    hold_p = classifier.scores([i.text() for i in hold], prior=False)
    dev_p = classifier.scores([i.text() for i in dev], prior=False)
    hold_y, dev_y = targets(hold), targets(dev)
    result: dict[str, Any] = {"model": classifier.version,
                              "shipped": _subtheme_figures(dev_p, dev_y, classifier.spec.thresholds)}
    for floor in (0.7, 0.6, 0.5, 0.0):
        thresholds = tune_thresholds(hold_p, hold_y, replace(BertTrainConfig(), min_subtheme_precision=floor))
        result[f"floor_{floor}"] = _subtheme_figures(dev_p, dev_y, thresholds)
    themes_only = tune_thresholds(hold_p, hold_y, BertTrainConfig())
    best: tuple[float, float] | None = None
    for cut in np.round(np.arange(0.05, 0.951, 0.01), 2):
        shared = {**themes_only, **dict.fromkeys(SUBTHEME_CODES, float(cut))}
        figures = _subtheme_figures(hold_p, hold_y, shared)
        if figures["precision"] >= 0.6 and (best is None or figures["f1"] > best[1]):
            best = (float(cut), figures["f1"])
    if best is not None:
        result["shared_cut"] = {"cut": best[0], **_subtheme_figures(
            dev_p, dev_y, {**themes_only, **dict.fromkeys(SUBTHEME_CODES, best[0])})}
    if classifier.lexical is not None:  # the stack's TF-IDF part (fitted without the held-out slice)
        lexical_hold = lexical_parts(classifier.lexical, [i.text() for i in hold])[0]
        lexical_dev = lexical_parts(classifier.lexical, [i.text() for i in dev])[0]
        columns = slice(1 + len(THEME_CODES), None)
        for name, mix in (("lexical", 1.0), ("mean", 0.5)):
            mixed_hold, mixed_dev = hold_p.copy(), dev_p.copy()
            mixed_hold[:, columns] = (1 - mix) * hold_p[:, columns] + mix * lexical_hold[:, columns]
            mixed_dev[:, columns] = (1 - mix) * dev_p[:, columns] + mix * lexical_dev[:, columns]
            for floor in (0.6, 0.65):
                config = replace(BertTrainConfig(), min_subtheme_precision=floor)
                thresholds = tune_thresholds(mixed_hold, hold_y, config)
                result[f"{name}_floor_{floor}"] = _subtheme_figures(mixed_dev, dev_y, thresholds)
    return result


def _subtheme_figures(p: np.ndarray, y: np.ndarray, thresholds: dict[str, float]) -> dict[str, float]:
    """Micro precision, recall and F1 of the sub-theme decisions (gated by PTM and theme), and how many fire."""
    columns = slice(1 + len(THEME_CODES), 1 + len(THEME_CODES) + len(SUBTHEME_CODES))
    decided, truth = decide(p, thresholds)[:, columns], y[:, columns].astype(int)
    hits, fired, positives = int((decided & truth).sum()), int(decided.sum()), int(truth.sum())
    precision = hits / fired if fired else 0.0
    recall = hits / positives if positives else 0.0
    f1 = 2 * hits / (fired + positives) if fired + positives else 0.0
    enabled = sum(thresholds[c] <= 1.0 for c in SUBTHEME_CODES)
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "enabled": enabled}


def run_embeddings(train: list[LabeledIssue], dev: list[LabeledIssue], model: Path) -> dict[str, Any]:
    fit_rows, hold_rows = holdout_split(train, BertTrainConfig())
    fit, hold = [train[i] for i in fit_rows], [train[i] for i in hold_rows]
    encoder, tokenizer = load_base()
    vectors = {name: _sentence_embeddings(encoder, tokenizer, part) for name, part in (("fit", fit), ("hold", hold), ("dev", dev))}
    fit_y, hold_y, dev_y = targets(fit), targets(hold), targets(dev)
    classifier = BertClassifier.load(model)
    stacked_hold = logit(classifier.scores([i.text() for i in hold], prior=False))
    stacked_dev = logit(classifier.scores([i.text() for i in dev], prior=False))
    result: dict[str, Any] = {"model": classifier.version, "runs": []}
    for c in (1.0, 4.0, 16.0):
        hold_p, dev_p = _per_label_regression(vectors, fit_y, c)
        run = {"C": c, "alone": _figures(hold_p, hold_y, dev_p, dev_y)}
        for weight in (0.3, 0.5):
            mix_hold = expit((1 - weight) * stacked_hold + weight * logit(hold_p))
            mix_dev = expit((1 - weight) * stacked_dev + weight * logit(dev_p))
            run[f"stacked_w{weight}"] = _figures(mix_hold, hold_y, mix_dev, dev_y)
        result["runs"].append(run)
    return result


def _sentence_embeddings(encoder: torch.nn.Module, tokenizer: Any, issues: list[LabeledIssue]) -> np.ndarray:
    encoded = encode(tokenizer, [i.text() for i in issues], 256)
    out = []
    with torch.inference_mode():
        for start in range(0, len(encoded), 32):
            batch = collate(encoded[start : start + 32], torch.device("cpu"))
            pooled = mean_pool(encoder(**batch).last_hidden_state, batch["attention_mask"])
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out)


def _per_label_regression(vectors: dict[str, np.ndarray], fit_y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Per label, balanced logistic regression (PTM over all rows, the rest over PTM rows);
    labels with fewer than 3 positives keep a probability of 0.001."""
    hold_p = np.full((len(vectors["hold"]), fit_y.shape[1]), 1e-3)
    dev_p = np.full((len(vectors["dev"]), fit_y.shape[1]), 1e-3)
    for j in range(fit_y.shape[1]):
        rows = slice(None) if j == 0 else fit_y[:, 0] == 1
        y = fit_y[rows, j]
        if y.sum() < 3:
            continue
        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced").fit(vectors["fit"][rows], y)
        hold_p[:, j], dev_p[:, j] = model.predict_proba(vectors["hold"])[:, 1], model.predict_proba(vectors["dev"])[:, 1]
    return hold_p, dev_p


if __name__ == "__main__":
    main()
