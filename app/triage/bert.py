"""Fine-tuned all-MiniLM-L6-v2 with four heads: PTM (binary), themes (7), sub-themes (32) and
issue type (bug / enhancement / question, softmax).

The model mean-pools the encoder's last layer over the tokens of
``[CLS] title [SEP] body [SEP]`` (title and body each through ``normalize``) and
feeds the pooled vector to four linear heads. Only the top encoder layers and
the heads are fine-tuned; the artifact (``model.safetensors``) holds just those,
in float16, plus the calibration and decision settings in its header. The
embeddings and lower layers come from the base package, whose hash is checked.

Scores are calibrated (``sigmoid(logit / T)`` with one temperature per head; the type head
``softmax(logit / T)``).
Optionally (``spec.blend``) the model is stacked with a TF-IDF baseline fitted on
the same training rows: per head, ``sigmoid(a * logit / T + b * lexical_logit + c)``
with ``a, b, c`` fitted on held-out data (the type head: ``softmax(a * logit / T + b * log
lexical_p + c_type)``, one offset per type); the baseline lives in ``lexical/`` next
to the weights and its version is pinned in the header. With ``ptm_prior`` the PTM score is moved from the training share of PTM issues
to the deployment's by Bayes' rule on the odds. Like the baseline, themes apply
only when the PTM decision fires and sub-themes only under their theme;
sub-themes that were not precise enough on held-out data abstain (threshold
``NEVER``). The type, ``Prediction.extra["type"]``, is the most probable of
``extra["type_scores"]`` (over ``app.taxonomy.ISSUE_TYPES``, summing to 1); it is trained with
class weights whose offset is then taken out, and calibrated on held-out data like the other heads.

Serving: the device is CUDA, then Apple MPS, then CPU (``PTM_TRIAGE_DEVICE`` overrides); on CPU
the network runs on ONNX Runtime (``app.triage.onnx_runtime``, ``PTM_TRIAGE_RUNTIME``), on the
GPUs on PyTorch (half precision on CUDA). Texts are sorted by length and run in batches that
waste little on padding (``length_groups``).

This module is the classifier; its parts live beside it: the input (``bert_text``), the
network (``bert_network``), the artifact format (``bert_artifact``), calibration maths
(``bert_scores``) and device choice (``devices``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from app.taxonomy import ISSUE_TYPES
from app.triage.baseline import BaselineClassifier
from app.triage.bert_artifact import ModelSpec, build_model, content_digest, read_spec
from app.triage.bert_network import OUTPUTS, MultiTaskBert
from app.triage.bert_scores import calibrate, calibrate_types, lexical_parts
from app.triage.bert_text import collate, encode
from app.triage.classifier import LABELS, IssueText, Prediction, thresholded
from app.triage.devices import available_cores, resolve_device, use_available_cores
from app.triage.onnx_runtime import (
    OnnxNetwork,
    export_graph,
    quantize_graph,
    resolve_runtime,
)
from app.triage.prior_shift import correct_prior
from app.triage.registry import ARTIFACT_FILES, BERT, LEXICAL_DIR, META_FILE

_M = TypeVar("_M", bound=nn.Module)

KIND = BERT
MODEL_FILE = ARTIFACT_FILES[BERT]
# most rows per model call; length_groups splits a call further where lengths differ
DEFAULT_BATCH = {"cpu": 32, "cuda": 256, "mps": 64}
# int8 stays opt-in: dynamic quantisation scales activations per batch, so an issue's scores depend on
# the batch it lands in, and dev F1s moved by up to 2 points with the batching (benchmarks/classifier.py)
QUANTIZE_ON_CPU = False
Network = Callable[[dict[str, torch.Tensor]], np.ndarray]  # collated batch in, logits (float64) out
SORT_WINDOW = 8  # predict_iter sorts this many batches' worth of texts by length at a time
PADDING_WASTE = 0.1  # a batch closes before padding would add more than this share of its tokens




# --- text -------------------------------------------------------------------------------------









# --- artifact ---------------------------------------------------------------------------------












# --- devices ----------------------------------------------------------------------------------










# --- calibration and prior --------------------------------------------------------------------












# --- serving ----------------------------------------------------------------------------------


class BertClassifier:
    """The fine-tuned model behind the ``Classifier`` interface; build with ``load`` or ``from_bytes``."""

    def __init__(
        self,
        network: Network,
        tokenizer: PreTrainedTokenizerBase,
        spec: ModelSpec,
        raw: bytes,
        device: torch.device,
        *,
        runtime: str = "torch",
        quantized: bool = False,
        ptm_prior: float | None = None,
        lexical: BaselineClassifier | None = None,
    ) -> None:
        if ptm_prior is not None:
            correct_prior(0.5, ptm_prior, spec.train_ptm_share)  # validates
        if spec.blend is not None and (lexical is None or lexical.version != spec.lexical_version):
            found = lexical.version if lexical else "none"
            raise ValueError(f"bert artifact needs lexical model {spec.lexical_version}, got {found}")
        self.spec = spec
        self.device = device
        self.runtime = runtime
        self.quantized = quantized
        self.ptm_prior = ptm_prior
        self._network = network
        self._tokenizer = tokenizer
        self._raw = raw
        self.lexical = lexical if spec.blend is not None else None
        self._version = f"{KIND}-minilm@{content_digest(raw)[:12]}"

    @property
    def train_ptm_share(self) -> float:
        return self.spec.train_ptm_share

    @property
    def version(self) -> str:
        return self._version

    @property
    def default_batch(self) -> int:
        return DEFAULT_BATCH.get(self.device.type, 8)

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self.spec.thresholds)

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        device: str | None = None,
        quantize: bool | None = None,
        runtime: str | None = None,
        ptm_prior: float | None = None,
    ) -> BertClassifier:
        """Load ``path/model.safetensors`` (and ``path/lexical`` when the model blends one).

        ``quantize`` (int8 dynamic, CPU only) defaults to ``QUANTIZE_ON_CPU``; ``runtime``
        (``torch``, ``onnx`` or ``auto``) to ``app.triage.onnx_runtime.resolve_runtime``'s choice."""
        path = Path(path)
        raw = (path / MODEL_FILE).read_bytes()
        lexical = BaselineClassifier.load(path / LEXICAL_DIR) if read_spec(raw).blend is not None else None
        return cls.from_bytes(raw, device=device, quantize=quantize, runtime=runtime, ptm_prior=ptm_prior, lexical=lexical)

    @classmethod
    def from_bytes(
        cls,
        raw: bytes,
        *,
        device: str | None = None,
        quantize: bool | None = None,
        runtime: str | None = None,
        ptm_prior: float | None = None,
        lexical: BaselineClassifier | None = None,
    ) -> BertClassifier:
        target = resolve_device(device)
        runtime = resolve_runtime(runtime, target)
        quantize = QUANTIZE_ON_CPU and target.type == "cpu" if quantize is None else quantize
        if quantize and target.type != "cpu":
            raise ValueError("int8 dynamic quantisation runs on CPU only")
        model, tokenizer, spec = build_model(raw)
        if target.type == "cpu":
            use_available_cores()
        network: Network
        if runtime == "onnx":
            graph = export_graph(model)
            network = OnnxNetwork(quantize_graph(graph) if quantize else graph, available_cores())
        else:
            if quantize:
                model.encoder = quantize_encoder(model.encoder)
            elif target.type == "cuda":
                model = model.half()
            network = _torch_network(model.to(target))
        return cls(
            network, tokenizer, spec, raw, target,
            runtime=runtime, quantized=quantize, ptm_prior=ptm_prior, lexical=lexical,
        )

    def save(self, out_dir: Path, meta: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors``, ``lexical/`` if blended, and ``meta.json`` (version, spec, ``meta``)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / MODEL_FILE).write_bytes(self._raw)
        if self.lexical is not None:
            self.lexical.save(out_dir / LEXICAL_DIR)
        document = {"version": self.version, "kind": KIND, **asdict(self.spec), **(meta or {})}
        (out_dir / META_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        return out_dir

    def predict(self, texts: Sequence[IssueText], batch_size: int | None = None) -> list[Prediction]:
        if not texts:
            return []
        raw_ptm, types = self.all_scores(texts, batch_size)
        scores = self._apply_prior(raw_ptm)
        return [
            self._prediction(row, raw[0], kinds) for row, raw, kinds in zip(scores, raw_ptm, types, strict=True)
        ]

    def predict_iter(self, texts: Iterable[IssueText], batch_size: int | None = None) -> Iterator[Prediction]:
        """Predictions in input order, reading ``texts`` a window at a time."""
        batch_size = batch_size or self.default_batch
        iterator = iter(texts)
        while window := list(islice(iterator, batch_size * SORT_WINDOW)):
            yield from self.predict(window, batch_size)

    def scores(self, texts: Sequence[IssueText], batch_size: int | None = None, *, prior: bool = True) -> np.ndarray:
        """Calibrated probabilities, one column per entry of ``LABELS``."""
        probabilities, _ = self.all_scores(texts, batch_size)
        return self._apply_prior(probabilities) if prior else probabilities

    def type_scores(self, texts: Sequence[IssueText], batch_size: int | None = None) -> np.ndarray:
        """Calibrated type probabilities, one column per entry of ``ISSUE_TYPES`` (rows sum to 1)."""
        return self.all_scores(texts, batch_size)[1]

    def all_scores(self, texts: Sequence[IssueText], batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Label probabilities (``LABELS`` columns, at the training PTM share) and type probabilities."""
        lexical, lexical_types = lexical_parts(self.lexical, texts) if self.lexical else (None, None)
        logits = self.logits(texts, batch_size)
        blend = self.spec.blend
        labels = calibrate(logits, self.spec.temperatures, blend, lexical)
        types = calibrate_types(logits, self.spec.temperatures["types"], blend["types"] if blend else None, lexical_types)
        return labels, types

    def logits(self, texts: Sequence[IssueText], batch_size: int | None = None) -> np.ndarray:
        """Raw logits (``LABELS`` columns, then ``TYPES``), computed in length-sorted batches of at
        most ``batch_size`` (see ``length_groups``) and returned in input order."""
        batch_size = batch_size or self.default_batch
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        encoded = encode(self._tokenizer, texts, self.spec.max_tokens)
        lengths = [len(ids) for ids, _ in encoded]
        order = sorted(range(len(encoded)), key=lengths.__getitem__)
        out = np.empty((len(encoded), OUTPUTS), dtype=np.float64)
        with torch.inference_mode():
            for rows in length_groups(order, lengths, batch_size):
                batch = collate([encoded[i] for i in rows], self.device)
                out[rows] = self._network(batch)
        return out

    def _apply_prior(self, probabilities: np.ndarray) -> np.ndarray:
        if self.ptm_prior is None:
            return probabilities
        corrected = probabilities.copy()
        corrected[:, 0] = correct_prior(corrected[:, 0], self.ptm_prior, self.spec.train_ptm_share)
        return corrected

    def _prediction(self, row: np.ndarray, raw_ptm: float, type_row: np.ndarray) -> Prediction:
        thresholds = self.spec.thresholds
        score = dict(zip(LABELS, (float(s) for s in row), strict=True))
        kinds = {kind: float(p) for kind, p in zip(ISSUE_TYPES, type_row, strict=True)}
        extra: dict[str, object] = {"type": max(kinds, key=kinds.__getitem__), "type_scores": kinds}
        if self.ptm_prior is not None:
            extra |= {"ptm_prior": self.ptm_prior, "ptm_score_at_training_share": float(raw_ptm)}
        return thresholded(score, thresholds, self.version, extra)


def length_groups(order: Sequence[int], lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Consecutive runs of ``order`` (rows sorted by ascending length) of at most ``batch_size``
    rows, each closed before padding to its longest row would exceed ``PADDING_WASTE`` of its
    tokens: texts of mixed lengths do not pay for the longest one."""
    group: list[int] = []
    tokens = 0
    for row in order:
        length = lengths[row]
        if group and (len(group) >= batch_size or length * (len(group) + 1) > (1 + PADDING_WASTE) * (tokens + length)):
            yield group
            group, tokens = [], 0
        group.append(row)
        tokens += length
    if group:
        yield group


def _torch_network(model: MultiTaskBert) -> Network:
    def run(batch: dict[str, torch.Tensor]) -> np.ndarray:
        logits: torch.Tensor = model(**batch)
        return logits.float().cpu().numpy().astype(np.float64)

    return run


def quantize_encoder(encoder: _M) -> _M:
    """int8 dynamic quantisation of the encoder's linear layers (the heads stay float32): a copy
    of ``encoder``, of its class, with quantised linear layers in place of the float ones."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices point to torchao
        quantized: _M = quantize_dynamic(encoder, {nn.Linear}, dtype=torch.qint8)
    return quantized


