"""Train a model kind on annotated JSONL files and write its artifact directory."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.triage.baseline import MODEL_FILE, BaselineClassifier, BaselineConfig, fit_baseline
from app.triage.data import load_jsonl, load_many
from app.triage.evaluate import evaluate
from app.triage.model_card import dev_report, label_table, settings, write_card
from app.triage.registry import BERT, check_kind


def train(
    kind: str,
    data_files: list[Path],
    dev_file: Path | None,
    out_dir: Path,
    config: BaselineConfig | None = None,
) -> Path:
    """Fit ``kind`` on ``data_files``; report on ``dev_file`` (never used for fitting). Returns ``out_dir``."""
    check_kind(kind)
    if not data_files:
        raise ValueError("no training data files given")
    if kind == BERT:
        from app.triage.bert_train import train_bert  # torch loads only for the BERT

        return train_bert(list(data_files), dev_file, out_dir)
    issues = load_many(data_files)
    config = config or BaselineConfig()
    classifier = fit_baseline(issues, config)
    dev = evaluate(classifier, load_jsonl(dev_file)) if dev_file is not None else None
    meta: dict[str, Any] = {
        "data": {"train_files": [Path(f).name for f in data_files], "dev_file": Path(dev_file).name if dev_file else None},
        "dev": dev,
    }
    classifier.save(out_dir, meta)
    write_baseline_card(classifier, meta, config, out_dir)
    return out_dir


def write_baseline_card(classifier: BaselineClassifier, meta: dict[str, Any], config: BaselineConfig, out_dir: Path) -> Path:
    training = classifier.info["training"]
    size_mb = (out_dir / MODEL_FILE).stat().st_size / 1e6 if (out_dir / MODEL_FILE).exists() else 0.0
    dev = meta.get("dev")
    constant = ", ".join(training["constant_heads"]) or "none"
    share = training["positives"]["PTM"] / training["issues"]
    summary = [
        "Kind `baseline`: TF-IDF (word 1-2-grams + char_wb n-grams) and one logistic",
        'regression head (class_weight="balanced", liblinear) for PTM-related, for each',
        "of the 7 themes and for each of the 32 sub-themes. Theme and sub-theme heads are",
        "fitted on PTM issues only, and their decisions apply only when the PTM head fires",
        f"(a sub-theme also needs its theme). Artifact: `{MODEL_FILE}` ({size_mb:.1f} MB);",
        "`meta.json` repeats thresholds, counts and figures for people.",
    ]
    thresholds = [
        f"Per-label thresholds maximise F1 on out-of-fold scores of a {config.folds}-fold",
        f"cross-validation on the training data (seed {config.seed}); the dev set is not used.",
        f"They maximise F1 at the training share of PTM issues (about {share:.0%}).",
        "",
        *label_table(["train positives", "threshold"],
                     lambda label: [training["positives"][label], f"{classifier.thresholds[label]:.2f}"]),
    ]
    dev_lines = (
        [f"Evaluated on `{meta['data']['dev_file']}` ({dev['n']} issues), which played no part in fitting or",
         "threshold tuning:", "", *dev_report(dev), "",
         "A few design choices (character n-gram range, feature counts) were compared on",
         "dev before the final run, so dev is not perfectly untouched; thresholds never saw it."]
        if dev
        else ["No dev set was given."]
    )
    return write_card(out_dir, classifier.version, summary, [
        ("Data", [f"Training files: {', '.join(meta['data']['train_files'])}; {training['issues']} issues,",
                  f"{training['features']} features. Heads with too few positives get a constant score",
                  f"and never fire: {constant}."]),
        ("Settings", settings(asdict(config))),
        ("Thresholds", thresholds),
        ("Dev figures", dev_lines),
    ])
