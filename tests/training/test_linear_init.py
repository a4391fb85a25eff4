"""The ridge start of dilated_resnet's linear term (training/linear_init.py)."""

from __future__ import annotations

import numpy as np
import torch

from biolens.models import create_model
from biolens.models.base import padding_mask
from biolens.training.linear_init import fit_linear_term
from biolens.training.target_losses import MaskedRegressionLoss

V, N, L = 6, 600, 21


def _data(seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Random DNA 21-mers with two targets that are linear in the term's features: G at position 3 and the
    frequency of ``CG``; the second target is missing in a quarter of the rows."""
    g = np.random.default_rng(seed)
    x = torch.from_numpy(g.integers(1, 5, size=(N, L))).to(torch.uint8)  # A C G T
    s = x.numpy()
    cg = ((s[:, :-1] == 2) & (s[:, 1:] == 3)).sum(1) / L
    y = np.stack([3.0 * (s[:, 3] == 3) + 10.0 * cg + 1.0, -2.0 * (s[:, 0] == 1) + 0.5], axis=1)
    y[g.random(N) < 0.25, 1] = np.nan
    return x, y


def _model(**params):
    torch.manual_seed(0)
    return create_model("dilated_resnet", vocab_size=V, num_classes=2, channels=8, blocks=1, **params).eval()


def test_the_term_starts_at_the_ridge_solution_and_the_head_at_zero():
    x, y = _data()
    model = _model(linear_positions=8, linear_kmers=[2])
    mean, std = np.nanmean(y, axis=0), np.nanstd(y, axis=0)
    loss = MaskedRegressionLoss("mse", mean, std)
    batches = [{"x": x[i:i + 128], "y": torch.from_numpy(y[i:i + 128]).float()} for i in range(0, N, 128)]
    info = fit_linear_term(model, batches, loss)
    assert info["features"] == 8 * (V - 1) + (V - 1) ** 2
    assert [t["rows"] for t in info["targets"]] == [N, int(np.isfinite(y[:, 1]).sum())]  # NaN rows left out
    assert all(t["train_r2"] > 0.999 for t in info["targets"]), info
    head = model.get_classifier()
    assert head.weight.abs().sum() == 0 and head.bias.abs().sum() == 0
    with torch.no_grad():
        out = model(x).numpy() * std + mean  # the model is the ridge regression now
    seen = np.isfinite(y)
    assert np.abs(out - y)[seen].max() < 0.05
    with torch.no_grad():  # and what the model computes is the term on its own features
        direct = model.linear_term.linear(model.linear_term.features(model.onehot(x), padding_mask(x)))
    torch.testing.assert_close(model(x), direct)


def test_no_term_or_a_loss_without_a_linear_scale_trains_from_zero():
    x, y = _data()
    batches = [{"x": x, "y": torch.from_numpy(y).float()}]
    mse = MaskedRegressionLoss("mse", [0.0, 0.0], [1.0, 1.0])
    assert fit_linear_term(_model(), batches, mse) is None  # no linear term
    model = _model(linear_kmers=[2])
    before = model.get_classifier().weight.clone()
    assert fit_linear_term(model, batches, MaskedRegressionLoss("poisson", [0.0, 0.0], [1.0, 1.0])) is None
    assert fit_linear_term(model, batches, torch.nn.CrossEntropyLoss()) is None
    assert model.linear_term.linear.weight.abs().sum() == 0  # untouched
    torch.testing.assert_close(model.get_classifier().weight, before)
