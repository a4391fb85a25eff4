"""The NaN-masked regression and multi-label losses against torch's own losses on the observed entries."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from biolens.config import TrainConfig
from biolens.training.build import build_loss
from biolens.training.target_losses import MaskedBCELoss, MaskedRegressionLoss


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(6, 3, generator=g, requires_grad=True)
    y = torch.randn(6, 3, generator=g) * 2 + 1
    y[0, 1] = y[3, 0] = y[5, 2] = float("nan")
    return z, y


@pytest.mark.parametrize("kind", ["mse", "huber"])
def test_masked_regression_loss_is_the_mean_over_observed_entries(kind):
    z, y = _batch()
    mean, std = [1.0, 0.5, -2.0], [2.0, 1.0, 4.0]
    loss = MaskedRegressionLoss(kind, mean, std, delta=0.7)(z, y)
    seen = ~torch.isnan(y)
    target = ((y - torch.tensor(mean)) / torch.tensor(std))[seen]
    ref = F.mse_loss(z[seen], target) if kind == "mse" else F.huber_loss(z[seen], target, delta=0.7)
    assert torch.isclose(loss, ref, atol=1e-6)
    loss.backward()
    assert torch.isfinite(z.grad).all()
    assert z.grad[0, 1] == 0 and z.grad[3, 0] == 0 and z.grad[5, 2] == 0  # a missing value pulls nowhere


def test_poisson_loss_on_scaled_counts():
    z = torch.tensor([[0.1], [-0.3], [1.2], [0.0]], requires_grad=True)
    y = torch.tensor([[3.0], [0.0], [float("nan")], [7.0]])
    loss = MaskedRegressionLoss("poisson", [0.0], [2.0])(z, y)
    seen = ~torch.isnan(y)
    ref = F.poisson_nll_loss(z[seen], (y / 2.0)[seen], log_input=True, full=False)
    assert torch.isclose(loss, ref)


def test_a_row_with_every_target_missing_contributes_nothing():
    z, y = _batch(1)
    loss = MaskedRegressionLoss("mse", [0.0] * 3, [1.0] * 3)
    y_all = y.clone()
    y_all[2] = float("nan")
    z2 = z.detach().clone()
    z2[2] = 100.0  # whatever the model says for that row
    assert torch.isclose(loss(z2, y_all), loss(z.detach(), y_all))


def test_masked_bce_with_positive_weights_matches_torch():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(8, 2, generator=g)
    y = (torch.rand(8, 2, generator=g) > 0.5).float()
    y[1, 0] = float("nan")
    w = [3.0, 0.5]
    loss = MaskedBCELoss(w)(z, y)
    seen = ~torch.isnan(y)
    per = F.binary_cross_entropy_with_logits(z, torch.nan_to_num(y), pos_weight=torch.tensor(w), reduction="none")
    assert torch.isclose(loss, per[seen].mean())


def test_bce_correct_counts_whole_label_sets():
    z = torch.tensor([[2.0, -1.0], [2.0, 1.0], [-3.0, -2.0]])
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0], [float("nan"), 0.0]])
    assert int(MaskedBCELoss.correct(z, y)) == 2  # row 2 wrong on label 1; row 3's unknown label is not counted


def test_build_loss_fits_standardization_and_pos_weights_on_train():
    y = np.array([[1.0, 5.0], [3.0, np.nan], [5.0, 9.0]], dtype=np.float32)
    loss = build_loss(TrainConfig(), y, 2, "regression")
    assert isinstance(loss, MaskedRegressionLoss) and loss.kind == "mse"  # train.loss ce means mse here
    np.testing.assert_allclose(loss.mean.numpy(), [3.0, 7.0])
    np.testing.assert_allclose(loss.std.numpy(), [math.sqrt(8 / 3), 2.0], rtol=1e-6)
    ml = np.array([[1, 0], [0, 0], [0, 1], [1, 0]], dtype=np.float32)
    bce = build_loss(TrainConfig(class_weights="inverse"), ml, 2, "multilabel")
    np.testing.assert_allclose(bce.pos_weight.numpy(), [1.0, 3.0])
    assert build_loss(TrainConfig(), ml, 2, "multilabel").pos_weight is None


def test_label_set_loss_adds_the_per_label_bce_and_the_set_cross_entropy_in_training_only():
    from biolens.models.label_sets import LabelSetHead
    from biolens.training.target_losses import LabelSetLoss

    torch.manual_seed(0)
    head = LabelSetHead(6, 3, [[0], [0, 1], [2]])
    base = MaskedBCELoss()
    loss_fn = LabelSetLoss(base, head)
    feats, z = torch.randn(4, 6), torch.randn(4, 3)
    y = torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 1, 1], [float("nan"), 0, 1]])  # row 3: unlisted; row 4: unknown
    head.train()
    out = head(feats, z)
    _, u = head.parts
    got = loss_fn(out, y)
    want = base(out, y) + base(z, y) + F.cross_entropy(u[:2], torch.tensor([0, 1]))
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    assert head.parts is None  # taken: a later eval batch cannot reuse them
    head.eval()
    out = head(feats, z)
    assert loss_fn(out, y).item() == pytest.approx(base(out, y).item(), rel=1e-6)
    assert loss_fn.correct is base.correct and list(loss_fn.state_dict()) == list(base.state_dict())
