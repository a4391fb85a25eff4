"""Reverse-complement (RC) equivariance for DNA and RNA: parameter-shared layers and an RC-invariant dilated CNN.

DNA is double-stranded: a sequence and its reverse complement are the same molecule, so a classifier of
strand-agnostic properties should give them the same answer. Augmentation only teaches that approximately; these
layers make it exact (Shrikumar et al. 2017, "RC parameter sharing"; Caduceus, Schiff et al. 2024, for SSMs).

Hidden activations have ``2C`` channels in two halves, forward ``[0, C)`` and reverse ``[C, 2C)``; the RC of an
activation swaps the halves and reverses the positions. The input one-hot ``(B, V-1, L)`` maps to its RC by
permuting channels with the complement (A↔T/U, C↔G, N↔N) and reversing positions. With these actions:

- :class:`RCConv1d` stores ``C`` filters and uses each twice, as itself and flipped and complemented, so that
  ``conv(RC(x)) = RC(conv(x))`` exactly (odd kernels, symmetric 'same' padding, any dilation);
- :class:`RCBatchNorm1d` shares statistics and affine parameters between a channel and its partner;
- GELU, masking and the residual sum act position- and channel-wise, so they commute with RC;
- :class:`DilatedResNetRC` pools each channel pair symmetrically (sum of both halves, position bins read backwards
  on the reverse half), which makes its logits identical, to float rounding, for a sequence and its reverse
  complement (``biolens.data.augment.reverse_complement``, padding on the right).

RC invariance is right for strand-agnostic data (ChIP peaks, enhancers); it is wrong where the data are aligned to
one strand (splice junctions, promoters aligned to the TSS), because there the RC is a different example.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from biolens.errors import ModelError
from biolens.models.base import SequenceClassifier, masked_max, masked_mean
from biolens.models.registry import register_model
from biolens.models.sequence_cnn import NUCLEIC_VOCAB, _check_kernels

log = logging.getLogger(__name__)

COMPLEMENT_CHANNELS = (3, 2, 1, 0, 4)  # one-hot channel of each symbol's complement: A↔T, C↔G, N↔N


def swap_halves(channels: int) -> list[int]:
    """The RC channel permutation of a ``2C``-channel activation: forward and reverse halves swap."""
    half = channels // 2
    return list(range(half, channels)) + list(range(half))


def rc_channels(h: Tensor, perm: Sequence[int]) -> Tensor:
    """RC of a whole-length activation or one-hot ``(B, C, L)``: channels permuted by ``perm``, positions reversed."""
    return h[:, list(perm)].flip(-1)


class RCConv1d(nn.Module):
    """A 'same'-padded Conv1d with ``2 × out_pairs`` outputs from ``out_pairs`` stored filters: output ``o`` uses
    filter ``o``; output ``o + out_pairs`` uses filter ``o`` reversed in position and read on complemented input
    channels (``in_perm``). Then ``conv(RC_in(x)) = RC_out(conv(x))``.

    Args:
        in_channels: input channels (``V-1`` for the one-hot, ``2C`` for an activation).
        out_pairs: stored filters; the layer has twice as many output channels.
        in_perm: the input's RC channel permutation (an involution): ``COMPLEMENT_CHANNELS`` or ``swap_halves``.
    """

    def __init__(self, in_channels: int, out_pairs: int, kernel_size: int, in_perm: Sequence[int], dilation: int = 1,
                 bias: bool = True):
        super().__init__()
        perm = [int(p) for p in in_perm]
        if sorted(perm) != list(range(in_channels)) or any(perm[perm[i]] != i for i in range(in_channels)):
            raise ModelError(f"in_perm must be an involution of {in_channels} channels; got {perm}")
        if kernel_size % 2 == 0:
            raise ModelError(f"RC convolutions need an odd kernel (symmetric padding); got {kernel_size}")
        self.register_buffer("in_perm", torch.tensor(perm), persistent=False)
        self.dilation, self.padding = int(dilation), int(dilation) * (kernel_size // 2)
        self.weight = nn.Parameter(torch.empty(out_pairs, in_channels, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_pairs)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # as nn.Conv1d
        if self.bias is not None:
            bound = 1 / math.sqrt(in_channels * kernel_size)
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def out_channels(self) -> int:
        return 2 * self.weight.shape[0]

    def full_weight(self) -> Tensor:
        """``(2 · out_pairs, in_channels, k)``: the stored filters, then their RC twins."""
        return torch.cat([self.weight, self.weight.index_select(1, self.in_perm).flip(-1)], dim=0)

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else torch.cat([self.bias, self.bias])
        return F.conv1d(x, self.full_weight(), bias, padding=self.padding, dilation=self.dilation)


class RCBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over ``2C`` channels with one set of statistics and affine parameters per channel pair (``C``)."""

    def __init__(self, pairs: int):
        super().__init__(pairs)

    def forward(self, x: Tensor) -> Tensor:
        b, c2, _ = x.shape
        c = c2 // 2
        if self.training or not self.track_running_stats:  # statistics over both halves of every pair
            folded = x.reshape(b, 2, c, -1).transpose(1, 2).reshape(b, c, -1)  # (B, C, 2L)
            out = super().forward(folded)
            return out.reshape(b, c, 2, -1).transpose(1, 2).reshape(b, c2, -1)
        return F.batch_norm(x, self.running_mean.repeat(2), self.running_var.repeat(2), self.weight.repeat(2),
                            self.bias.repeat(2), False, 0.0, self.eps)


