"""Recurrent sequence classifiers from the guide: CNN + BiLSTM + attention (4.4) and the promoter predictor (7.2)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from biolens.models.base import SequenceClassifier, masked_softmax, pool_mask
from biolens.models.registry import register_model
from biolens.models.sequence_cnn import MotifExtractor

log = logging.getLogger(__name__)


class AttentiveBiLSTM(nn.Module):
    """Bidirectional LSTM followed by additive attention pooling (Linear-Tanh-Linear scores, masked softmax)."""

    def __init__(self, input_size: int, hidden_dim: int, num_layers: int, lstm_dropout: float, attention_dim: int):
        super().__init__()
        self.lstm = nn.LSTM(
            input_size=input_size,
            hidden_size=hidden_dim,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=lstm_dropout if num_layers > 1 else 0.0,
        )
        self.attention = nn.Sequential(nn.Linear(2 * hidden_dim, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1))
        self.out_features = 2 * hidden_dim

    def forward(self, h: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``h (B, T, F)``, ``mask (B, T)`` → ``(attended (B, 2H), weights (B, T))``; weights are 0 at padding."""
        out, _ = self.lstm(h)  # (B, T, 2H)
        weights = masked_softmax(self.attention(out).squeeze(-1), mask)  # (B, T)
        attended = torch.bmm(weights.unsqueeze(1).to(out.dtype), out).squeeze(1)  # (B, 2H)
        return attended, weights


@register_model(
    "cnn_bilstm_attention",
    task="sequence",
    description="Guide's hybrid (4.4): multi-kernel motif CNN, 2-layer BiLSTM, attention pooling, MLP head. Slow.",
)
class CNNBiLSTMAttention(SequenceClassifier):
    """The guide's SequenceClassifier: MotifExtractor → BiLSTM → attention → Dropout-Linear-ReLU-Dropout-Linear.

    ``forward_with_attention`` also returns the attention weights, one per pooled position (stride 2).
    """

    extra_outputs = ("attention",)
    attention_stride = 2

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_dim: int = 128,
        filters: int = 256,
        kernel_sizes: Sequence[int] = (3, 7, 11),
        hidden_dim: int = 256,
        num_layers: int = 2,
        lstm_dropout: float = 0.3,
        attention_dim: int = 128,
        head_hidden: int = 128,
        dropout: float = 0.5,
        head_dropout: float = 0.3,
    ):
        super().__init__(
            vocab_size, num_classes, embedding_dim=embedding_dim, filters=filters, kernel_sizes=kernel_sizes,
            hidden_dim=hidden_dim, num_layers=num_layers, lstm_dropout=lstm_dropout, attention_dim=attention_dim,
            head_hidden=head_hidden, dropout=dropout, head_dropout=head_dropout,
        )  # fmt: skip
        self.extractor = MotifExtractor(vocab_size, embedding_dim, filters, kernel_sizes)
        self.encoder = AttentiveBiLSTM(self.extractor.out_channels, hidden_dim, num_layers, lstm_dropout, attention_dim)
        self.num_features = self.encoder.out_features
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(self.num_features, head_hidden),
            nn.ReLU(),
            nn.Dropout(head_dropout),
            nn.Linear(head_hidden, num_classes),
        )

    def _encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self.check_input(x)
        h = self.extractor(x).transpose(1, 2)  # (B, L // 2, F*k)
        return self.encoder(h, pool_mask(self.padding_mask(x)))  # (B, 2H), (B, L // 2)

    def forward_features(self, x: Tensor, gc: Tensor | None = None) -> Tensor:
        return self._encode(x)[0]

    def forward_with_attention(self, x: Tensor, gc: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z, weights = self._encode(x)
        return self.forward_head(z), weights


@register_model(
    "promoter_predictor",
    task="sequence",
    description="Guide's promoter predictor (7.2): motif CNN (3/7/15), BiLSTM, attention, plus GC-content input.",
)
class PromoterPredictor(SequenceClassifier):
    """The guide's PromoterPredictor: MotifExtractor → BiLSTM → attention, concatenated with a GC-content branch
    (Linear(1, gc_dim)-ReLU), then Dropout-Linear-BatchNorm-ReLU-Dropout-Linear.

    Needs ``gc`` (GC fraction per sequence, ``(B,)``): ``model(x, gc=gc)``; see ``biolens.data.augment.gc_content``.
    """

    aux_inputs = ("gc",)
    extra_outputs = ("attention",)
    attention_stride = 2

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_dim: int = 128,
        filters: int = 128,
        kernel_sizes: Sequence[int] = (3, 7, 15),
        hidden_dim: int = 256,
        num_layers: int = 2,
        lstm_dropout: float = 0.3,
        attention_dim: int = 128,
        gc_dim: int = 64,
        head_hidden: int = 256,
        dropout: float = 0.5,
        head_dropout: float = 0.3,
    ):
        super().__init__(
            vocab_size, num_classes, embedding_dim=embedding_dim, filters=filters, kernel_sizes=kernel_sizes,
            hidden_dim=hidden_dim, num_layers=num_layers, lstm_dropout=lstm_dropout, attention_dim=attention_dim,
            gc_dim=gc_dim, head_hidden=head_hidden, dropout=dropout, head_dropout=head_dropout,
        )  # fmt: skip
        self.extractor = MotifExtractor(vocab_size, embedding_dim, filters, kernel_sizes)
        self.encoder = AttentiveBiLSTM(self.extractor.out_channels, hidden_dim, num_layers, lstm_dropout, attention_dim)
        self.gc_fc = nn.Linear(1, gc_dim)
        self.num_features = self.encoder.out_features + gc_dim
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(self.num_features, head_hidden),
            nn.BatchNorm1d(head_hidden),
            nn.ReLU(),
            nn.Dropout(head_dropout),
            nn.Linear(head_hidden, num_classes),
        )

    def _encode(self, x: Tensor, gc: Tensor | None) -> tuple[Tensor, Tensor]:
        self.check_input(x)
        gc = self.require_gc(gc, x.shape[0])  # (B,)
        h = self.extractor(x).transpose(1, 2)  # (B, L // 2, F*k)
        attended, weights = self.encoder(h, pool_mask(self.padding_mask(x)))  # (B, 2H), (B, L // 2)
        gc_features = F.relu(self.gc_fc(gc.unsqueeze(1).to(self.gc_fc.weight.dtype)))  # (B, gc_dim)
        return torch.cat([attended, gc_features.to(attended.dtype)], dim=1), weights  # (B, 2H + gc_dim)

    def forward_features(self, x: Tensor, gc: Tensor | None = None) -> Tensor:
        return self._encode(x, gc)[0]

    def forward_with_attention(self, x: Tensor, gc: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z, weights = self._encode(x, gc)
        return self.forward_head(z), weights
