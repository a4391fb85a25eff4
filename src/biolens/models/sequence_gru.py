"""A plain bidirectional GRU: the recurrent baseline the guide asks to start from (7.8), and a padding-invariant one.

``nn.GRU(bidirectional=True)`` on right-padded rows starts its backward pass in the padding, so a sequence's output
depends on how much padding its batch adds. Here the backward direction is a second GRU run on each row reversed
within its own length (padding stays on the right), and its outputs are put back in order: real positions never see
padding, in either direction, and the model exports to ONNX as two ordinary GRU nodes (no packed sequences).
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from biolens.models.base import SequenceClassifier, embed_tokens, masked_max, masked_mean
from biolens.models.registry import register_model

log = logging.getLogger(__name__)


def reverse_within_length(h: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row of ``(B, L, F)`` within its first ``lengths[b]`` positions; positions beyond stay put.
    An involution: applying it twice gives ``h`` back."""
    t = torch.arange(h.shape[1], device=h.device).unsqueeze(0)  # (1, L)
    src = torch.where(t < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - t, t)  # (B, L)
    return torch.gather(h, 1, src.unsqueeze(-1).expand(-1, -1, h.shape[2]))


@register_model(
    "bigru",
    task="sequence",
    description="Baseline: embedding + padding-invariant bidirectional GRU, masked mean+max pooling (guide 7.8: "
    "start with a simple baseline).",
)
class BiGRU(SequenceClassifier):
    """Embedding → forward GRU and backward GRU (on rows reversed within their length) → concat ``(B, L, 2H)`` →
    masked mean ⊕ max over positions (``num_features = 4H``) → Dropout → Linear."""

    param_ranges = {"num_layers": (1, 8)}

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_dim: int = 32,
        hidden_dim: int = 64,
        num_layers: int = 1,
        dropout: float = 0.2,
        head_dropout: float = 0.3,
    ):
        super().__init__(
            vocab_size, num_classes, embedding_dim=embedding_dim, hidden_dim=hidden_dim, num_layers=num_layers,
            dropout=dropout, head_dropout=head_dropout,
        )  # fmt: skip
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        between = dropout if num_layers > 1 else 0.0
        self.forward_rnn = nn.GRU(embedding_dim, hidden_dim, num_layers, batch_first=True, dropout=between)
        self.backward_rnn = nn.GRU(embedding_dim, hidden_dim, num_layers, batch_first=True, dropout=between)
        self.num_features = 4 * hidden_dim
        self.head = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(self.num_features, num_classes))

    def forward_features(self, x: Tensor, gc: Tensor | None = None) -> Tensor:
        self.check_input(x)
        mask = self.padding_mask(x)  # (B, L)
        lengths = mask.sum(dim=1)
        e = embed_tokens(x, self.embedding)  # (B, L, E); zero at padding
        fwd, _ = self.forward_rnn(e)  # (B, L, H): position t has read 0..t
        bwd, _ = self.backward_rnn(reverse_within_length(e, lengths))
        bwd = reverse_within_length(bwd, lengths)  # (B, L, H): position t has read t..n-1
        h = torch.cat([fwd, bwd], dim=-1).transpose(1, 2)  # (B, 2H, L)
        return torch.cat([masked_mean(h, mask), masked_max(h, mask)], dim=1)  # (B, 4H)
