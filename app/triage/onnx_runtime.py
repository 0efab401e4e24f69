"""The fine-tuned network on ONNX Runtime, the CPU serving path.

On a few CPU cores PyTorch's eager mode spends much of a 6-layer BERT's time
between the matrix products; ONNX Runtime fuses attention, GELU and layer norm
(``benchmarks/classifier.py`` measures both on the same texts). The graph is
exported from the loaded ``MultiTaskBert`` when the classifier loads (a few
seconds, in memory, nothing written next to the artifact), so the committed
artifact stays the one safetensors file and cannot drift from the graph. With
``int8`` the exported graph gets ONNX Runtime's dynamic quantisation (int8
weights per output channel).
"""

from __future__ import annotations

import importlib.util
import io
import logging
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:  # for annotations only: at run time the network module is imported where it is used
    from app.triage.bert_network import MultiTaskBert

RUNTIMES = ("auto", "torch", "onnx")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_OPSET = 17


def onnx_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def resolve_runtime(requested: str | None, device: torch.device) -> str:
    """``requested`` (``PTM_TRIAGE_RUNTIME``), else auto: ``onnx`` on CPU when ONNX Runtime
    is installed, ``torch`` otherwise (and always on CUDA and MPS)."""
    name = (requested or "auto").strip().lower()
    if name not in RUNTIMES:
        raise ValueError(f"the runtime must be one of {', '.join(RUNTIMES)}, got {name!r}")
    if name == "auto":
        return "onnx" if device.type == "cpu" and onnx_available() else "torch"
    if name == "onnx":
        if device.type != "cpu":
            raise ValueError(f"the onnx runtime serves on CPU only, not on {device.type}")
        if not onnx_available():
            raise RuntimeError("the onnx runtime was asked for but the onnxruntime package is not installed")
    return name


class _Traceable(nn.Module):
    """``MultiTaskBert.forward`` with the attention mask built by hand (additive, ``[B, 1, 1, L]``),
    so that the tracer sees plain tensor operations."""

    def __init__(self, model: MultiTaskBert) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        from app.triage.bert_network import mean_pool

        encoder = self.model.encoder
        hidden = encoder.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        additive = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        hidden = self.model.run_layers(hidden, additive, range(encoder.config.num_hidden_layers))
        return self.model.heads(mean_pool(hidden, attention_mask))


def export_graph(model: MultiTaskBert) -> bytes:
    """The model (in eval mode, float32, CPU) as an ONNX graph with dynamic batch and length."""
    example = {
        "input_ids": torch.tensor([[101, 2023, 102], [101, 102, 0]]),
        "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]]),
        "token_type_ids": torch.zeros((2, 3), dtype=torch.long),
    }
    axes = {name: {0: "batch", 1: "tokens"} for name in _INPUTS} | {"logits": {0: "batch"}}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes on Python control flow over shapes
        torch.onnx.export(
            _Traceable(model).eval(),
            tuple(example[name] for name in _INPUTS),
            # ``f`` is annotated as a path, but the TorchScript exporter (dynamo=False) writes to a BytesIO too
            buffer,  # type: ignore[arg-type]
            input_names=list(_INPUTS),
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=_OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def quantize_graph(graph: bytes) -> bytes:
    """ONNX Runtime's dynamic int8 quantisation of the graph's weights, per output channel."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="ptm-triage-onnx-") as tmp:
        source, target = Path(tmp) / "float32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(graph)
        logging.disable(logging.WARNING)  # the quantiser's advice, on the root logger, to pre-process the graph
        try:
            quantize_dynamic(source, target, per_channel=True, weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        return target.read_bytes()


class OnnxNetwork:
    """One ONNX Runtime session over the exported graph: collated batch in, logits out.

    Sessions are safe to call from several threads (the dynamic batcher's executor)."""

    def __init__(self, graph: bytes, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        self._session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: dict[str, torch.Tensor]) -> np.ndarray:
        feed = {name: batch[name].cpu().numpy() for name in _INPUTS}
        return np.asarray(self._session.run(["logits"], feed)[0], dtype=np.float64)
