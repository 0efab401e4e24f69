"""Fine-tune the BERT classifier (``app.triage.bert``) and write its artifact and model card.

A stratified, seeded slice of the training data is held out: early stopping,
temperature scaling, the per-label thresholds and the choice of sub-themes are
all fitted on it, so the dev set (when given) stays a test set; per-epoch dev
figures are printed for information only. The one exception is opt-in
(``dev_veto_subthemes``, off by default): an enabled sub-theme whose dev precision
is below the bar is switched off after training, which makes the dev sub-theme
figures optimistic.

The recipe is ``bert_config``; targets and the held-out slice ``bert_targets``; the
frozen layers' cache ``bert_cache``; calibration and thresholds ``bert_calibration``;
dev figures and the model card ``bert_report``. This module is the loop and its CLI.

The embeddings and the lower ``frozen_layers`` layers stay frozen, so their
output is computed once and cached; each epoch runs only the top layers and the
heads, in length-bucketed batches with dynamic padding. Loss: binary cross
entropy with ``pos_weight`` per label (PTM over all issues, themes and
sub-themes over PTM issues only), averaged over a few dropout samples of the
pooled vector (multi-sample dropout). The pos_weight offset ``log(w)`` is taken
out of the head biases after training, then one temperature per head is fitted.
The issue-type head (bug / enhancement / question) is trained with softmax cross
entropy over every issue with a known type, with class weights ``n / (k * n_type)``
(capped at ``max_pos_weight``); as with pos_weight, the offset ``log(w)`` is then taken
out of its biases, and its temperature (and, blended, its stack, with one offset per type)
is fitted by plain NLL on the held-out slice, so its scores are calibrated probabilities.

With ``blend_lexical`` a TF-IDF baseline (``app.triage.baseline``) is fitted on the
same fitting rows and stacked with the BERT heads (three weights per head, fitted
on the held-out slice); thresholds are then tuned on the stacked probabilities.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit
from tqdm import tqdm

from app.taxonomy import (
    ISSUE_TYPES,
    SUBTHEME_CODES,
)
from app.triage.baseline import fit_baseline
from app.triage.bert import MODEL_FILE, BertClassifier
from app.triage.bert_artifact import ModelSpec, build_model, pack_artifact
from app.triage.bert_cache import cache_bottom, length_batches, padded, top_logits
from app.triage.bert_calibration import (
    fit_blend,
    fit_temperatures,
    fit_type_blend,
    fit_type_temperature,
    lexical_scores,
    lexical_type_scores,
    quick_metrics,
    remove_pos_weight_offset,
    round_to_storage,
    tune_thresholds,
)
from app.triage.bert_config import BertTrainConfig
from app.triage.bert_network import HEADS, TYPES, MultiTaskBert
from app.triage.bert_report import (
    cpu_throughput,
    dev_figures,
    dev_veto,
    part_figures,
    quantization_check,
    scores_summary,
    type_macro_f1,
    write_bert_card,
)
from app.triage.bert_scores import calibrate, calibrate_types
from app.triage.bert_targets import (
    holdout_split,
    label_counts,
    positive_weights,
    row_weights,
    targets,
    type_counts,
    type_targets,
    type_weights,
)
from app.triage.bert_text import encode
from app.triage.classifier import LABELS
from app.triage.data import LabeledIssue, load_jsonl, load_many
from app.triage.devices import resolve_device, use_available_cores
from app.triage.encoder import BASE_NAME, BASE_SHA256, load_base
from app.triage.registry import META_FILE

_THEMES = HEADS["themes"]
_SUBTHEMES = HEADS["subthemes"]


@dataclass
class FitResult:
    classifier: BertClassifier
    report: dict[str, Any]


def train_bert(
    data_files: list[Path],
    dev_file: Path | None,
    out_dir: Path,
    *,
    epochs: int = BertTrainConfig.epochs,
    seed: int = BertTrainConfig.seed,
    device: str | None = None,
    max_tokens: int = 256,
    config: BertTrainConfig | None = None,
) -> Path:
    """Train on ``data_files``, report on ``dev_file``; write the artifact and card to ``out_dir``."""
    config = replace(config or BertTrainConfig(), epochs=epochs, seed=seed, max_tokens=max_tokens)
    started = time.perf_counter()
    issues = load_many(data_files)
    dev = load_jsonl(dev_file) if dev_file else []
    result = fit_bert(issues, dev, config, device=device)
    report = result.report
    report["data"]["files"] = [Path(p).name for p in data_files]
    report["data"]["dev_file"] = Path(dev_file).name if dev_file else None
    report["throughput_cpu"] = cpu_throughput(result.classifier, [i.text() for i in (dev or issues)])
    report["wall_time_s"] = round(time.perf_counter() - started, 1)
    result.classifier.save(out_dir, {"training": report})
    write_bert_card(result.classifier, report, out_dir)
    print(f"wrote {out_dir} ({result.classifier.version}) in {report['wall_time_s']:.0f} s")
    return out_dir


def retune_subthemes(model_dir: Path, data_files: list[Path], dev_file: Path | None, out_dir: Path,
                     config: BertTrainConfig | None = None) -> Path:
    """A trained model with its sub-theme thresholds chosen again under ``config``, on the
    held-out slice it was tuned on; written to ``out_dir`` with its dev figures and card anew.

    Nothing else depends on them (epochs are chosen on PTM and themes, calibration per head),
    so the result is the model training with ``config`` would have written.
    """
    config = config or BertTrainConfig()
    meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
    report = meta["training"]
    issues = load_many(data_files)
    trained_config = report["config"]
    split = replace(config, split_seed=trained_config["split_seed"], holdout=trained_config["holdout"])
    _, hold_rows = holdout_split(issues, split)
    hold = [issues[i] for i in hold_rows]
    trained = BertClassifier.load(model_dir, device="cpu", quantize=False)
    tuned = tune_thresholds(trained.scores([i.text() for i in hold], prior=False), targets(hold), config)
    model, _, spec = build_model((model_dir / MODEL_FILE).read_bytes())
    spec = replace(spec, thresholds={**spec.thresholds, **{code: tuned[code] for code in SUBTHEME_CODES}})
    classifier = BertClassifier.from_bytes(pack_artifact(model, spec), device="cpu", quantize=False,
                                           lexical=trained.lexical)
    report["config"] |= {"min_subtheme_precision": config.min_subtheme_precision,
                         "min_subtheme_hits": config.min_subtheme_hits, "dev_veto_subthemes": False}
    report["retuned_from"] = trained.version
    report["dev_vetoed_subthemes"] = []
    report["data"] |= {"files": [Path(p).name for p in data_files],
                       "dev_file": Path(dev_file).name if dev_file else None}
    dev = load_jsonl(dev_file) if dev_file is not None else []
    if dev:
        report["dev"] = dev_figures(classifier, dev, config.reweighted_share)
    report.setdefault("throughput_cpu", cpu_throughput(classifier, [i.text() for i in (dev or hold)]))
    report["enabled_subthemes"] = list(classifier.spec.enabled_subthemes())
    classifier.save(out_dir, {"training": report})
    write_bert_card(classifier, report, out_dir)
    return out_dir


def fit_bert(
    issues: Sequence[LabeledIssue], dev: Sequence[LabeledIssue], config: BertTrainConfig, device: str | None = None
) -> FitResult:
    _seed_everything(config.seed)
    target = resolve_device(device)
    if target.type == "cpu":
        use_available_cores()
    fit_rows, hold_rows = holdout_split(issues, config)
    fit_issues, hold_issues = [issues[i] for i in fit_rows], [issues[i] for i in hold_rows]
    encoder, tokenizer = load_base()
    model = MultiTaskBert(encoder, config.frozen_layers, config.dropout).to(target)
    trained = set(model.trained_state())
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name in trained

    def cached(part: Sequence[LabeledIssue]) -> list[torch.Tensor]:
        return cache_bottom(model, encode(tokenizer, [i.text() for i in part], config.max_tokens), target)

    t0 = time.perf_counter()
    fit_cache, hold_cache, dev_cache = cached(fit_issues), cached(hold_issues), cached(dev)
    cache_s = time.perf_counter() - t0
    fit_y, hold_y, dev_y = targets(fit_issues), targets(hold_issues), targets(dev)
    fit_t, hold_t = type_targets(fit_issues), type_targets(hold_issues)
    pos_weight = positive_weights(fit_y, config.max_pos_weight)
    class_weight = type_weights(fit_t, config.max_pos_weight)

    t0 = time.perf_counter()
    history = _train(model, Part(fit_cache, fit_y, fit_t, row_weights(fit_issues, config)),
                     Part(hold_cache, hold_y, hold_t), Part(dev_cache, dev_y, type_targets(dev)),
                     pos_weight, class_weight, config, target)
    train_s = time.perf_counter() - t0

    round_to_storage(model)
    remove_pos_weight_offset(model, pos_weight, class_weight)
    hold_logits = top_logits(model, hold_cache, target)
    temperatures = fit_temperatures(hold_logits, hold_y)
    temperatures["types"] = fit_type_temperature(hold_logits[:, TYPES], hold_t)
    lexical = fit_baseline(fit_issues) if config.blend_lexical else None
    hold_lexical, hold_lexical_types = lexical_scores(lexical, hold_issues), lexical_type_scores(lexical, hold_issues)
    blend = fit_blend(calibrate(hold_logits, temperatures), hold_lexical, hold_y) if hold_lexical is not None else None
    if blend is not None:
        assert hold_lexical_types is not None  # a blend is fitted with the lexical model only
        hold_types = calibrate_types(hold_logits, temperatures["types"])
        blend["types"] = fit_type_blend(hold_types, hold_lexical_types, hold_t)
    thresholds = tune_thresholds(calibrate(hold_logits, temperatures, blend, hold_lexical), hold_y, config)
    spec = ModelSpec(
        frozen_layers=config.frozen_layers,
        max_tokens=config.max_tokens,
        train_ptm_share=round(float(fit_y[:, 0].mean()), 4),
        temperatures=temperatures,
        thresholds=thresholds,
        dropout=config.dropout,
        blend=blend,
        lexical_version=lexical.version if lexical else None,
    )
    classifier = BertClassifier.from_bytes(pack_artifact(model, spec), device=str(target), quantize=False, lexical=lexical)
    report: dict[str, Any] = {
        "config": asdict(config),
        "base": {"name": BASE_NAME, "sha256": BASE_SHA256},
        "device": str(target),
        "data": {
            "issues": len(issues),
            "fit": len(fit_issues),
            "holdout": len(hold_issues),
            "dev": len(dev),
            "positives": {"fit": label_counts(fit_y), "holdout": label_counts(hold_y), "dev": label_counts(dev_y) if dev else {}},
        },
        "pos_weight": dict(zip(LABELS, (round(float(w), 3) for w in pos_weight), strict=True)),
        "type_class_weight": dict(zip(ISSUE_TYPES, (round(float(w), 3) for w in class_weight), strict=True)),
        "types": {
            "fit": type_counts(fit_t),
            "holdout": type_counts(hold_t),
            "dev": type_counts(type_targets(dev)) if dev else {},
        },
        "history": history,
        "times_s": {"cache": round(cache_s, 1), "train": round(train_s, 1)},
        "holdout": scores_summary(classifier, hold_issues),
    }
    if dev and lexical:
        assert hold_lexical is not None  # lexical_scores gives scores whenever there is a lexical model
        report["dev_parts"] = part_figures(
            model, hold_logits, hold_lexical, hold_y, dev_cache, dev, temperatures, lexical, config, target
        )
    if dev:
        classifier, report["dev_vetoed_subthemes"] = dev_veto(classifier, model, spec, dev, config)
        report["dev"] = dev_figures(classifier, dev, config.reweighted_share)
        report["quantization"] = quantization_check(classifier, dev)
    report["enabled_subthemes"] = list(classifier.spec.enabled_subthemes())
    return FitResult(classifier, report)


# --- training ---------------------------------------------------------------------------------


def multitask_loss(logits: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor, subtheme_weight: float,
                   rows: torch.Tensor) -> torch.Tensor:
    """PTM loss over all rows; theme and sub-theme losses over PTM rows only (type columns ignored);
    each row's losses scaled by its weight in ``rows``."""
    bce = F.binary_cross_entropy_with_logits(logits[:, : y.shape[1]].float(), y, pos_weight=pos_weight, reduction="none")
    bce = bce * rows[:, None]
    ptm_rows = y[:, :1]
    count = ptm_rows.sum().clamp(min=1.0)
    theme = (bce[:, _THEMES] * ptm_rows).sum() / (count * bce[:, _THEMES].shape[1])
    subtheme = (bce[:, _SUBTHEMES] * ptm_rows).sum() / (count * bce[:, _SUBTHEMES].shape[1])
    return bce[:, 0].mean() + theme + subtheme_weight * subtheme


