"""Train a model kind on annotated JSONL files and write its artifact directory."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.taxonomy import SUBTHEMES, THEMES
from app.triage.baseline import MODEL_FILE, BaselineConfig, fit_baseline
from app.triage.classifier import LABELS
from app.triage.data import load_jsonl, load_many
from app.triage.evaluate import evaluate, format_report
from app.triage.registry import BERT, CARD_FILE, check_kind


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
    card = model_card(classifier.version, classifier.info, classifier.thresholds, meta, config, out_dir)
    (out_dir / CARD_FILE).write_text(card, encoding="utf-8")
    return out_dir


def model_card(
    version: str,
    info: dict[str, Any],
    thresholds: dict[str, float],
    meta: dict[str, Any],
    config: BaselineConfig,
    out_dir: Path,
) -> str:
    training = info["training"]
    size_mb = (out_dir / MODEL_FILE).stat().st_size / 1e6 if (out_dir / MODEL_FILE).exists() else 0.0
    names = {"PTM": "PTM-related", **THEMES, **SUBTHEMES}
    rows = [
        f"| {label} | {names[label]} | {training['positives'][label]} | {thresholds[label]:.2f} |"
        for label in LABELS
    ]
    settings = "\n".join(f"- `{key}`: {value}" for key, value in asdict(config).items())
    dev = meta.get("dev")
    dev_text = (
        f"Evaluated on `{meta['data']['dev_file']}` ({dev['n']} issues), which played no part in fitting or "
        "threshold tuning:\n\n```\n" + format_report(dev) + "\n```"
        if dev
        else "No dev set was given."
    )
    constant = ", ".join(training["constant_heads"]) or "none"
    share = training["positives"]["PTM"] / training["issues"]
    return f"""# Model card: {version}

Kind `baseline`: TF-IDF (word 1-2-grams + char_wb n-grams) and one logistic
regression head (class_weight="balanced", liblinear) for PTM-related, for each
of the 7 themes and for each of the 32 sub-themes. Theme and sub-theme heads are
fitted on PTM issues only, and their decisions apply only when the PTM head fires
(a sub-theme also needs its theme). Artifact: `{MODEL_FILE}` ({size_mb:.1f} MB);
`meta.json` repeats thresholds, counts and figures for people.

## Data
Training files: {', '.join(meta['data']['train_files'])}; {training['issues']} issues,
{training['features']} features. Heads with too few positives get a constant score
and never fire: {constant}.

## Settings
{settings}

## Thresholds
Per-label thresholds maximise F1 on out-of-fold scores of a {config.folds}-fold
cross-validation on the training data (seed {config.seed}); the dev set is not used.
They maximise F1 at the training share of PTM issues (about {share:.0%}); a deployment
sees far fewer (the paper: about 10%), so expect lower PTM precision there and
consider a higher PTM threshold in the label policy.

| label | name | train positives | threshold |
|---|---|---|---|
{chr(10).join(rows)}

## Dev figures
{dev_text}

Label quality bounds these figures: a blind second annotator agreed with the
first on themes at micro-F1 about 0.85 (see the data README).
A few design choices (character n-gram range, feature counts) were compared on
dev before the final run, so dev is not perfectly untouched; thresholds never saw it.
"""
