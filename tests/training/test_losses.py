"""Losses against hand computations (guide 6.1, 6.3), class weights and the weighted sampler."""

import math

import numpy as np
import pytest
import torch

from biolens.data.sampling import balanced_weights, epoch_order, shard
from biolens.errors import ConfigError
from biolens.training.losses import BinaryLogitLoss, FocalLoss, class_weights, make_loss


def _logits_for(p_true: float) -> torch.Tensor:
    """Two-class logits whose softmax gives ``p_true`` to class 0."""
    return torch.tensor([[math.log(p_true), math.log(1 - p_true)]])


@pytest.mark.parametrize("pt, expected", [
    # guide 6.1: easy example p_t = 0.95 → 0.25 · 0.05² · (−log 0.95) = 0.25 · 0.0025 · 0.051293 = 3.2058e-5
    # (the guide prints "0.0006", an arithmetic slip: its own formula gives 3.2e-5, about 1,600x below CE)
    (0.95, 0.25 * 0.05**2 * -math.log(0.95)),
    # hard example p_t = 0.6 → 0.25 · 0.4² · 0.510826 = 0.020433 (the guide: "0.02")
    (0.6, 0.25 * 0.4**2 * -math.log(0.6)),
])
def test_focal_loss_matches_guide_worked_example(pt, expected):
    loss = FocalLoss(gamma=2.0, alpha=0.25)(_logits_for(pt), torch.tensor([0]))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    ce = -math.log(pt)
    assert loss.item() == pytest.approx(ce * 0.25 * (1 - pt) ** 2, rel=1e-5)


def test_focal_per_class_alpha_and_gamma_zero_is_weighted_ce():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]])
    y = torch.tensor([0, 2])
    alpha = [0.2, 1.0, 3.0]
    focal = FocalLoss(gamma=0.0, alpha=alpha)(logits, y)
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    assert focal.item() == pytest.approx(((ce * torch.tensor([0.2, 3.0])).mean()).item(), rel=1e-6)


def test_label_smoothing_ce_by_hand():
    # 3 classes, eps 0.1: target (0.9 + 0.1/3) on the true class and 0.1/3 elsewhere
    logits = torch.tensor([[1.0, 0.0, -1.0]])
    logp = torch.log_softmax(logits, 1)[0]
    expected = -((0.9 + 0.1 / 3) * logp[0] + 0.1 / 3 * logp[1] + 0.1 / 3 * logp[2])
    loss = make_loss("ce", [10, 10, 10], label_smoothing=0.1)(logits, torch.tensor([0]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_bce_with_logits_single_logit_and_two_logit_margin_by_hand():
    z = 0.7
    expected = -math.log(1 / (1 + math.exp(-z)))  # y = 1
    assert BinaryLogitLoss()(torch.tensor([[z]]), torch.tensor([1])).item() == pytest.approx(expected, rel=1e-6)
    two = torch.tensor([[0.2, 0.2 + z]])  # margin z1 − z0 = z
    assert BinaryLogitLoss()(two, torch.tensor([1])).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ConfigError, match="binary"):
        make_loss("bce", [5, 5, 5])


def test_class_weights_inverse_and_effective_by_hand():
    counts = [90, 10]
    inv = class_weights(counts, "inverse")  # N/(C n_c) = [100/180, 100/20] → normalised to mean 1
    raw = np.array([100 / 180, 100 / 20])
    assert inv.numpy() == pytest.approx(raw / raw.mean(), rel=1e-6)
    eff = class_weights(counts, "effective", beta=0.99)
    raw = np.array([(1 - 0.99) / (1 - 0.99**90), (1 - 0.99) / (1 - 0.99**10)])
    assert eff.numpy() == pytest.approx(raw / raw.mean(), rel=1e-6)
    assert eff[1] / eff[0] < inv[1] / inv[0]  # effective numbers weight the rare class less aggressively
    with pytest.raises(ConfigError, match="train.class_weights"):
        class_weights(counts, "sqrt")


def test_weighted_sampler_balances_classes_and_is_seeded():
    y = np.array([0] * 90 + [1] * 10)
    w = torch.as_tensor(balanced_weights(y))
    draws = torch.cat([epoch_order(100, shuffle=True, generator=torch.Generator().manual_seed(e), weights=w)
                       for e in range(50)])
    frac = float((torch.as_tensor(y)[draws] == 1).float().mean())
    assert 0.45 < frac < 0.55
    a = epoch_order(100, shuffle=True, generator=torch.Generator().manual_seed(3), weights=w)
    b = epoch_order(100, shuffle=True, generator=torch.Generator().manual_seed(3), weights=w)
    assert torch.equal(a, b)


def test_shards_partition_each_global_batch():
    order = epoch_order(10, shuffle=True, generator=torch.Generator().manual_seed(0), num_replicas=4)
    assert len(order) == 12  # padded to a multiple of the replicas
    parts = [shard(order[:8], r, 4) for r in range(4)]
    assert torch.equal(torch.cat(parts), order[:8]) and all(len(p) == 2 for p in parts)
