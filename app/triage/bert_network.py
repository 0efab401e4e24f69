"""The network: the base encoder with mean pooling and four linear heads (PTM, themes,
sub-themes, issue type). Serving (``app.triage.bert``), the ONNX export and training build on it."""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertModel
from transformers.masking_utils import create_bidirectional_mask

from app.taxonomy import ISSUE_TYPES, SUBTHEME_CODES, THEME_CODES
from app.triage.classifier import LABELS

HEADS: dict[str, slice] = {
    "ptm": slice(0, 1),
    "themes": slice(1, 1 + len(THEME_CODES)),
    "subthemes": slice(1 + len(THEME_CODES), len(LABELS)),
}
TYPES = slice(len(LABELS), len(LABELS) + len(ISSUE_TYPES))  # the type head's logit columns, after LABELS
OUTPUTS = TYPES.stop  # logit columns of the model
HEAD_PREFIXES = (  # the heads: stored in float32, the layers in float16
    "ptm_head.", "theme_head.", "subtheme_head.", "type_head.")


class MultiTaskBert(nn.Module):
    """The encoder with mean pooling and four linear heads; logits in ``LABELS`` order, then
    the type logits (``TYPES``)."""

    def __init__(self, encoder: BertModel, frozen_layers: int, dropout: float = 0.1) -> None:
        super().__init__()
        layers = encoder.config.num_hidden_layers
        if not 0 <= frozen_layers < layers:
            raise ValueError(f"frozen_layers must be in [0, {layers}), got {frozen_layers}")
        hidden = encoder.config.hidden_size
        self.encoder = encoder
        self.frozen_layers = frozen_layers
        self.dropout = nn.Dropout(dropout)
        self.ptm_head = nn.Linear(hidden, 1)
        self.theme_head = nn.Linear(hidden, len(THEME_CODES))
        self.subtheme_head = nn.Linear(hidden, len(SUBTHEME_CODES))
        self.type_head = nn.Linear(hidden, len(ISSUE_TYPES))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        return self.heads(mean_pool(hidden, attention_mask))

    def bottom(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """Hidden states after the frozen layers (training caches these once)."""
        hidden = self.encoder.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        return self._layers(hidden, attention_mask, range(self.frozen_layers))

    def top(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled output of the fine-tuned layers, from ``bottom``'s hidden states."""
        layers = range(self.frozen_layers, self.encoder.config.num_hidden_layers)
        return mean_pool(self._layers(hidden, attention_mask, layers), attention_mask)

    def heads(self, pooled: torch.Tensor) -> torch.Tensor:
        pooled = self.dropout(pooled)
        return torch.cat(
            [self.ptm_head(pooled), self.theme_head(pooled), self.subtheme_head(pooled), self.type_head(pooled)], dim=-1
        )

    def trained_state(self) -> dict[str, torch.Tensor]:
        """The parameters fine-tuning changes: the top layers and the heads."""
        prefixes = (
            *(f"encoder.encoder.layer.{i}." for i in range(self.frozen_layers, self.encoder.config.num_hidden_layers)),
            *HEAD_PREFIXES,
        )
        return {k: v for k, v in self.state_dict().items() if k.startswith(prefixes)}

    def run_layers(self, hidden: torch.Tensor, mask: torch.Tensor | None, indices: range) -> torch.Tensor:
        """Encoder layers ``indices`` over ``hidden``, with ``mask`` in the form the layers take."""
        for i in indices:
            hidden = self.encoder.encoder.layer[i](hidden, mask)
        return hidden

    def _layers(self, hidden: torch.Tensor, attention_mask: torch.Tensor, indices: range) -> torch.Tensor:
        mask = create_bidirectional_mask(config=self.encoder.config, inputs_embeds=hidden, attention_mask=attention_mask)
        return self.run_layers(hidden, mask, indices)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
