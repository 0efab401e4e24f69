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
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from scipy.special import expit
from torch import nn
from transformers import PreTrainedTokenizerBase

from app.taxonomy import ISSUE_TYPES, SUBTHEME_CODES, THEME_CODES
from app.triage.baseline import BaselineClassifier
from app.triage.bert_network import HEAD_PREFIXES, HEADS, OUTPUTS, TYPES, MultiTaskBert
from app.triage.classifier import LABELS, IssueText, Prediction, thresholded, type_scores
from app.triage.encoder import BASE_SHA256, load_base
from app.triage.normalize import normalize
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
NEVER = 1.01  # a threshold no probability reaches: the label abstains
# most rows per model call; length_groups splits a call further where lengths differ
DEFAULT_BATCH = {"cpu": 32, "cuda": 256, "mps": 64}
# int8 stays opt-in: dynamic quantisation scales activations per batch, so an issue's scores depend on
# the batch it lands in, and dev F1s moved by up to 2 points with the batching (benchmarks/classifier.py)
QUANTIZE_ON_CPU = False
Network = Callable[[dict[str, torch.Tensor]], np.ndarray]  # collated batch in, logits (float64) out
SORT_WINDOW = 8  # predict_iter sorts this many batches' worth of texts by length at a time
PADDING_WASTE = 0.1  # a batch closes before padding would add more than this share of its tokens
_FORMAT = "2"  # 2: the type head


@dataclass(frozen=True)
class ModelSpec:
    """What the artifact needs besides its weights (stored in the safetensors header)."""

    frozen_layers: int
    max_tokens: int
    train_ptm_share: float
    temperatures: dict[str, float]
    thresholds: dict[str, float]
    base_sha256: str = BASE_SHA256
    dropout: float = 0.1
    # head -> [a, b, c] over (logit / T, lexical logit, 1); "types": [a, b, c_bug, c_enhancement, c_question]
    blend: dict[str, list[float]] | None = None
    lexical_version: str | None = None

    def enabled_subthemes(self) -> tuple[str, ...]:
        return tuple(c for c in SUBTHEME_CODES if self.thresholds[c] <= 1.0)


# --- text -------------------------------------------------------------------------------------

Encoded = tuple[list[int], int]  # token ids, and how many of them are segment A ([CLS] title [SEP])


def truncate_pair(title: list[int], body: list[int], max_tokens: int) -> tuple[list[int], list[int]]:
    """Fit title and body tokens into ``max_tokens`` with room for the special tokens.

    The title keeps up to a quarter of the budget (more when the body is short);
    a long body keeps its head (3/4 of what is left) and its tail (1/4).
    """
    if not body:
        return title[: max_tokens - 2], []
    budget = max_tokens - 3
    title = title[: max(max_tokens // 4, budget - len(body))]
    room = budget - len(title)
    if len(body) <= room:
        return title, body
    head = math.ceil(room * 3 / 4)
    return title, body[:head] + body[len(body) - (room - head) :]


def encode(tokenizer: PreTrainedTokenizerBase, texts: Sequence[IssueText], max_tokens: int) -> list[Encoded]:
    if not texts:
        return []
    titles = [normalize(t.title, "") for t in texts]
    bodies = [normalize("", t.body) for t in texts]
    title_ids = tokenizer(titles, add_special_tokens=False)["input_ids"]
    body_ids = tokenizer(bodies, add_special_tokens=False)["input_ids"]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    encoded: list[Encoded] = []
    for title, body in zip(title_ids, body_ids, strict=True):
        title, body = truncate_pair(title, body, max_tokens)
        first = [cls, *title, sep]
        encoded.append((first + body + [sep] if body else first, len(first)))
    return encoded


def collate(batch: Sequence[Encoded], device: torch.device) -> dict[str, torch.Tensor]:
    """Padded ``input_ids``, ``attention_mask`` and ``token_type_ids`` (dynamic padding)."""
    width = max(len(ids) for ids, _ in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    types = torch.zeros_like(ids)
    for row, (tokens, first) in enumerate(batch):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
        types[row, first : len(tokens)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "token_type_ids": types.to(device)}


# --- artifact ---------------------------------------------------------------------------------


def pack_artifact(model: MultiTaskBert, spec: ModelSpec) -> bytes:
    """The artifact bytes: trained layers in float16, heads in float32, ``spec`` in the header."""
    tensors = {
        k: (v.detach().to("cpu", torch.float32) if k.startswith(HEAD_PREFIXES) else v.detach().to("cpu", torch.float16))
        for k, v in model.trained_state().items()
    }
    return save_tensors({k: t.contiguous() for k, t in sorted(tensors.items())}, {"format": _FORMAT, "spec": _canonical(asdict(spec))})


def content_digest(raw: bytes) -> str:
    """sha256 of what an artifact holds (its metadata, then each tensor's name, dtype, shape and
    bytes, by name) rather than of its file bytes: safetensors writes the metadata entries in no
    fixed order, so two writes of one model can differ byte for byte."""
    header, data = _split_artifact(raw)
    digest = hashlib.sha256(_canonical(header.pop("__metadata__", {})).encode())
    for name in sorted(header):
        entry = header[name]
        start, end = entry["data_offsets"]
        digest.update(_canonical([name, entry["dtype"], entry["shape"]]).encode())
        digest.update(data[start:end])
    return digest.hexdigest()


def _split_artifact(raw: bytes) -> tuple[dict[str, Any], memoryview]:
    """A safetensors file's JSON header and its data buffer (the offsets in the header count from its start)."""
    size = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + size]), memoryview(raw)[8 + size :]


def read_spec(raw: bytes) -> ModelSpec:
    metadata = _split_artifact(raw)[0].get("__metadata__") or {}
    if metadata.get("format") != _FORMAT or "spec" not in metadata:
        raise ValueError("not a bert artifact of this version of the app")
    fields = json.loads(metadata["spec"])
    if set(fields.get("thresholds", ())) != set(LABELS):
        raise ValueError("bert artifact labels do not match app.taxonomy")
    if "types" not in fields.get("temperatures", {}) or (fields.get("blend") and "types" not in fields["blend"]):
        raise ValueError("bert artifact has no issue-type head")
    fields["thresholds"] = {label: fields["thresholds"][label] for label in LABELS}
    return ModelSpec(**fields)


def build_model(raw: bytes) -> tuple[MultiTaskBert, PreTrainedTokenizerBase, ModelSpec]:
    """The base encoder with the artifact's layers and heads loaded over it (float32, CPU)."""
    spec = read_spec(raw)
    if spec.base_sha256 != BASE_SHA256:
        raise ValueError(f"artifact was trained on base weights {spec.base_sha256}, this app has {BASE_SHA256}")
    encoder, tokenizer = load_base()
    model = MultiTaskBert(encoder, spec.frozen_layers, spec.dropout)
    state = {k: v.float() for k, v in load_tensors(raw).items()}
    expected = set(model.trained_state())
    if set(state) != expected:
        raise ValueError(f"bert artifact tensors do not match the model: {sorted(set(state) ^ expected)[:5]}")
    model.load_state_dict(state, strict=False)
    return model.eval(), tokenizer, spec


# --- devices ----------------------------------------------------------------------------------


def resolve_device(requested: str | None = None) -> torch.device:
    """``requested`` (``PTM_TRIAGE_DEVICE``), else CUDA, then Apple MPS, then CPU."""
    name = (requested or "auto").strip().lower()
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} requested but CUDA is not available")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"device {name!r} requested but Apple MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def use_available_cores() -> None:
    torch.set_num_threads(available_cores())


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


