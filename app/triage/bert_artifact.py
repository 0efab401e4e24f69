"""The artifact format: the fine-tuned tensors in one safetensors file, the settings (``ModelSpec``)
in its header, and a version from its content."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from transformers import PreTrainedTokenizerBase

from app.taxonomy import SUBTHEME_CODES
from app.triage.bert_network import HEAD_PREFIXES, MultiTaskBert
from app.triage.classifier import LABELS
from app.triage.encoder import BASE_SHA256, load_base

NEVER = 1.01  # a threshold no probability reaches: the label abstains


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


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
