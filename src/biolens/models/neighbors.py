"""Nearest-neighbour label transfer: a sequence model's probabilities blended with the labels of the most similar
training sequences.

Annotation transfer from the closest known sequence is the oldest way to predict what a protein or peptide does
(BLAST's best hit), and combining it with a network is what DeepGOPlus (Kulmanov & Hoehndorf 2020) does for protein
function. Here similarity is the Jaccard index of the sets of k-mers of two sequences (alignment-free), against
every training sequence. For a query with neighbours ``n_1 … n_K`` (by Jaccard ``s_1 ≥ … ≥ s_K``) the transferred
probability of class or label ``j`` is the weighted mean ``p_nn(j) = Σ_i s_i^a y_ij / Σ_i s_i^a`` of their labels,
and the output is the mixture ``(1 − w) · p_net + w · p_nn`` with ``w = min(β · s_1^γ, 0.999)``: a query with a
close training relative leans on its labels, one without keeps the network's own answer. ``K``, ``a``, ``β`` and
``γ`` are fitted on the validation split after training (``training/neighbors.fit_neighbor_transfer``), ``β = 0``
where transfer does not lower the val loss, and the module is then part of the model: its memory (the training
sequences' k-mer indices and labels) is saved with the weights, the output stays one logit per class or label (the
logit, or log-probability, of the mixture), and the graph is plain gathers, ``embedding_bag`` sums and ``topk``, so
it exports to ONNX with the rest. In training mode the model never uses it (a training sequence's nearest neighbour
is itself).

Why: on MFTP (21 peptide labels) 249 of the 1,969 test peptides are a substring or superstring of a training
peptide, and a test peptide's nearest training neighbour by 3-mer Jaccard has exactly its label set for 65% of the
978 test peptides with a neighbour at Jaccard ≥ 0.3, where the network alone gets 58% of them right (BENCHMARKS.md,
2026-12-03, fourth session).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from biolens.errors import ModelError
from biolens.models.base import is_onehot
from biolens.models.label_sets import logaddexp

OUTPUTS = ("softmax", "sigmoid")  # single-label classes, multi-label labels
REQUEST_KEYS = ("k", "count")  # what a user (or the preset) asks for; the rest is fitted
FITTED_KEYS = ("size", "width", "vocab", "output", "neighbours", "power", "weight", "gamma")
MAX_TABLE = 1 << 22  # vocab_size ** k: the k-mer code table stays a few MB
MAX_MEMORY = 4_000_000  # training sequences × k-mers per sequence kept in the model
MAX_WEIGHT = 0.999  # the network always keeps a share
TIE_STEP = 1e-14  # per training row: ties in similarity go to the earlier row (float64; MAX_MEMORY rows stay < 1e-7)


def check_request(spec: dict[str, Any], vocab_size: int) -> tuple[int, int]:
    """``model.params.neighbors`` → ``(k, count)``, or a ModelError naming the field."""
    if not isinstance(spec, dict):
        raise ModelError(f"model.params.neighbors must be a mapping such as {{k: 3, count: 10}}; got {spec!r}")
    unknown = sorted(set(spec) - set(REQUEST_KEYS) - set(FITTED_KEYS))
    if unknown:
        raise ModelError(f"model.params.neighbors: unknown field {unknown[0]!r}; it takes k (k-mer length) and "
                         "count (neighbours)")
    k, count = spec.get("k", 3), spec.get("count", 10)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or vocab_size**k > MAX_TABLE:
        top = max(1, int(math.log(MAX_TABLE) / math.log(max(vocab_size, 2))))
        raise ModelError(f"model.params.neighbors.k={k!r}: a k-mer length from 1 to {top} for this alphabet "
                         f"(vocab_size {vocab_size})")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 64:
        raise ModelError(f"model.params.neighbors.count={count!r}: the number of neighbours, 1 … 64")
    return k, count


def request(spec: dict[str, Any]) -> dict[str, Any]:
    """The part of a ``neighbors`` spec that a new run asks for (its memory and fit are its own)."""
    return {k: spec[k] for k in REQUEST_KEYS if k in spec}


def token_indices(x: Tensor) -> Tensor:
    """``(B, L)`` indices, or a ``(B, V-1, L)`` one-hot (e.g. for attributions), → ``(B, L)`` int64 (0 = PAD)."""
    if is_onehot(x):
        return (x.argmax(dim=1) + 1) * (x.sum(dim=1) > 0).long()
    return x.long()


def kmer_codes(x: Tensor, k: int, base: int) -> tuple[Tensor, Tensor]:
    """Indices ``(B, L)`` → the code ``Σ_i x_{t+i} · base^(k-1-i)`` of the k-mer starting at each position ``(B, L)``
    and whether it lies wholly inside the sequence (no PAD in it)."""
    padded = F.pad(x, (0, k - 1))
    length = x.shape[1]
    code = torch.zeros_like(x)
    valid = torch.ones_like(x, dtype=torch.bool)
    for i in range(k):
        part = padded[:, i : i + length]
        code = code * base + part
        valid = valid & (part > 0)
    return code * valid.long(), valid


class NeighborTransfer(nn.Module):
    """The memory and the blend (module docstring). Build one with :meth:`from_train`; ``create_model`` rebuilds it
    from the fitted spec (its buffers then come from the saved weights).

    Args:
        vocab_size: the model's vocab size (PAD included); k-mer codes are numbers in this base.
        num_classes: classes (``softmax``) or labels (``sigmoid``).
        k, count: k-mer length; the most neighbours a fit may use.
        size, width, vocab: training sequences, k-mer slots per sequence, distinct training k-mers + 1.
        output: ``softmax`` (one class) or ``sigmoid`` (independent labels).
        neighbours, power, weight, gamma: the fitted K, a, β, γ.
    """

    def __init__(self, vocab_size: int, num_classes: int, *, k: int, count: int, size: int, width: int, vocab: int,
                 output: str, neighbours: int, power: float, weight: float, gamma: float):
        super().__init__()
        if output not in OUTPUTS:
            raise ModelError(f"model.params.neighbors.output={output!r}: one of {', '.join(OUTPUTS)}")
        if min(size, width, vocab) < 1 or not 1 <= neighbours <= min(count, size):
            raise ModelError(f"model.params.neighbors: size={size}, width={width}, vocab={vocab} must be positive "
                             f"and neighbours={neighbours} in 1 … min(count, size)")
        if not (math.isfinite(power) and math.isfinite(gamma) and 0 <= weight <= 1 and power >= 0 and gamma >= 0):
            raise ModelError(f"model.params.neighbors: power={power}, gamma={gamma} must be >= 0 and weight={weight} "
                             "in 0 … 1")
        self.k, self.count, self.base, self.output, self.size = int(k), int(count), int(vocab_size), output, int(size)
        self.neighbours, self.power, self.weight, self.gamma = int(neighbours), float(power), float(weight), float(gamma)
        self.register_buffer("lookup", torch.zeros(vocab_size**k, dtype=torch.int32))  # code → k-mer index
        self.register_buffer("kmers", torch.zeros(size, width, dtype=torch.int32))  # 0 = no k-mer
        self.register_buffer("sizes", torch.ones(size))  # distinct k-mers per training sequence
        self.register_buffer("targets", torch.zeros(size, num_classes))  # one-hot class, or 0/1 labels
        self.register_buffer("known", torch.ones(size, num_classes))  # 0 where a label is unknown (NaN)
        self.register_buffer("column", (torch.arange(vocab) > 0).float(), persistent=False)
        self.register_buffer("order", torch.arange(size, dtype=torch.float64) * TIE_STEP, persistent=False)

    @property
    def spec(self) -> dict[str, Any]:
        """The fitted spec: ``create_model(..., neighbors=spec)`` rebuilds the module."""
        return {"k": self.k, "count": self.count, "size": int(self.kmers.shape[0]), "width": int(self.kmers.shape[1]),
                "vocab": int(self.column.shape[0]), "output": self.output, "neighbours": self.neighbours,
                "power": self.power, "weight": self.weight, "gamma": self.gamma}

    @classmethod
    def from_train(cls, x: np.ndarray, targets: np.ndarray, vocab_size: int, *, k: int, count: int,
                   output: str) -> NeighborTransfer:
        """The memory of training rows ``x`` ``(N, L)`` (uint8 indices, 0 = PAD) with ``targets`` (class indices
        ``(N,)``, or ``(N, T)`` 0/1 labels with NaN where unknown); the blend starts off (``weight=0``)."""
        codes, valid = kmer_codes(torch.from_numpy(np.asarray(x, dtype=np.int64)), k, vocab_size)
        used = torch.unique(codes[valid])
        if used.numel() == 0:
            raise ModelError(f"model.params.neighbors.k={k}: no training sequence is {k} symbols long; use a smaller k")
        lookup = torch.zeros(vocab_size**k, dtype=torch.int32)
        lookup[used] = torch.arange(1, used.numel() + 1, dtype=torch.int32)
        index = lookup[codes] * valid  # (N, L): k-mer index, 0 = none
        # each sequence's distinct k-mers, left-aligned: sort descending (zeros last), blank repeats
        index = index.sort(dim=1, descending=True).values
        index[:, 1:] *= (index[:, 1:] != index[:, :-1]).int()
        index = index.sort(dim=1, descending=True).values
        sizes = (index > 0).sum(dim=1)
        width = max(int(sizes.max()), 1)
        n = len(index)
        y = np.asarray(targets, dtype=np.float64)
        if output == "softmax":
            onehot = np.zeros((n, int(np.nanmax(y)) + 1 if n else 1))
            onehot[np.arange(n), y.astype(np.int64)] = 1.0
            y = onehot
        known = ~np.isnan(y)
        module = cls(vocab_size, y.shape[1], k=k, count=count, size=n, width=width, vocab=used.numel() + 1,
                     output=output, neighbours=min(count, n), power=1.0, weight=0.0, gamma=1.0)
        module.lookup.copy_(lookup)
        module.kmers.copy_(index[:, :width])
        module.sizes.copy_(sizes.clamp_min(1).float())
        module.targets.copy_(torch.from_numpy(np.nan_to_num(y)).float())
        module.known.copy_(torch.from_numpy(known).float())
        return module

    def similarity(self, x: Tensor) -> Tensor:
        """Inputs ``(B, L)`` (or one-hot) → the Jaccard index of their k-mer sets with every training sequence's
        ``(B, size)``."""
        idx = token_indices(x)
        codes, valid = kmer_codes(idx, self.k, self.base)
        found = self.lookup.long()[codes] * valid.long()  # (B, L): training k-mer index, 0 = not in training
        query = torch.zeros(idx.shape[0], self.column.shape[0], device=x.device).scatter(1, found, 1.0) * self.column
        # distinct k-mers of the query, found in training or not: k-mers absent from training enlarge the union
        n_query = torch.maximum(self._distinct(codes, valid), query.sum(dim=1))
        inter = F.embedding_bag(self.kmers.long(), query.t().contiguous(), mode="sum").t()  # (B, size)
        union = n_query.unsqueeze(1) + self.sizes.unsqueeze(0) - inter
        return inter / union.clamp_min(1.0)

    @staticmethod
    def _distinct(codes: Tensor, valid: Tensor) -> Tensor:
        """Distinct valid k-mer codes per row ``(B,)`` (sort, count changes)."""
        s = torch.where(valid, codes, torch.full_like(codes, -1)).sort(dim=1).values
        new = torch.cat([s[:, :1] >= 0, (s[:, 1:] != s[:, :-1]) & (s[:, 1:] >= 0)], dim=1)
        return new.float().sum(dim=1)

    def nearest(self, x: Tensor, count: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """The ``count`` (default: the fitted K) nearest training sequences of each input: their Jaccard index
        ``(B, K)``, targets ``(B, K, C)`` and known mask ``(B, K, C)``."""
        sim = self.similarity(x)
        # ties (common: many training sequences share a Jaccard index) go to the earlier training row, in torch and
        # ONNX Runtime alike; the offsets (< 1e-7 in all) sit far below the gaps between distinct Jaccard indices
        _, i = torch.topk(sim.double() - self.order, min(count or self.neighbours, self.size), dim=1)
        return sim.gather(1, i), self.targets[i], self.known[i]

    def forward(self, x: Tensor, logits: Tensor) -> Tensor:
        """Inputs and the network's logits ``(B, C)`` → the logits of the blend (log-probabilities for softmax)."""
        if self.weight == 0.0:
            return logits
        s, y, known = self.nearest(x)
        p_nn, w = transfer(s, y, known, self.power, self.weight, self.gamma)
        return blend_logits(logits, p_nn, w, self.output)


