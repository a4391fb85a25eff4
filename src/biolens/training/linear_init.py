"""A closed-form start for a model's linear term: ridge regression on the train split.

``DilatedResNet(linear_positions=…, linear_kmers=…, linear_gc_window=…)`` adds a linear model of the input
(position-specific bases, k-mer frequencies and squared GC windows, :class:`~biolens.models.sequence_cnn.LinearTerm`)
to the network's output. Trained jointly from
zero under early stopping, that term stays far from its own optimum (the network stops within a few epochs), so
for regression with MSE or Huber loss :func:`fit_linear_term` sets it to the ridge solution first: scikit-learn's
``RidgeCV`` on the standardized train targets (the loss's own mean and std), its penalty chosen by efficient
leave-one-out over :data:`RIDGE_ALPHAS`, one fit per target on the rows where that target is known. The head's
last layer then starts at zero, so the model begins as the ridge regression and the network learns the residual.

Measured on the Huesken siRNAs (BENCHMARKS.md, 2026-12-02), 5-fold out-of-fold Pearson r of the training pool,
seeds 0 / 1: 0.630 / 0.633 for the network alone, 0.632 (seed 0) with the term trained from zero, 0.646 / 0.652
with this start.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import RidgeCV
from torch import nn

from biolens.models.sequence_cnn import LinearTerm
from biolens.training.target_losses import MaskedRegressionLoss

log = logging.getLogger(__name__)

RIDGE_ALPHAS = np.logspace(-3, 3, 25)  # the features are one-hot bases and frequencies: penalties 1e-3 … 1e3


def _collect(model: nn.Module, term: LinearTerm, batches: Any) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    with torch.no_grad():
        for batch in batches:
            feats = term.features(*model.linear_inputs(batch["x"]))
            xs.append(feats.double().cpu().numpy())
            ys.append(batch["y"].double().cpu().numpy().reshape(len(feats), -1))
    return np.concatenate(xs), np.concatenate(ys)


def fit_linear_term(model: nn.Module, batches: Any, loss_fn: nn.Module) -> dict[str, Any] | None:
    """Set ``model.linear_term`` to the ridge regression of the standardized targets of ``batches`` (the train
    split, un-augmented) and zero the head's last layer. Returns what was fitted (per target: the penalty, the
    rows used and the linear term's train R²) for ``train_summary.json``; None when the model has no linear term or
    the loss is not MSE/Huber (Poisson works on a log scale; classification and multi-label terms train from zero).
    """
    term = getattr(model, "linear_term", None)
    if not isinstance(term, LinearTerm):
        return None
    if not isinstance(loss_fn, MaskedRegressionLoss) or loss_fn.kind == "poisson":
        log.info("linear term: trained from zero (the ridge start is for regression with mse or huber loss)")
        return None
    x, y = _collect(model, term, batches)
    z = (y - loss_fn.mean.cpu().double().numpy()) / loss_fn.std.cpu().double().numpy()
    weight = np.zeros((z.shape[1], x.shape[1]))
    bias = np.zeros(z.shape[1])
    fits = []
    for j in range(z.shape[1]):
        seen = np.isfinite(z[:, j])
        ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(x[seen], z[seen, j])
        weight[j], bias[j] = ridge.coef_, ridge.intercept_
        fits.append({"alpha": float(ridge.alpha_), "rows": int(seen.sum()),
                     "train_r2": round(float(ridge.score(x[seen], z[seen, j])), 4)})
    with torch.no_grad():
        term.linear.weight.copy_(torch.as_tensor(weight, dtype=term.linear.weight.dtype))
        term.linear.bias.copy_(torch.as_tensor(bias, dtype=term.linear.bias.dtype))
        last = model.get_classifier()
        last.weight.zero_()
        last.bias.zero_()
    log.info("linear term: ridge start on %d features (%s)", x.shape[1],
             "; ".join(f"alpha {f['alpha']:.3g}, train R² {f['train_r2']:.3f}" for f in fits))
    return {"features": int(x.shape[1]), "targets": fits}