def type_loss(logits: torch.Tensor, t: torch.Tensor, class_weight: torch.Tensor) -> torch.Tensor:
    """Class-weighted softmax cross entropy of the type columns over rows with a known type."""
    known = t >= 0
    if not bool(known.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[known][:, TYPES].float(), t[known], weight=class_weight)


@dataclass(frozen=True)
class Part:
    """A part of the data as the loop sees it: the frozen layers' cached output, the label
    targets, the type targets (-1 where the type is unknown) and each row's weight in the label losses."""

    cache: list[torch.Tensor]
    y: np.ndarray
    t: np.ndarray
    w: np.ndarray | None = None  # only the fitting rows are weighted; the others are scored


def _train(model: MultiTaskBert, fit: Part, hold: Part, dev: Part, pos_weight: np.ndarray,
           class_weight: np.ndarray, config: BertTrainConfig, device: torch.device) -> list[dict[str, Any]]:
    """Train in place, keep the epoch with the best held-out score (early stopping)."""
    rng = np.random.default_rng(config.seed)
    lengths = [len(h) for h in fit.cache]
    steps = config.epochs * math.ceil(len(fit.cache) / config.batch_size)
    optimizer = _optimizer(model, config)
    warmup = max(1, int(steps * config.warmup))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    amp, scaler = _mixed_precision(device)
    weight = torch.tensor(pos_weight, dtype=torch.float32, device=device)
    labels = torch.tensor(fit.y, device=device)
    kinds = torch.tensor(fit.t, device=device)
    row_weight = torch.tensor(fit.w if fit.w is not None else np.ones(len(fit.cache), np.float32), device=device)
    type_weight = torch.tensor(class_weight, dtype=torch.float32, device=device)
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    history: list[dict[str, Any]] = []
    stale = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        progress = tqdm(length_batches(lengths, config.batch_size, rng), desc=f"epoch {epoch}", unit="batch")
        total = 0.0
        for n, rows in enumerate(progress, start=1):
            hidden, mask = padded(fit.cache, rows)
            with amp():
                pooled = model.top(hidden, mask)
                losses = []
                for _ in range(config.dropout_samples):
                    out = model.heads(pooled)
                    losses.append(
                        multitask_loss(out, labels[rows], weight, config.subtheme_loss_weight, row_weight[rows])
                        + config.type_loss_weight * type_loss(out, kinds[rows], type_weight)
                    )
                loss = torch.stack(losses).mean()
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            total += float(loss.detach())
            progress.set_postfix(loss=f"{total / n:.4f}")
        progress.close()
        record = _epoch_record(epoch, total / max(n, 1), model, hold, dev, config, device)
        history.append(record)
        print(_epoch_line(record), flush=True)
        if best is None or record["selection"] > best[0] + 1e-6:
            best, stale = (record["selection"], {k: v.clone() for k, v in model.trained_state().items()}), 0
        else:
            stale += 1
            if stale >= config.patience:
                print(f"early stop: no held-out gain for {stale} epochs", flush=True)
                break
    assert best is not None
    model.load_state_dict(best[1], strict=False)
    model.eval()
    return history


