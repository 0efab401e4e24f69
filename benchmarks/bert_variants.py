"""Variants of the BERT recipe tried against issue 3's accuracy targets, on the same split.

Every variant fits on train.jsonl's fitting rows, tunes on its held-out slice (the
split of ``app.triage.bert_train``, seed 13) and reports dev.jsonl's figures
(``app.triage.bert_train.quick_metrics``: PTM F1, theme and sub-theme micro/macro F1).

    # a training recipe: BertTrainConfig fields as JSON (about 9-18 minutes on 2 cores)
    .venv/bin/python benchmarks/bert_variants.py recipe full-10 '{"frozen_layers": 0, "epochs": 10, "patience": 3}'
    # an average of trained models' stacked logits, thresholds re-tuned on the held-out slice
    .venv/bin/python benchmarks/bert_variants.py ensemble models/bert OTHER_MODEL_DIR
    # the frozen base encoder's sentence embeddings + logistic regression, alone and stacked
    .venv/bin/python benchmarks/bert_variants.py embeddings models/bert

Each writes ``benchmarks/results/variant-<name>.json`` and prints its figures.
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
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from app.triage.bert import BertClassifier, collate, encode, logit, mean_pool
from app.triage.bert_train import (
    BertTrainConfig,
    fit_bert,
    headline,
    holdout_split,
    quick_metrics,
    targets,
    tune_thresholds,
)
from app.triage.data import LabeledIssue, load_jsonl
from app.triage.encoder import load_base

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


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
    args = parser.parse_args()
    train, dev = load_jsonl(DATA / "train.jsonl"), load_jsonl(DATA / "dev.jsonl")
    started = time.perf_counter()
    if args.command == "recipe":
        name, result = f"recipe-{args.name}", run_recipe(train, dev, json.loads(args.overrides), args.keep)
    elif args.command == "ensemble":
        name, result = "ensemble-" + "+".join(p.name for p in args.models), run_ensemble(train, dev, args.models)
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
