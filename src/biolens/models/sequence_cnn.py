"""Convolutional sequence classifiers: the guide's multi-kernel motif CNN and the fast dilated residual default."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from biolens.errors import ModelError
from biolens.models.base import SequenceClassifier, embed_tokens, masked_max, masked_mean, pool_mask
from biolens.models.label_sets import LABEL_SET_MIX, LabelSetHead
from biolens.models.neighbors import FITTED_KEYS, NeighborTransfer, check_request, request
from biolens.models.registry import register_model

log = logging.getLogger(__name__)


def _check_kernels(kernel_sizes: Sequence[int], field: str = "kernel_sizes") -> tuple[int, ...]:
    ks = tuple(int(k) for k in kernel_sizes)
    if not ks or any(k < 1 or k % 2 == 0 for k in ks):
        raise ModelError(f"{field} must be odd positive integers (for 'same' padding); got {list(kernel_sizes)}")
    return ks


class MotifExtractor(nn.Module):
    """The guide's SequenceMotifExtractor (section 4.4): embedding → parallel Conv1d per kernel size (ReLU) → concat
    → BatchNorm → MaxPool1d(2).

    Each filter is a learned motif detector; several kernel sizes cover motifs of different lengths.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, filters: int, kernel_sizes: Sequence[int]):
        super().__init__()
        ks = _check_kernels(kernel_sizes)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(embedding_dim, filters, k, padding=k // 2) for k in ks)
        self.out_channels = filters * len(ks)
        self.bn = nn.BatchNorm1d(self.out_channels)
        self.pool = nn.MaxPool1d(kernel_size=2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        """Indices ``(B, L)`` or one-hot ``(B, V-1, L)`` → ``(B, filters * n_kernels, L // 2)``."""
        if x.shape[-1] < 2:
            raise ModelError(f"sequence length must be at least 2 for this model (it pools by 2); got {x.shape[-1]}")
        e = embed_tokens(x, self.embedding).transpose(1, 2)  # (B, E, L)
        h = torch.cat([F.relu(conv(e)) for conv in self.convs], dim=1)  # (B, F*k, L)
        return self.pool(self.bn(h))  # (B, F*k, L // 2)


@register_model(
    "motif_cnn",
    task="sequence",
    description="Guide's multi-kernel motif CNN (kernels 3/7/11) with masked global max pooling; no recurrence.",
)
class MotifCNN(SequenceClassifier):
    """Multi-kernel motif CNN: MotifExtractor → masked global max pooling → dropout → linear."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_dim: int = 128,
        filters: int = 256,
        kernel_sizes: Sequence[int] = (3, 7, 11),
        dropout: float = 0.5,
    ):
        super().__init__(
            vocab_size, num_classes, embedding_dim=embedding_dim, filters=filters, kernel_sizes=kernel_sizes,
            dropout=dropout,
        )  # fmt: skip
        self.extractor = MotifExtractor(vocab_size, embedding_dim, filters, kernel_sizes)
        self.num_features = self.extractor.out_channels
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))

    def forward_features(self, x: Tensor, gc: Tensor | None = None) -> Tensor:
        self.check_input(x)
        h = self.extractor(x)  # (B, D, L // 2)
        return masked_max(h, pool_mask(self.padding_mask(x)))  # (B, D)


class PreActBlock(nn.Module):
    """Pre-activation residual block: BN-GELU-Conv(k, dilated)-BN-GELU-Conv(1)-Dropout1d, plus the identity.

    Dropout1d zeroes whole channels of the residual branch: as a regulariser it is the usual choice for conv nets,
    and on CPU it is almost free (element-wise dropout cost about 20% of a training step at length 1,000).

    The input is re-masked after the first activation: BN shifts padded zeros to a constant, which the dilated
    convolution would otherwise carry into real positions near the end of a sequence.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.bn1 = nn.BatchNorm1d(channels)
        self.conv1 = nn.Conv1d(
            channels, channels, kernel_size, padding=dilation * (kernel_size // 2), dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm1d(channels)
        self.conv2 = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout1d(dropout)

    def forward(self, h: Tensor, m: Tensor) -> Tensor:
        """``h (B, C, L)``, ``m (B, 1, L)`` float mask → ``(B, C, L)`` with padded positions exactly zero."""
        y = F.gelu(self.bn1(h)) * m
        y = self.conv2(F.gelu(self.bn2(self.conv1(y))))
        return (h + self.drop(y)) * m


MAX_LINEAR_FEATURES = 4096  # positions × symbols plus every k-mer: beyond this a linear term is no longer cheap
NUCLEIC_VOCAB = 6  # DNA and RNA: PAD, A, C, G, T|U, N (one-hot: the five symbol channels)
GC_CHANNELS = (1, 2)  # C and G, in both alphabets' order (data/alphabets: ACGT, ACGU)


class LinearTerm(nn.Module):
    """A linear model of the input, added to a network's output ("wide and deep"): one weight per symbol at each of
    the first ``positions`` positions (counted from the 5' end; shorter sequences have zeros past their end), plus
    one weight per k-mer of every length in ``kmers`` for that k-mer's frequency in the sequence (occurrences per
    real position); with ``gc_window=W``, also the squared G+C fraction of each window of W bases among the first
    ``positions`` (DNA/RNA only).

    The k-mers are read with a fixed bank of one-hot filters: ``relu(conv(x, pattern) - (k - 1))`` is 1 exactly where
    the window is that k-mer, so the term is plain convolutions and sums (it exports to ONNX and takes soft one-hot
    input for attributions). Its weights start at zero; for regression with MSE or Huber loss, training starts it
    at the ridge regression of the standardized train targets on :meth:`features`
    (``training/linear_init.fit_linear_term``), and the network then learns what the linear model misses.

    Why: on the 21-nt Huesken siRNAs a ridge regression on these features (positions plus 2- and 3-mer
    frequencies; scikit-learn, 5-fold out-of-fold on the training pool) reaches Pearson r 0.657 where the CNN alone
    reaches 0.630 (BENCHMARKS.md, 2026-12-02): short position-specific effects are linear, and a regularised CNN
    under-fits them. Longer k-mers score higher on random folds only because neighbouring siRNAs overlap; with
    overlapping siRNAs kept in one fold, 4- and 5-mers add nothing over 2- and 3-mers (0.643 each). The squared GC
    windows let it draw siRNA activity's inverted U over local GC content (too little or too much G+C hurts), which
    no linear function of the bases can: ridge OOF r 0.657 → 0.662 on random folds, 0.643 → 0.649 on overlap-grouped
    folds with windows of 9 (BENCHMARKS.md, 2026-12-02, fourth session).
    """

    def __init__(self, symbols: int, outputs: int, positions: int = 0, kmers: Sequence[int] = (),
                 gc_window: int = 0):
        super().__init__()
        self.positions = int(positions)
        self.kmers = tuple(int(k) for k in kmers)
        self.gc_window = int(gc_window)
        if self.positions < 0 or any(k < 1 for k in self.kmers) or len(set(self.kmers)) != len(self.kmers):
            raise ModelError(f"model.params.linear_positions={self.positions}, linear_kmers={list(self.kmers)}: "
                             "positions must be >= 0 and the k-mer lengths distinct positive integers")
        if self.gc_window and symbols != NUCLEIC_VOCAB - 1:
            raise ModelError(f"model.params.linear_gc_window={self.gc_window} reads G and C: it needs a DNA or RNA "
                             f"alphabet (vocab_size {NUCLEIC_VOCAB}), not vocab_size {symbols + 1}; set it to 0")
        if self.gc_window and not 1 <= self.gc_window <= self.positions:
            raise ModelError(f"model.params.linear_gc_window={self.gc_window}: the windows lie in the first "
                             f"linear_positions={self.positions} positions, so it must be 1 … {self.positions} "
                             "(or 0 for none)")
        windows = self.positions - self.gc_window + 1 if self.gc_window else 0
        n = self.positions * symbols + sum(symbols**k for k in self.kmers) + windows
        if n > MAX_LINEAR_FEATURES:
            raise ModelError(f"model.params.linear_positions={self.positions} and linear_kmers={list(self.kmers)} "
                             f"give {n:,} linear features for {symbols} symbols (at most {MAX_LINEAR_FEATURES:,}); "
                             "use fewer positions or shorter k-mers")
        for k in self.kmers:
            patterns = torch.tensor(list(itertools.product(range(symbols), repeat=k)))  # (S^k, k)
            bank = F.one_hot(patterns, symbols).transpose(1, 2).float()  # (S^k, S, k)
            self.register_buffer(f"bank{k}", bank, persistent=False)
        self.linear = nn.Linear(n, outputs)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def features(self, x: Tensor, mask: Tensor) -> Tensor:
        """One-hot ``(B, S, L)`` (zero at padding) and its mask ``(B, L)`` → the term's inputs ``(B, in_features)``:
        the first ``positions`` one-hot columns, then each k-mer's frequency."""
        feats = []
        if self.positions:
            padded = F.pad(x, (0, self.positions))  # sequences shorter than `positions` read zeros past their end
            feats.append(padded[:, :, : self.positions].flatten(1))  # (B, S * P)
        n = mask.sum(dim=1, keepdim=True).clamp_min(1).to(x.dtype)  # (B, 1) real length
        for k in self.kmers:
            bank = getattr(self, f"bank{k}").to(x.dtype)
            hits = F.relu(F.conv1d(F.pad(x, (0, k - 1)), bank) - (k - 1))  # (B, S^k, L): 1 where the k-mer starts
            feats.append(hits.sum(dim=-1) / n)
        if self.gc_window:
            feats.append(self._gc_squared(x, mask))
        return torch.cat(feats, dim=1)

    def _gc_squared(self, x: Tensor, mask: Tensor) -> Tensor:
        """The squared G+C fraction of each window of ``gc_window`` bases that starts in the first ``positions``
        and lies wholly inside the sequence (0 for a window that reaches past its end): ``(B, P - W + 1)``."""
        w, p = self.gc_window, self.positions
        gc = F.pad(x[:, GC_CHANNELS[0] : GC_CHANNELS[1] + 1].sum(dim=1, keepdim=True), (0, p))[..., :p]  # (B, 1, P)
        real = F.pad(mask.unsqueeze(1).to(x.dtype), (0, p))[..., :p]
        frac = F.avg_pool1d(gc, w, stride=1).squeeze(1)  # (B, P - W + 1)
        whole = F.avg_pool1d(real, w, stride=1).squeeze(1) > 1 - 0.5 / w
        return frac.square() * whole.to(x.dtype)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """One-hot ``(B, S, L)`` and its mask ``(B, L)`` → ``(B, outputs)``."""
        return self.linear(self.features(x, mask))


@register_model(
    "dilated_resnet",
    task="sequence",
    description="Fast default: one-hot dilated residual CNN, masked mean+max and relative-position pooling; "
    "padding-invariant.",
    default=True,
)
class DilatedResNet(SequenceClassifier):
    """One-hot dilated residual CNN, the default sequence model.

    Layout: one-hot ``(B, V-1, L)`` → stem Conv1d(k=15)-BN-GELU → MaxPool1d(2) (if ``downsample``) → ``blocks``
    pre-activation residual blocks with dilations cycling 1, 2, 4, 8 → BN-GELU → masked global mean ⊕ max pooling
    (``num_features = 2 * channels``) → Dropout → Linear.

    ``position_bins=K > 0`` adds, per channel, the mean over each of K equal slices of the sequence's own length
    (``num_features = (2 + K) * channels``), for tasks where the position of a motif matters (splice junctions sit
    at the centre). Slices are relative to each sequence's real length, so padding invariance holds.

    ``linear_positions=P`` / ``linear_kmers=[k, …]`` add a :class:`LinearTerm` to the output: a linear model of the
    bases at the first P positions and of the k-mer frequencies; ``linear_gc_window=W`` adds the squared G+C
    fraction of each W-base window (DNA/RNA). ``train.preset=auto`` gives short DNA/RNA regression P = 32, k = 2
    and 3, W = 9, started at its ridge solution.

    ``label_sets=[[j, …], …]`` (multi-label targets) adds a :class:`~biolens.models.label_sets.LabelSetHead` on the
    pooled features: the output becomes the logit of the mixture of each label's sigmoid with the label-set
    softmax's marginal (weight ``label_set_mix``); ``train.preset=auto`` adds it for 10 or more labels whose sets
    repeat.

    ``neighbors={k: 3, count: 10}`` (classification and multi-label targets) asks for nearest-neighbour label transfer
    (:class:`~biolens.models.neighbors.NeighborTransfer`): after training, the output in eval mode is blended with
    the labels of the most similar training sequences by k-mer Jaccard, with a weight fitted on val
    (``training/neighbors.fit_neighbor_transfer``); the fitted spec and memory then live in the params and weights.
    ``train.preset=auto`` asks for it on protein and peptide data.

    Activations are multiplied by the (down-sampled) padding mask after the stem, inside and after every block, and
    odd lengths are zero-padded to even before pooling, so padded positions stay exactly zero: in eval mode a
    sequence's logits do not depend on how much padding its batch adds.

    Why this is the default (measured 2026-11-26 on a 2-core x86_64 CPU, torch 2.14.1; see BENCHMARKS.md):
    channels=32, blocks=2, position_bins=16, downsample=False, trained with label smoothing 0.1 (the TrainConfig
    default). On bundled UCI splice (test split of 317) it reached 96.2 / 96.2 / 95.3% test accuracy over seeds
    0 / 1 / 2, against 94.3-95.9% for wider or deeper variants (channels 48-128, blocks 3-4) and 91.5% for
    channels=128, blocks=4 without position bins, which over-fit the 2,548 training sequences within 3 epochs. On
    the RegulonDB promoter benchmark it reached 86.5% test accuracy (ROC AUC 0.939) against 81.5% for the wide
    variant. ``benchmarks/bench_models.py`` gives its training throughput against ``cnn_bilstm_attention`` at
    length 1,000. The receptive field of the convolutions is 21 bp (stem 15, then 2 * (1 + 2)); the position bins
    and global pooling combine motifs across the whole sequence. Raise ``channels``/``blocks`` for large data.
    """

    param_ranges = {"blocks": (0, 64), "position_bins": (0, 4096),  # 0 blocks: stem only; 0 bins: no positions
                    "linear_positions": (0, 4096), "linear_kmers": (1, 6),  # 0 positions: no positional weights
                    "linear_gc_window": (0, 4096),  # 0: no GC windows
                    "label_set_mix": (0.0, 1.0)}  # the head checks 0 < mix < 1

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        channels: int = 32,
        blocks: int = 2,
        stem_kernel: int = 15,
        kernel_size: int = 3,
        dilations: Sequence[int] = (1, 2, 4, 8),
        downsample: bool = False,
        dropout: float = 0.1,
        head_dropout: float = 0.3,
        position_bins: int = 16,
        linear_positions: int = 0,
        linear_kmers: Sequence[int] = (),
        linear_gc_window: int = 0,
        label_sets: Sequence[Sequence[int]] = (),
        label_set_mix: float = LABEL_SET_MIX,
        neighbors: dict | None = None,
    ):
        super().__init__(
            vocab_size, num_classes, channels=channels, blocks=blocks, stem_kernel=stem_kernel,
            kernel_size=kernel_size, dilations=dilations, downsample=downsample, dropout=dropout,
            head_dropout=head_dropout, position_bins=position_bins, linear_positions=linear_positions,
            linear_kmers=linear_kmers, linear_gc_window=linear_gc_window,
            label_sets=[list(s) for s in label_sets], label_set_mix=label_set_mix, neighbors=dict(neighbors or {}),
        )  # fmt: skip
        if channels < 1 or blocks < 0 or position_bins < 0:
            raise ModelError(
                f"channels must be >= 1, blocks and position_bins >= 0; got channels={channels}, blocks={blocks}, "
                f"position_bins={position_bins}"
            )
        _check_kernels([stem_kernel], "stem_kernel")
        _check_kernels([kernel_size], "kernel_size")
        if not dilations or any(int(d) < 1 for d in dilations):
            raise ModelError(f"dilations must be positive integers; got {list(dilations)}")
        self.downsample = bool(downsample)
        self.position_bins = int(position_bins)
        self.stem = nn.Sequential(
            nn.Conv1d(vocab_size - 1, channels, stem_kernel, padding=stem_kernel // 2, bias=False),
            nn.BatchNorm1d(channels),
            nn.GELU(),
        )
        self.blocks = nn.ModuleList(
            PreActBlock(channels, kernel_size, int(dilations[i % len(dilations)]), dropout) for i in range(blocks)
        )
        self.final_bn = nn.BatchNorm1d(channels)
        self.num_features = (2 + self.position_bins) * channels
        self.head = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(self.num_features, num_classes))
        self.token_stride, self.token_features = (2 if self.downsample else 1), channels
        self.linear_term = (LinearTerm(vocab_size - 1, num_classes, linear_positions, linear_kmers, linear_gc_window)
                            if linear_positions or linear_kmers or linear_gc_window else None)
        self.label_set_head = (LabelSetHead(self.num_features, num_classes, label_sets, head_dropout, label_set_mix)
                               if len(label_sets) else None)
        spec = dict(neighbors or {})
        if spec:
            check_request(spec, vocab_size)
        self.neighbor_transfer = (NeighborTransfer(vocab_size, num_classes, **spec)
                                  if set(FITTED_KEYS) <= set(spec) else None)

    def attach_neighbors(self, module: NeighborTransfer | None) -> None:
        """Use ``module`` (fitted on this model's training data) in eval mode from now on, and record its spec in
        the params so the saved model rebuilds it; ``None`` removes it."""
        self.neighbor_transfer = module
        self._config["neighbors"] = module.spec if module is not None else request(self._config.get("neighbors") or {})

    def _binned_mean(self, h: Tensor, mask: Tensor) -> Tensor:
        """Mean of each of K slices of every sequence's real length: ``(B, C, L), (B, L) → (B, C * K)``."""
        k = self.position_bins
        n = mask.sum(dim=1, keepdim=True).clamp_min(1)  # (B, 1) real length
        pos = torch.arange(h.shape[-1], device=h.device).unsqueeze(0)  # (1, L)
        bins = (pos * k // n).clamp(max=k - 1)  # (B, L)
        weights = F.one_hot(bins, k).to(h.dtype) * mask.unsqueeze(-1).to(h.dtype)  # (B, L, K)
        sums = torch.bmm(h, weights)  # (B, C, K)
        return (sums / weights.sum(dim=1, keepdim=True).clamp_min(1)).flatten(1)

    def trunk(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` → activations ``(B, C, L')`` (zero at padding; ``L' = ceil(L / 2)`` with ``downsample``) and their
        mask ``(B, L')``."""
        self.check_input(x)
        mask = self.padding_mask(x)  # (B, L) bool
        h = self.onehot(x).to(self.stem[0].weight.dtype)  # (B, V-1, L)
        h = self.stem(h) * mask.unsqueeze(1).to(h.dtype)  # (B, C, L)
        if self.downsample:
            h = F.max_pool1d(F.pad(h, (0, h.shape[-1] % 2)), 2)  # (B, C, ceil(L / 2)); pad value 0 = padding
            mask = pool_mask(mask, ceil=True)
        m = mask.unsqueeze(1).to(h.dtype)  # (B, 1, L')
        for block in self.blocks:
            h = block(h, m)
        return F.gelu(self.final_bn(h)) * m, mask

    def forward_tokens(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Per-position activations ``(B, L', C)`` and their mask, for masked-token pretraining (``token_stride``
        input positions each: 2 with ``downsample``, else 1)."""
        h, mask = self.trunk(x)
        return h.transpose(1, 2), mask

    def forward(self, x: Tensor, gc: Tensor | None = None) -> Tensor:
        """``x`` → ``(B, num_classes)``: the head's output, plus the linear term's when there is one; with label
        sets, the logits of its mixture with the label-set head (:class:`LabelSetHead`); in eval mode with a fitted
        neighbour transfer, the logits of its blend with the nearest training sequences' labels."""
        features = self.forward_features(x, gc)
        out = self.forward_head(features)
        if self.linear_term is not None:
            out = out + self.linear_term(*self.linear_inputs(x))
        if self.label_set_head is not None:
            out = self.label_set_head(features, out)
        if self.neighbor_transfer is not None and not self.training:
            out = self.neighbor_transfer(x, out)
        return out

    def linear_inputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """What the linear term reads from ``x``: the one-hot ``(B, V-1, L)`` in the term's dtype and the padding
        mask ``(B, L)`` (the ridge start computes its features from the same)."""
        return self.onehot(x).to(self.linear_term.linear.weight.dtype), self.padding_mask(x)

    def reset_classifier(self, num_classes: int) -> None:
        super().reset_classifier(num_classes)
        if self.linear_term is not None:  # a fresh linear term of the new width, as for the head
            old = self.linear_term
            self.linear_term = LinearTerm(self.vocab_size - 1, self.num_classes,
                                          old.positions, old.kmers, old.gc_window).to(old.linear.weight.device)
        if self.label_set_head is not None:  # its sets name the old labels: a new label space has none
            self.label_set_head = None
            self._config["label_sets"] = []
        if self.neighbor_transfer is not None:  # so does the memory
            self.attach_neighbors(None)

    def forward_features(self, x: Tensor, gc: Tensor | None = None) -> Tensor:
        h, mask = self.trunk(x)
        pooled = [masked_mean(h, mask), masked_max(h, mask)]  # 2 x (B, C)
        if self.position_bins:
            pooled.append(self._binned_mean(h, mask))  # (B, C * K)
        return torch.cat(pooled, dim=1)  # (B, num_features)