class RCPreActBlock(nn.Module):
    """:class:`~biolens.models.sequence_cnn.PreActBlock` from RC-equivariant parts (``pairs`` channel pairs)."""

    def __init__(self, pairs: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        perm = swap_halves(2 * pairs)
        self.bn1 = RCBatchNorm1d(pairs)
        self.conv1 = RCConv1d(2 * pairs, pairs, kernel_size, perm, dilation=dilation, bias=False)
        self.bn2 = RCBatchNorm1d(pairs)
        self.conv2 = RCConv1d(2 * pairs, pairs, 1, perm)
        self.drop = nn.Dropout1d(dropout)

    def forward(self, h: Tensor, m: Tensor) -> Tensor:
        """``h (B, 2C, L)``, ``m (B, 1, L)`` → ``(B, 2C, L)``, padded positions exactly zero."""
        y = F.gelu(self.bn1(h)) * m
        y = self.conv2(F.gelu(self.bn2(self.conv1(y))))
        return (h + self.drop(y)) * m


def symmetric_bins(mask: Tensor, bins: int) -> Tensor:
    """Weights ``(B, L, K)`` assigning each real position to one of K equal slices of its sequence's length, by the
    position's centre ``(t + ½) K / n``; a centre on a boundary counts half to each side. Exactly mirror-symmetric:
    position ``n - 1 - t`` gets the weights of ``t`` with the slices reversed (integer arithmetic, no rounding)."""
    n = mask.sum(dim=1, keepdim=True).clamp_min(1)  # (B, 1)
    t = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)  # (1, L)
    num, den = (2 * t + 1) * bins, 2 * n  # centre = num / den
    lo = torch.div(num, den, rounding_mode="floor").clamp(0, bins - 1)
    hi = (torch.div(num + den - 1, den, rounding_mode="floor") - 1).clamp(0, bins - 1)
    weights = 0.5 * (F.one_hot(lo, bins) + F.one_hot(hi, bins)).float()  # (B, L, K)
    return weights * mask.unsqueeze(-1).float()


