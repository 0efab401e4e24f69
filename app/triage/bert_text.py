"""How an issue becomes the network's input: ``[CLS] title [SEP] body [SEP]``, truncated to fit,
and batches padded for the model."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from app.triage.classifier import IssueText
from app.triage.normalize import normalize

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
