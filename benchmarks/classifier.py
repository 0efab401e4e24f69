"""Throughput and latency of the BERT serving path against a plain ``transformers`` pipeline.

Same texts (dev.jsonl, lengths as in the data), same fine-tuned weights, one run:

- ours: ``BertClassifier.predict`` at batch 1, 8, 32 and 128, length-sorted batches,
  dynamic padding; on CPU on ONNX Runtime and on PyTorch, each in float32 and int8
  (dynamic quantisation), on CUDA in float16;
- pipeline: ``pipeline("text-classification")`` over a ``BertForSequenceClassification``
  holding the same fine-tuned encoder and the PTM head, float32, 256 max tokens, one
  issue at a time. It pools with the [CLS] pooler (initialised, not trained), so its
  scores are not ours; it is a compute reference for the same network size and input.

Latency is per ``predict`` call (per issue at batch 1). The dev figures of
``app.triage.evaluate`` (PTM F1, theme and sub-theme F1, type macro-F1) are reported
per variant of ours, to show where speed comes at equal accuracy. Writes
``benchmarks/results/classifier-<device>.json`` and prints a table.

    .venv/bin/python benchmarks/classifier.py [--data DEV.jsonl] [--model models/bert] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification, pipeline

from app.triage.bert import BertClassifier
from app.triage.bert_artifact import build_model
from app.triage.bert_report import headline
from app.triage.classifier import IssueText
from app.triage.data import load_jsonl
from app.triage.devices import available_cores
from app.triage.evaluate import evaluate
from app.triage.normalize import normalize
from app.triage.onnx_runtime import onnx_available

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 8, 32, 128)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "dev.jsonl")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "bert")
    parser.add_argument("--limit", type=int, help="use the first N texts only")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    issues = load_jsonl(args.data)[: args.limit]
    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    for device in devices:
        result = run(args.model, issues, device)
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"classifier-{device}.json"
        path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(table(result))
        print(f"wrote {path}")


def run(model_dir: Path, issues: Sequence[Any], device: str) -> dict[str, Any]:
    texts = [i.text() for i in issues]
    rows: list[dict[str, Any]] = []
    accuracy: dict[str, dict[str, float]] = {}
    for name, runtime, quantize in variants(device):
        classifier = BertClassifier.load(model_dir, device=device, runtime=runtime, quantize=quantize)
        accuracy[name] = headline(evaluate(classifier, issues))
        rows += [{"path": name, "batch": b, **measure(_predictor(classifier, b), texts, b)} for b in BATCHES]
        version = classifier.version
    plain = plain_pipeline(model_dir, device)
    inputs = [{"text": normalize(t.title, ""), "text_pair": normalize("", t.body)} for t in texts]
    rows.append({"path": "pipeline fp32", "batch": 1, **measure(lambda b: plain(b[0], truncation=True, max_length=256), inputs, 1)})
    reference = rows[-1]["issues_per_s"]
    for row in rows:
        row["speedup"] = round(row["issues_per_s"] / reference, 2)
    return {
        "model": version,
        "device": device,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "cores_available": available_cores(),
        "torch": torch.__version__,
        "texts": len(texts),
        "mean_chars": round(statistics.mean(len(t.title) + len(t.body) for t in texts), 1),
        "dev": accuracy,
        "rows": rows,
    }


def variants(device: str) -> list[tuple[str, str, bool]]:
    """(name, runtime, int8) of our serving path to measure on ``device``."""
    if device != "cpu":
        return [("torch fp16", "torch", False)]
    torch_paths = [("torch int8", "torch", True), ("torch fp32", "torch", False)]
    return ([("onnx int8", "onnx", True), ("onnx fp32", "onnx", False)] if onnx_available() else []) + torch_paths


def _predictor(classifier: BertClassifier, batch: int) -> Callable[[list[IssueText]], Any]:
    return lambda items: classifier.predict(items, batch_size=batch)


def measure(call: Callable[[list[Any]], Any], items: Sequence[Any], batch: int) -> dict[str, float]:
    call(list(items[:batch]))  # warm up
    latencies: list[float] = []
    started = time.perf_counter()
    for start in range(0, len(items), batch):
        chunk = list(items[start : start + batch])
        t0 = time.perf_counter()
        call(chunk)
        latencies.append((time.perf_counter() - t0) * 1000)
    total = time.perf_counter() - started
    return {
        "issues_per_s": round(len(items) / total, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "calls": len(latencies),
    }


def plain_pipeline(model_dir: Path, device: str) -> Any:
    """A ``text-classification`` pipeline over the same fine-tuned encoder and PTM head."""
    ours, tokenizer, _ = build_model((model_dir / "model.safetensors").read_bytes())
    config = BertConfig.from_dict({**ours.encoder.config.to_dict(), "num_labels": 1})
    model = BertForSequenceClassification(config)
    missing, unexpected = model.bert.load_state_dict(ours.encoder.state_dict(), strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing):
        raise RuntimeError(f"encoder weights do not fit: missing {missing}, unexpected {unexpected}")
    model.classifier.load_state_dict(ours.ptm_head.state_dict())
    return pipeline("text-classification", model=model.eval(), tokenizer=tokenizer, device=device, dtype=torch.float32)


def table(result: dict[str, Any]) -> str:
    lines = [
        (
            f"{result['model']} on {result['device']} ({result['threads']} threads), {result['texts']} dev texts, "
        ),
        *(
            f"  dev {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items())
            for name, figures in result["dev"].items()
        ),
        f"{'path':<16}{'batch':>6}{'issues/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'speedup':>9}",
    ]
    lines += [
        f"{r['path']:<16}{r['batch']:>6}{r['issues_per_s']:>10.1f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['speedup']:>8.2f}x"
        for r in result["rows"]
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