# --- calibration and prior --------------------------------------------------------------------


def calibrate(
    logits: np.ndarray,
    temperatures: dict[str, float],
    blend: dict[str, list[float]] | None = None,
    lexical: np.ndarray | None = None,
) -> np.ndarray:
    """Probabilities from raw logits (columns in ``LABELS`` order; type columns, if any, are
    ignored): one temperature per head, then, with ``blend``, the stack with the lexical model's
    probabilities ``lexical``."""
    scaled = np.array(logits[:, : len(LABELS)], dtype=np.float64)
    for head, columns in HEADS.items():
        scaled[:, columns] /= temperatures[head]
        if blend is not None:
            if lexical is None:
                raise ValueError("a blend stacks the lexical model's probabilities: lexical is required")
            a, b, c = blend[head]
            scaled[:, columns] = a * scaled[:, columns] + b * logit(lexical[:, columns]) + c
    probabilities: np.ndarray = expit(scaled)
    return probabilities


def calibrate_types(
    logits: np.ndarray, temperature: float, blend: list[float] | None = None, lexical_types: np.ndarray | None = None
) -> np.ndarray:
    """Type probabilities (columns in ``ISSUE_TYPES`` order) from the model's full logits:
    ``softmax(logit / T)``, with ``blend`` ``softmax(a * logit / T + b * log(lexical_types) + c)``."""
    scaled = np.array(logits[:, TYPES], dtype=np.float64) / temperature
    if blend is not None:
        if lexical_types is None:
            raise ValueError("a type blend stacks the lexical model's type probabilities: lexical_types is required")
        a, b, *c = blend
        scaled = a * scaled + b * np.log(np.clip(lexical_types, 1e-6, 1.0)) + np.asarray(c)
    return softmax(scaled)


def softmax(z: np.ndarray) -> np.ndarray:
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    probabilities: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return probabilities


def lexical_parts(lexical: BaselineClassifier, texts: Sequence[IssueText]) -> tuple[np.ndarray, np.ndarray]:
    """The lexical model's label probabilities (``LABELS`` columns) and type probabilities
    (``ISSUE_TYPES`` columns), from one pass of its ``predict``."""
    predictions = lexical.predict(list(texts))
    labels = np.array(
        [[p.ptm_score, *(p.theme_scores[c] for c in THEME_CODES), *(p.subtheme_scores[c] for c in SUBTHEME_CODES)]
         for p in predictions],
        dtype=np.float64,
    ).reshape(len(predictions), len(LABELS))
    if any("type_scores" not in p.extra for p in predictions):
        raise ValueError(f"lexical model {lexical.version} has no issue-type head")
    types = np.array([[type_scores(p)[k] for k in ISSUE_TYPES] for p in predictions], dtype=np.float64)
    return labels, types.reshape(len(predictions), len(ISSUE_TYPES))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1.0 - p))


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


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
