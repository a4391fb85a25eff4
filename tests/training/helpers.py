"""Small models and data for trainer tests: no BatchNorm or dropout, so batch splits give the same gradients."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from biolens.data.alphabets import DNA
from biolens.data.dataset import SequenceBatches, SequenceData
from biolens.data.encoding import encode
from tests.conftest import planted_dna


class TinyNet(nn.Module):
    """Embedding → conv → mean pool → linear; deterministic and batch-independent."""

    aux_inputs = ()

    def __init__(self, num_classes: int = 2, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(6, 8)
        self.conv = nn.Conv1d(8, 8, 5, padding=2)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(self.embed(x.long()).transpose(1, 2)))  # (B, 8, L)
        return self.head(h.mean(dim=2))


def seq_data(n: int = 64, seed: int = 0) -> SequenceData:
    seqs, labels = planted_dna(n=n, seed=seed)
    x, lengths = encode(seqs, DNA)
    y = np.array([lab == "promoter" for lab in labels], dtype=np.int64)
    return SequenceData(np.arange(n), x, lengths, y, DNA)


def batches(n: int = 64, bs: int = 8, seed: int = 0, shuffle: bool = True) -> SequenceBatches:
    return SequenceBatches(seq_data(n, seed), bs, shuffle=shuffle, seed=seed)