@register_model(
    "dilated_resnet_rc",
    task="sequence",
    description="Reverse-complement-invariant dilated_resnet for DNA/RNA: RC-parameter-shared convolutions, "
    "symmetric pooling; same logits for a sequence and its reverse complement.",
)
class DilatedResNetRC(SequenceClassifier):
    """:class:`~biolens.models.sequence_cnn.DilatedResNet` with RC-equivariant layers and RC-invariant pooling.

    Layout: one-hot → stem RCConv1d(k=15) (``channels`` pairs = ``2 × channels`` activations) → RC batch norm →
    GELU → ``blocks`` RC pre-activation residual blocks (dilations 1, 2, 4, 8…) → RC batch norm → GELU → per channel
    pair: masked mean and max of both halves summed, and ``position_bins`` symmetric slice means with the reverse
    half read backwards (``num_features = (2 + K) × channels``) → Dropout → Linear.

    Only for nucleic acids (``vocab_size`` 6: A, C, G, T|U, N). Per channel pair it has half the convolution
    parameters of a plain convolution of the same width.
    """

    param_ranges = {"blocks": (0, 64), "position_bins": (0, 4096)}

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        channels: int = 24,
        blocks: int = 2,
        stem_kernel: int = 15,
        kernel_size: int = 3,
        dilations: Sequence[int] = (1, 2, 4, 8),
        dropout: float = 0.1,
        head_dropout: float = 0.3,
        position_bins: int = 16,
    ):
        super().__init__(
            vocab_size, num_classes, channels=channels, blocks=blocks, stem_kernel=stem_kernel,
            kernel_size=kernel_size, dilations=dilations, dropout=dropout, head_dropout=head_dropout,
            position_bins=position_bins,
        )  # fmt: skip
        if int(vocab_size) != NUCLEIC_VOCAB:
            raise ModelError(f"dilated_resnet_rc is for dna or rna (vocab_size {NUCLEIC_VOCAB}); got vocab_size "
                             f"{vocab_size}: use dilated_resnet or transformer for proteins")
        if channels < 1 or blocks < 0 or position_bins < 0:
            raise ModelError(f"channels must be >= 1, blocks and position_bins >= 0; got channels={channels}, "
                             f"blocks={blocks}, position_bins={position_bins}")
        _check_kernels([stem_kernel], "stem_kernel")
        _check_kernels([kernel_size], "kernel_size")
        if not dilations or any(int(d) < 1 for d in dilations):
            raise ModelError(f"dilations must be positive integers; got {list(dilations)}")
        self.pairs, self.position_bins = int(channels), int(position_bins)
        self.stem = nn.Sequential(
            RCConv1d(vocab_size - 1, channels, stem_kernel, COMPLEMENT_CHANNELS, bias=False),
            RCBatchNorm1d(channels),
            nn.GELU(),
        )
        self.blocks = nn.ModuleList(
            RCPreActBlock(channels, kernel_size, int(dilations[i % len(dilations)]), dropout) for i in range(blocks))
        self.final_bn = RCBatchNorm1d(channels)
        self.token_stride, self.token_features = 1, 2 * self.pairs
        self.num_features = (2 + self.position_bins) * channels
        self.head = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(self.num_features, num_classes))

    def trunk(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` → RC-equivariant activations ``(B, 2C, L)`` (zero at padding) and the padding mask ``(B, L)``."""
        self.check_input(x)
        mask = self.padding_mask(x)
        m = mask.unsqueeze(1).to(self.stem[0].weight.dtype)
        h = self.stem(self.onehot(x).to(m.dtype)) * m
        for block in self.blocks:
            h = block(h, m)
        return F.gelu(self.final_bn(h)) * m, mask

    def forward_features(self, x: Tensor, gc: Tensor | None = None) -> Tensor:
        h, mask = self.trunk(x)
        c = self.pairs
        mean, top = masked_mean(h, mask), masked_max(h, mask)  # (B, 2C) each
        pooled = [mean[:, :c] + mean[:, c:], top[:, :c] + top[:, c:]]
        if self.position_bins:
            w = symmetric_bins(mask, self.position_bins).to(h.dtype)  # (B, L, K)
            means = torch.bmm(h, w) / w.sum(dim=1, keepdim=True).clamp_min(0.5)  # (B, 2C, K)
            pooled.append((means[:, :c] + means[:, c:].flip(-1)).flatten(1))  # (B, C * K)
        return torch.cat(pooled, dim=1)  # (B, num_features)

    def forward_tokens(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Per-position activations ``(B, L, 2C)`` and the mask, for masked-token pretraining."""
        h, mask = self.trunk(x)
        return h.transpose(1, 2), mask