def _optimizer(model: MultiTaskBert, config: BertTrainConfig) -> torch.optim.Optimizer:
    heads = [p for n, p in model.named_parameters() if p.requires_grad and "_head." in n]
    decay = [p for n, p in model.named_parameters() if p.requires_grad and "_head." not in n and p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and "_head." not in n and p.ndim <= 1]
    return torch.optim.AdamW(
        [
            {"params": decay, "lr": config.lr_encoder, "weight_decay": config.weight_decay},
            {"params": no_decay, "lr": config.lr_encoder, "weight_decay": 0.0},
            {"params": heads, "lr": config.lr_heads, "weight_decay": 0.0},
        ]
    )


def _mixed_precision(device: torch.device) -> tuple[Any, torch.amp.GradScaler]:
    """autocast (bf16 where supported, else fp16 with a grad scaler) on CUDA; plain fp32 elsewhere."""
    if device.type != "cuda":
        return nullcontext, torch.amp.GradScaler("cpu", enabled=False)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return (lambda: torch.autocast("cuda", dtype=dtype)), torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)




def _epoch_record(epoch: int, loss: float, model: MultiTaskBert, hold: Part, dev: Part, config: BertTrainConfig,
                  device: torch.device) -> dict[str, Any]:
    hold_logits = top_logits(model, hold.cache, device)
    hold_p = expit(hold_logits[:, : len(LABELS)])
    thresholds = tune_thresholds(hold_p, hold.y, config)
    held = quick_metrics(hold_p, hold.y, thresholds)
    held["type_macro_f1"] = type_macro_f1(hold_logits[:, TYPES], hold.t)
    record: dict[str, Any] = {"epoch": epoch, "train_loss": round(loss, 4), "holdout": held}
    record["selection"] = round(held["ptm_f1"] + held["theme_micro_f1"], 4)
    if dev.cache:
        dev_logits = top_logits(model, dev.cache, device)
        record["dev"] = quick_metrics(expit(dev_logits[:, : len(LABELS)]), dev.y, thresholds)
        record["dev"]["type_macro_f1"] = type_macro_f1(dev_logits[:, TYPES], dev.t)
    return record




