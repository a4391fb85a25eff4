"""BERT-style masking for masked-token pretraining: rates, the 80/10/10 split, spans of patched tokens, targets."""

from __future__ import annotations

import numpy as np
import torch

from biolens.data.dataset import SequenceBatches, SequenceData
from biolens.data.alphabets import DNA
from biolens.data.masking import MaskedBatches, mask_tokens


def rows(n=400, width=120, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, 5, (n, width), generator=g, dtype=torch.int64).to(torch.uint8)
    lengths = torch.randint(10, width + 1, (n,), generator=g)
    x[torch.arange(width)[None, :] >= lengths[:, None]] = 0
    x[:, 3] = 5  # an unknown symbol (N) in every row
    return x, lengths


def test_rate_targets_and_80_10_10():
    x, _ = rows()
    gen = torch.Generator().manual_seed(1)
    inputs, targets = mask_tokens(x, 4, rate=0.15, generator=gen)
    canonical = (x >= 1) & (x <= 4)
    assert inputs.dtype == x.dtype and inputs.shape == x.shape
    assert not (targets & ~canonical).any()  # never padding or N
    assert abs(targets.sum().item() / canonical.sum().item() - 0.15) < 0.01
    assert torch.equal(inputs[x == 0], x[x == 0])  # padding stays padding
    assert torch.equal(inputs[~targets & (x != 5)], x[~targets & (x != 5)])  # nothing else changes
    shown_n = (inputs[targets] == 5).float().mean().item()
    changed = ((inputs[targets] != x[targets]) & (inputs[targets] != 5)).float().mean().item()
    kept = (inputs[targets] == x[targets]).float().mean().item()
    assert abs(shown_n - 0.8) < 0.03
    # random replacements land on the original symbol a quarter of the time: 10% × 3/4 changed, 10% + 2.5% kept
    assert abs(changed - 0.075) < 0.02 and abs(kept - 0.125) < 0.02


def test_every_row_with_a_symbol_gets_a_target_and_seeds_repeat():
    x = torch.tensor([[1, 2, 0, 0], [5, 5, 5, 0], [3, 0, 0, 0]], dtype=torch.uint8)
    _, targets = mask_tokens(x, 4, rate=0.01, generator=torch.Generator().manual_seed(0))
    assert targets.sum(1).tolist()[0] >= 1 and targets[1].sum() == 0 and targets[2, 0]
    x, _ = rows(seed=3)
    a = mask_tokens(x, 4, generator=torch.Generator().manual_seed(7))
    b = mask_tokens(x, 4, generator=torch.Generator().manual_seed(7))
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_stride_masks_whole_tokens():
    x, lengths = rows(n=200, width=64)
    inputs, targets = mask_tokens(x, 4, rate=0.2, stride=4, generator=torch.Generator().manual_seed(2))
    t = targets.reshape(200, 16, 4)
    canonical = ((x >= 1) & (x <= 4)).reshape(200, 16, 4)
    picked = t.any(-1)
    # a picked 4-mer has every canonical position as a target
    assert torch.equal(t[picked], canonical[picked])
    # and the model sees it as one unit: all N, all kept, or random
    changed_or_n = (inputs.reshape(200, 16, 4) != x.reshape(200, 16, 4))
    assert (picked.sum() > 0) and changed_or_n[~picked.unsqueeze(-1).expand_as(changed_or_n)].sum() == 0


def test_masked_batches_layout_and_fixed_validation():
    x, lengths = rows(n=50, width=30)
    data = SequenceData(np.arange(50), x.numpy(), lengths.numpy(), None, DNA)
    val = MaskedBatches(SequenceBatches(data, 16), n_symbols=4, seed=0, fixed=True)
    first = list(val)
    val.set_epoch(3)
    again = list(val)
    assert len(val) == 4 and all(torch.equal(a["x"], b["x"]) for a, b in zip(first, again))
    batch = first[0]
    original = data.x[batch["index"].numpy()][:, : batch["x"].shape[1]]
    assert torch.equal(batch["y"], torch.from_numpy(original)[batch["mlm_mask"]].long() - 1)
    assert batch["y"].min() >= 0 and batch["y"].max() <= 3
    train = MaskedBatches(SequenceBatches(data, 16, shuffle=True), n_symbols=4, seed=0)
    train.set_epoch(1)
    e1 = [b["mlm_mask"].sum().item() for b in train]
    train.set_epoch(2)
    e2 = [b["mlm_mask"].sum().item() for b in train]
    assert e1 != e2  # a new mask every epoch