def transfer(s: Tensor, y: Tensor, known: Tensor, power: float, weight: float, gamma: float) -> tuple[Tensor, Tensor]:
    """Neighbour similarities ``(B, K)``, their targets and known masks ``(B, K, C)`` → the transferred probability
    ``(B, C)`` and each output's weight ``w`` ``(B, C)`` (0 for a label no neighbour knows)."""
    wts = (s.clamp_min(0.0) ** power + 1e-6).unsqueeze(2) * known  # (B, K, C)
    total = wts.sum(dim=1)
    p_nn = ((wts * y).sum(dim=1) / total.clamp_min(1e-12)).clamp(1e-6, 1 - 1e-6)
    w = (weight * s[:, :1].clamp_min(0.0) ** gamma).clamp(max=MAX_WEIGHT) * (total > 0).float()
    return p_nn, w


def blend_logits(logits: Tensor, p_nn: Tensor, w: Tensor, output: str) -> Tensor:
    """``(1 − w) · p_net + w · p_nn`` as logits, computed in log space (a sure network keeps a large logit)."""
    z = logits.float()
    keep, move = torch.log1p(-w), torch.log(w.clamp_min(1e-30))
    if output == "softmax":
        return logaddexp(keep + torch.log_softmax(z, dim=1), move + torch.log(p_nn))
    log_p = logaddexp(keep + F.logsigmoid(z), move + torch.log(p_nn))
    log_q = logaddexp(keep + F.logsigmoid(-z), move + torch.log1p(-p_nn))
    return log_p - log_q