def _epoch_line(record: dict[str, Any]) -> str:
    def part(name: str, m: dict[str, float]) -> str:
        return (
            f"{name}: PTM F1 {m['ptm_f1']:.3f} themes micro {m['theme_micro_f1']:.3f} "
            f"macro {m['theme_macro_f1']:.3f} sub micro {m['subtheme_micro_f1']:.3f}"
        )

    def kind(m: dict[str, float]) -> str:
        return f" type macro {m['type_macro_f1']:.3f}" if "type_macro_f1" in m else ""

    line = f"epoch {record['epoch']} loss {record['train_loss']:.4f} | {part('held-out', record['holdout'])}"
    line += kind(record["holdout"])
    return line + (f" | {part('dev', record['dev'])}{kind(record['dev'])}" if "dev" in record else "")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def main() -> None:
    """``python -m app.triage.bert_train TRAIN.jsonl [DEV.jsonl] OUT_DIR`` (the CLI wraps ``train_bert``)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    parser.add_argument("--dev", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=BertTrainConfig.epochs)
    parser.add_argument("--seed", type=int, default=BertTrainConfig.seed)
    parser.add_argument("--device")
    parser.add_argument("--frozen-layers", type=int, default=BertTrainConfig.frozen_layers)
    parser.add_argument("--limit", type=int, help="train on the first N issues only (quick experiments)")
    args = parser.parse_args()
    config = BertTrainConfig(frozen_layers=args.frozen_layers)
    files = args.data
    if args.limit:
        subset = args.out / "subset.jsonl"
        args.out.mkdir(parents=True, exist_ok=True)
        lines = [line for path in files for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        random.Random(args.seed).shuffle(lines)
        subset.write_text("\n".join(lines[: args.limit]) + "\n", encoding="utf-8")
        files = [subset]
    train_bert(files, args.dev, args.out, epochs=args.epochs, seed=args.seed, device=args.device, config=config)
    print(json.dumps(json.loads((args.out / "meta.json").read_text())["training"].get("dev", {}).get("ptm", {})))


if __name__ == "__main__":
    main()
