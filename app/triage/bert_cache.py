"""The frozen layers' output, computed once per issue and kept, and the top layers run over it
in length-bucketed batches with dynamic padding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from app.triage.bert_network import TYPES, MultiTaskBert
from app.triage.bert_text import Encoded, collate


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


def padded(cache: Sequence[torch.Tensor], rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
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


def top_logits(model: MultiTaskBert, cache: Sequence[torch.Tensor], device: torch.device, batch_size: int = 64) -> np.ndarray:
    out = np.empty((len(cache), TYPES.stop), dtype=np.float64)
    order = sorted(range(len(cache)), key=lambda i: len(cache[i]))
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            hidden, mask = padded(cache, rows)
            out[rows] = model.heads(model.top(hidden, mask)).float().cpu().numpy()
    return out
